"""Finding profiles by name: ./device_profiles first, then the profiles shipped with the harness."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.profiles.messages import Problem, ProfileError, suggest
from harness.profiles.yaml_io import read_yaml

PROFILE_DIR = "device_profiles"
SUFFIXES = (".yaml", ".yml")


def _packaged_dir() -> Path:
    return Path(str(resources.files("harness") / PROFILE_DIR))


def _search_dirs() -> list[Path]:
    return [Path.cwd() / PROFILE_DIR, _packaged_dir()]


def _profile_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())


def shipped_profile(name: str) -> Path | None:
    """Return the path of the profile `name` shipped with the harness, or None when there is none."""
    return next((p for p in (_packaged_dir() / f"{name}{s}" for s in SUFFIXES) if p.is_file()), None)


def find_profile(name_or_path: str | Path) -> Path:
    """Path of a profile: an existing path (or *.yaml/*.yml), else <name>.yaml in ./device_profiles, then shipped."""
    candidate = Path(name_or_path)
    if candidate.exists() or candidate.suffix in SUFFIXES or isinstance(name_or_path, Path):
        return candidate
    name = str(name_or_path)
    for directory in _search_dirs():
        for suffix in SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    known = [n for n, _, _ in list_profiles()]
    raise ProfileError(
        [
            Problem(
                name,
                (),
                f"no profile named {name!r} in ./{PROFILE_DIR} or the shipped profiles{suggest(name, known)} "
                f"(known: {', '.join(known) or 'none'}); pass a path to a .yaml file to use another",
            )
        ]
    )


def list_profiles() -> list[tuple[str, Path, str]]:
    """(name, path, description) of every profile in ./device_profiles then the shipped ones, deduplicated by name."""
    seen: dict[str, tuple[str, Path, str]] = {}
    for directory in _search_dirs():
        for path in _profile_files(directory):
            if path.stem in seen:
                continue
            try:
                data, _ = read_yaml(path)
                description = str(data.get("description") or "")
            except ProfileError as exc:
                description = f"(unreadable: {exc.problems[0].message})"
            seen[path.stem] = (path.stem, path, description)
    return list(seen.values())
