"""Ordering of firmware builds on a trend axis: PEP 440, else semver, else time of first run."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from packaging.version import InvalidVersion, Version

# semver.org 2.0.0, with an optional leading "v"; build metadata (+...) does not take part in ordering.
_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


def pep440(build: str) -> Version | None:
    """Return the PEP 440 version of a build name, or None when it does not parse."""
    try:
        return Version(build)
    except InvalidVersion:
        return None


def semver_key(build: str) -> tuple | None:
    """Return a sort key following semver 2.0.0 precedence, or None when `build` is not semver."""
    m = _SEMVER.match(build)
    if m is None:
        return None
    core = (int(m["major"]), int(m["minor"]), int(m["patch"]))
    pre = m["pre"]
    if pre is None:
        # A release sorts after all of its pre-releases.
        return (*core, 1, ())
    # Numeric identifiers sort numerically and before alphanumeric ones.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, ids)


def order_builds(builds: Iterable[str], first_seen: Mapping[str, str] | None = None) -> list[str]:
    """Return the distinct builds in trend order: PEP 440 if all parse, else semver if all parse, else by time.

    A mixed set (say releases and nightly names) has no common version order, so it falls back entirely to
    the ISO time of each build's first run (`first_seen`), then the name.
    """
    seen = first_seen or {}
    unique = list(dict.fromkeys(builds))
    versions = {b: pep440(b) for b in unique}
    if all(v is not None for v in versions.values()):
        return sorted(unique, key=lambda b: (versions[b], seen.get(b, ""), b))
    semvers = {b: semver_key(b) for b in unique}
    if all(k is not None for k in semvers.values()):
        return sorted(unique, key=lambda b: (semvers[b], seen.get(b, ""), b))
    return sorted(unique, key=lambda b: (seen.get(b, ""), b))
