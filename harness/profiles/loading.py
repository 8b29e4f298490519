"""Loading a profile: follow its `extends` chain, merge it, validate it and each build, and blame the right file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.profiles.checks import model_issues
from harness.profiles.discovery import SUFFIXES, find_profile, shipped_profile
from harness.profiles.messages import Problem, ProfileError, describe_error, short_repr, suggest
from harness.profiles.schema import BUILD, Profile
from harness.profiles.yaml_io import canonical_json, deep_merge, line_of, read_yaml


@dataclass
class _ChainFile:
    """One file of an `extends` chain."""

    path: Path
    raw: dict
    node: yaml.Node | None


def _resolve_extends(target: Any, child: Path) -> Path:
    if not isinstance(target, str) or not target:
        raise ProfileError(
            [Problem(str(child), ("extends",), f"must be a profile name or path, got {short_repr(target)}")]
        )
    if "/" in target or "\\" in target or Path(target).suffix in SUFFIXES:
        path = Path(target)
        return path if path.is_absolute() else child.parent / path
    try:
        found = find_profile(target)
    except ProfileError as exc:
        raise ProfileError([Problem(str(child), ("extends",), exc.problems[0].message)]) from None
    if found.resolve() == child.resolve():
        # ./device_profiles/x.yaml with `extends: x` refines the shipped x rather than itself.
        shipped = shipped_profile(target)
        if shipped is not None:
            return shipped
    return found


def _load_chain(path: Path) -> list[_ChainFile]:
    """The file and its ancestors, child first; cycles and unknown targets are ProfileErrors."""
    chain: list[_ChainFile] = []
    current = path
    while True:
        resolved = current.resolve()
        if any(s.path.resolve() == resolved for s in chain):
            names = [str(s.raw.get("name") or s.path.stem) for s in chain]
            start = next(i for i, s in enumerate(chain) if s.path.resolve() == resolved)
            cycle = " -> ".join([*names[start:], names[start]])
            raise ProfileError(
                [Problem(str(chain[0].path), ("extends",), f"extends cycle: {cycle}; remove one of the 'extends'")]
            )
        raw, node = read_yaml(current)
        chain.append(_ChainFile(current, raw, node))
        target = raw.get("extends")
        if target is None:
            return chain
        parent = _resolve_extends(target, current)
        if not parent.exists():
            raise ProfileError(
                [Problem(str(current), ("extends",), f"extends target {target!r} not found (looked for {parent})")]
            )
        current = parent


def _has_path(data: Any, path: tuple[str | int, ...]) -> bool:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if (isinstance(data, dict) and part in data) or in_list:
            data = data[part]
        else:
            return False
    return True


def _problem(full: tuple[str | int, ...], message: str, chain: list[_ChainFile]) -> Problem:
    """A problem at key path `full`, attributed to the file of the chain that holds the key."""
    holder = next((s for s in chain if _has_path(s.raw, full)), None)
    if holder is None:
        # A missing key: name the nearest file that defines its parent block.
        holder = next((s for s in chain if _has_path(s.raw, full[:-1])), chain[0])
    return Problem(str(holder.path), full, message, line_of(holder.node, full))


def _problems(
    exc: ValidationError, data: dict, prefix: tuple[str | int, ...], chain: list[_ChainFile]
) -> list[Problem]:
    """Every problem of `data`, which failed validation with `exc`, key paths under `prefix`, each named once.

    pydantic skips a model's cross-key checks when one of its fields fails, so they run on `data` here too.
    """
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"]) + tuple((error.get("ctx") or {}).get("path", ()))
        out.append(_problem(prefix + loc, describe_error(error, loc, Profile), chain))
    out += [_problem(prefix + path, message, chain) for path, message in model_issues(data)]
    return list(dict.fromkeys(out))


def _resolve_cassette(profile: Profile, base_dir: Path) -> Profile:
    """The profile with a relative replay cassette made absolute against the directory of the file naming it."""
    if profile.replay is None or Path(profile.replay.cassette).is_absolute():
        return profile
    replay = profile.replay.model_copy(update={"cassette": str((base_dir / profile.replay.cassette).resolve())})
    return profile.model_copy(update={"replay": replay})


@dataclass
class LoadedProfile:
    """A profile file after `extends` and validation; `effective(build)` gives the Profile for one build."""

    path: Path
    name: str
    raw: dict
    content_hash: str
    kind: str
    parents: list[Path] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path)
    _effective: dict[str, Profile] = field(default_factory=dict, repr=False)
    _base: Profile | None = field(default=None, repr=False)

    @property
    def base(self) -> Profile:
        """The merged profile with no build override applied."""
        assert self._base is not None
        return self._base

    @property
    def builds(self) -> list[str]:
        """Names of the builds this profile defines (firmware build and baseline when `builds:` is empty)."""
        if self.base.builds:
            return list(self.base.builds)
        return [b for b in (self.base.firmware.build, self.base.firmware.baseline) if b is not None]

    @property
    def default_build(self) -> str:
        """Build under test when none is given."""
        return self.base.firmware.build

    @property
    def default_baseline(self) -> str | None:
        """Baseline build when none is given."""
        return self.base.firmware.baseline

    def effective(self, build: str | None = None) -> Profile:
        """The profile for `build` (default firmware.build) with its override merged; firmware.build is set to it."""
        build = self.default_build if build is None else build
        if build in self._effective:
            return self._effective[build]
        if self.kind == "aer" and build not in self.builds:
            raise ProfileError(
                [
                    Problem(
                        str(self.path),
                        ("builds",),
                        f"unknown build {build!r}{suggest(build, self.builds)} "
                        f"(known builds: {', '.join(self.builds)})",
                    )
                ]
            )
        if not re.fullmatch(BUILD, build):
            raise ProfileError([Problem(str(self.path), ("firmware", "build"), f"build {build!r} must match {BUILD}")])
        merged = deep_merge(self.raw, self.base.builds.get(build, {}))
        merged.setdefault("firmware", {})
        merged["firmware"] = {**merged["firmware"], "build": build}
        profile = _resolve_cassette(Profile.model_validate(merged), self.base_dir)
        self._effective[build] = profile
        return profile


def load_profile(name_or_path: str | Path) -> LoadedProfile:
    """Find, parse, merge (`extends`) and validate a profile and each build's effective profile; ProfileError if bad."""
    path = find_profile(name_or_path)
    chain = _load_chain(path)
    merged: dict = {}
    for source in reversed(chain):
        merged = deep_merge(merged, source.raw)
    merged.pop("extends", None)
    if "name" not in chain[0].raw:
        # A child must name itself; inheriting the parent's name would file its results under the parent.
        merged.pop("name", None)

    try:
        base = Profile.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError(_problems(exc, merged, (), chain)) from None

    # A relative cassette path is relative to the file that names it.
    holder = next((s for s in chain if _has_path(s.raw, ("replay", "cassette"))), chain[0])
    base_dir = holder.path.parent
    problems: list[Problem] = []
    effective: dict[str, Profile] = {}
    for build, override in base.builds.items():
        candidate = deep_merge(merged, override)
        candidate["firmware"] = {**candidate.get("firmware", {}), "build": build}
        try:
            effective[build] = _resolve_cassette(Profile.model_validate(candidate), base_dir)
        except ValidationError as exc:
            # firmware.build is rewritten per build, so its errors are about the build name, not the override.
            problems += _problems(exc, candidate, ("builds", build), chain)
    if problems:
        raise ProfileError(problems)

    return LoadedProfile(
        path=path,
        name=base.name,
        raw=merged,
        content_hash=hashlib.sha256(canonical_json(merged).encode("utf-8")).hexdigest(),
        kind=base.kind,
        parents=[s.path for s in chain[1:]],
        base_dir=base_dir,
        _effective=effective,
        _base=base,
    )
