"""Shared pieces of the store tests: a run's keyword arguments, child interpreters on this source tree, raw SQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

import harness
from harness.store import parse_store_url

REPO = Path(harness.__file__).resolve().parent.parent

RUN_KW = {
    "profile": "aer-reference",
    "profile_hash": "sha256:abc",
    "build": "2.5.0-rc1",
    "baseline_build": "2.3.0",
    "seed": 1234,
    "budget": "smoke",
}


def env() -> dict[str, str]:
    """Environment for child interpreters that import this source tree."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def spawn(code: str, *args: str) -> subprocess.Popen:
    """Start a child interpreter running `code` with argv[1:] = args."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def sql(target: str, statement: str, **params: object) -> list[tuple]:
    """Run one SQL statement on the store at `target` through a connection of its own; return its rows."""
    engine = sa.create_engine(parse_store_url(target).url)
    try:
        with engine.begin() as c:
            result = c.execute(sa.text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()
