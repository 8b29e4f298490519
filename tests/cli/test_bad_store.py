"""An unusable results store ends `qharness run` (and a reading command) with exit 4 and one line, before pytest is
started, and leaves the file, or what stands in its place, exactly as it was."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import PROFILE, QHARNESS, one_line, qharness, snapshot

from harness.errors import ExitCode
from harness.store import Store

NOBODY = 65534
COMMANDS = {
    "run": ["run", "-p", PROFILE, "--budget", "quick"],
    "history": ["history", "-p", PROFILE],
}


def real_store(path: Path) -> Path:
    """A valid, empty results store at `path`, closed (no -wal or -shm file left)."""
    Store(path).close()
    return path


def junk(tmp: Path) -> Path:
    """Random-looking bytes where the store should be."""
    path = tmp / "junk.db"
    path.write_bytes(bytes(range(256)) * 16)
    return path


def text_file(tmp: Path) -> Path:
    """A text file (a CSV export) passed as the store."""
    path = tmp / "results.csv"
    path.write_text("profile,build,value\naer-reference,2.4.0,0.93\n")
    return path


def directory(tmp: Path) -> Path:
    """A directory where the store's file should be."""
    path = tmp / "store.db"
    path.mkdir()
    (path / "keep.txt").write_text("not a store\n")
    return path


def newer_schema(tmp: Path) -> Path:
    """A store written by a qharness whose schema is newer than this one's."""
    path = real_store(tmp / "newer.db")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    return path


KINDS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "junk": (junk, "is not a SQLite database"),
    "text": (text_file, "is not a SQLite database (it starts with b'profile,'"),
    "directory": (directory, "is a directory"),
    "newer-schema": (newer_schema, "has schema version 99"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_an_unusable_store_is_refused_untouched(tmp_path: Path, kind: str, command: str) -> None:
    make, needle = KINDS[kind]
    path = make(tmp_path)
    before, listing = snapshot(path), sorted(os.listdir(tmp_path))
    res = qharness(*COMMANDS[command], "--db", str(path), cwd=tmp_path, timeout=60)
    assert res.returncode == ExitCode.USAGE_ERROR, res.stderr
    line = one_line(res)  # one line: pytest was never started (it would have printed its command)
    assert line.startswith(f"qharness {command}: results store {path}") and needle in line
    assert snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == listing  # no -wal, -shm or -journal beside it


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_database_url_is_refused_without_creating_anything(tmp_path: Path, command: str) -> None:
    url = "mysql://user:s3cret@host/db"
    res = qharness(*COMMANDS[command], "--db", url, cwd=tmp_path, timeout=60)
    assert res.returncode == ExitCode.USAGE_ERROR, res.stderr
    assert "the URL scheme 'mysql' is not supported" in one_line(res)
    assert "s3cret" not in res.stderr + res.stdout  # a password is never printed
    assert list(tmp_path.iterdir()) == []  # no directory named 'mysql:'


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unreachable_server_is_one_line_without_its_password(tmp_path: Path, command: str) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = qharness(*COMMANDS[command], "--db", f"postgresql://qh:s3cret@127.0.0.1:{port}/db", cwd=tmp_path, timeout=60)
    assert res.returncode == ExitCode.USAGE_ERROR, res.stderr
    line = one_line(res)
    assert "cannot be used" in line and "Connection refused" in line, line
    assert "s3cret" not in res.stderr + res.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh 0777 directory under the system temp dir, reachable by user nobody (pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="qharness-ro-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        for p in path.rglob("*"):
            p.chmod(0o777 if p.is_dir() else 0o666)
        shutil.rmtree(path)


def python_for(user: int) -> tuple[list[str], dict[str, str]] | None:
    """An interpreter command and environment with which `user` can import harness, or None.

    This interpreter may live where only root can enter (pyenv under /root); the system's python of the same
    version then runs the same code when given this environment's packages on PYTHONPATH.
    """
    import harness

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    paths = [str(Path(harness.__file__).resolve().parents[1]), sysconfig.get_paths()["purelib"]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    for exe in dict.fromkeys([sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin")]):
        if exe is None:
            continue
        try:
            probe = subprocess.run(
                [exe, "-c", "import harness.cli"],
                env=env,
                capture_output=True,
                timeout=60,
                user=user,
                group=user,
                extra_groups=[],
                cwd="/",
            )
        except OSError:  # not executable by `user`
            continue
        if probe.returncode == 0:
            return [exe, "-m", "harness.cli"], env
    return None


def test_a_store_in_a_read_only_directory_is_refused_untouched(shared_dir: Path) -> None:
    ro = shared_dir / "readonly"
    ro.mkdir()
    path = real_store(ro / "qharness.db")
    path.chmod(0o666)  # the file itself is writable: only the directory (for SQLite's -wal and -shm) is not
    ro.chmod(0o555)
    command, env, as_user = [*QHARNESS], dict(os.environ), {}
    if os.geteuid() == 0:
        # Root passes every permission check, so the case only exists for another user.
        try:
            pwd.getpwuid(NOBODY)
        except KeyError:
            pytest.skip(f"running as root and there is no user {NOBODY} (nobody) to run qharness as")
        found = python_for(NOBODY)
        if found is None:
            pytest.skip(f"running as root and no python that user {NOBODY} can run imports harness")
        command, env = found
        as_user = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    before, listing = snapshot(path), sorted(os.listdir(ro))
    res = subprocess.run(
        [*command, *COMMANDS["run"], "--db", str(path)],
        cwd=shared_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **as_user,
    )
    assert res.returncode == ExitCode.USAGE_ERROR, res.stderr
    assert f"directory {ro} is not writable" in one_line(res)
    assert snapshot(path) == before
    assert sorted(os.listdir(ro)) == listing
