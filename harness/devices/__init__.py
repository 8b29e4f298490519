"""Devices under test: the Aer stand-in, a lab bench, and a recorded session, registered by profile kind."""

from __future__ import annotations

import importlib

from harness.devices.base import Device, RecordCallback
from harness.errors import FlashError
from harness.profiles import Profile

# Profile kind -> "module:Class"; imported on first use, so a run on Aer never imports pyvisa.
_KINDS: dict[str, str] = {
    "aer": "harness.devices.aer:AerDevice",
    "bench": "harness.devices.bench:BenchDevice",
    "replay": "harness.devices.replay:ReplayDevice",
}


def register_device(kind: str, target: str) -> None:
    """Register the device class ('package.module:Class') that opens profiles of `kind`."""
    _KINDS[kind] = target


def device_kinds() -> tuple[str, ...]:
    """Return the registered profile kinds."""
    return tuple(_KINDS)


def open_device(
    profile: Profile,
    build: str,
    seed: int,
    *,
    on_record: RecordCallback | None = None,
    recorder: object | None = None,
    session: int = 0,
) -> Device:
    """Construct (not yet open) the device that the effective profile's kind describes.

    `session` numbers repeated runs of one build (0 first): a stand-in draws that session's drift and shot noise;
    a real bench ignores it (its session is the occasion it runs on).
    """
    module_name, _, class_name = _KINDS[profile.kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    # Session 0 is not passed on, so a registered device class that predates sessions still opens.
    extra = {"session": int(session)} if session else {}
    return cls.from_profile(profile, build, seed=seed, on_record=on_record, recorder=recorder, **extra)


__all__ = ["Device", "FlashError", "RecordCallback", "device_kinds", "open_device", "register_device"]
