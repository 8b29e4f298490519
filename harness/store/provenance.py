"""Where a run came from (tool versions, git sha, host, pid, start time) and the JSON the store keeps."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

_GIT_TIMEOUT_S = 2.0
# Stored column -> distribution whose installed version it records (qharness itself comes from harness.__version__).
_DISTRIBUTIONS = {
    "qiskit_version": "qiskit",
    "qiskit_aer_version": "qiskit-aer",
    "stim_version": "stim",
    "numpy_version": "numpy",
}
VERSION_KEYS = ("harness_version", *_DISTRIBUTIONS)


def utc_now() -> str:
    """Return the current time as an ISO-8601 UTC string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json_default(obj: Any) -> Any:
    """Convert numpy arrays and scalars (and other array-likes) to JSON-ready Python values."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in JSON")


def dumps(obj: Any) -> str:
    """Return `obj` as compact JSON text; numpy values are converted."""
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def loads(text: str | None) -> Any:
    """Return the decoded JSON value, or None for SQL NULL."""
    return None if text is None else json.loads(text)


def _dist(name: str) -> str | None:
    """Return the installed version of distribution `name`, or None when absent."""
    try:
        return _dist_version(name)
    except PackageNotFoundError:
        return None


@functools.cache
def _versions() -> dict[str, str | None]:
    """Return the tool versions, read once per process (installed packages do not change under a run)."""
    from harness import __version__

    return {"harness_version": __version__, **{key: _dist(dist) for key, dist in _DISTRIBUTIONS.items()}}


def tool_versions() -> dict[str, str | None]:
    """Return the versions of qharness and the numerical libraries, as stored with each run."""
    return dict(_versions())


@functools.cache
def _git_sha_of(where: str) -> str | None:
    """Return `git rev-parse HEAD` run in directory `where`, or None when git fails there."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
        sha = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return sha or None


def git_sha(cwd: str | Path | None = None) -> str | None:
    """Return `git rev-parse HEAD` of `cwd` (default: the working directory), or None outside a checkout."""
    return _git_sha_of(str(Path(cwd) if cwd is not None else Path.cwd()))


def hostname() -> str:
    """Return this machine's host name, which scopes the pids stored with runs."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Return True when process `pid` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    # A killed child that its parent has not reaped yet still answers kill(0); /proc tells the truth.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"] and state != ["X"]


def run_stamp() -> dict[str, Any]:
    """Return the provenance columns of a run starting now: tool versions, git sha, host, pid and started_at."""
    return {**tool_versions(), "git_sha": git_sha(), "host": hostname(), "pid": os.getpid(), "started_at": utc_now()}
