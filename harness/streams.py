"""Reproducible, independent random streams keyed by (seed, profile, build, protocol, call)."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash32(text: str) -> int:
    """A 32-bit hash of `text` that is the same in every process (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "little")


def stream(seed: int, profile_name: str, build: str, protocol: str, call_index: int = 0) -> np.random.Generator:
    """The generator of one measurement: equal keys give equal draws, any differing key an independent stream."""
    key = (stable_hash32(profile_name), stable_hash32(build), stable_hash32(protocol), int(call_index))
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=key))


def stream_seed(seed: int, profile_name: str, build: str, protocol: str, call_index: int = 0) -> int:
    """A 63-bit integer seed drawn from the same stream, for libraries that take an int (stim, Aer)."""
    return int(stream(seed, profile_name, build, protocol, call_index).integers(0, 2**63 - 1))
