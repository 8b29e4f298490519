"""An unusable results store is a usage error found at start-up: exit 4, one line, no traceback, nothing written."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from suite_facts import SUITES

from harness.store import SCHEMA_VERSION, Store

NOBODY = 65534


def run_pytest(cwd: Path, db: str, **popen: object) -> tuple[int, list[str]]:
    """Run the suites with `--results-db db` in `cwd`; return the exit code and the non-blank output lines."""
    cmd = [sys.executable, "-m", "pytest", SUITES, "-p", "no:cacheprovider", "-q", "-k", "bell_state"]
    cmd += ["--device-profile", "aer-reference", "--budget", "quick", "--results-db", db]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, **popen)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def snapshot(directory: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under `directory`: its bytes (None for a directory) and its mtime in ns."""
    return {
        str(p.relative_to(directory)): (None if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def _newer_schema(path: Path) -> None:
    with Store(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()


BROKEN = {
    "junk bytes": (lambda p: p.write_bytes(b"\x00\x13junk\xff" * 64), "is not a SQLite database"),
    "text file": (lambda p: p.write_text("metric,value\nbell_fidelity,0.93\n"), "is not a SQLite database"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "newer schema": (
        _newer_schema,
        f"has schema version 99, this qharness understands up to {SCHEMA_VERSION}: upgrade qharness",
    ),
}


def assert_one_line_usage_error(code: int, lines: list[str], says: str) -> None:
    assert code == pytest.ExitCode.USAGE_ERROR, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: --results-db: results store ") and says in lines[0], lines
    assert "Traceback" not in lines[0]


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_store_ends_the_run_with_one_line_and_is_left_as_it_was(tmp_path: Path, kind: str):
    make, says = BROKEN[kind]
    store = tmp_path / "q.db"
    make(store)
    before = snapshot(tmp_path)
    code, lines = run_pytest(tmp_path, str(store))
    assert_one_line_usage_error(code, lines, says)
    after = snapshot(tmp_path)
    assert after["q.db"] == before["q.db"], "the store's bytes or mtime changed"
    new = set(after) - set(before)
    assert not [p for p in new if after[p][0] is None], f"a directory was created: {new}"
    assert not new, f"files appeared beside the store: {new}"


def test_checking_a_newer_store_creates_no_file_beside_it(tmp_path: Path):
    _newer_schema(tmp_path / "q.db")
    before = snapshot(tmp_path)
    code, _ = run_pytest(tmp_path, str(tmp_path / "q.db"))
    assert code == pytest.ExitCode.USAGE_ERROR
    assert snapshot(tmp_path) == before


def test_a_url_scheme_the_store_does_not_support_is_a_usage_error_not_a_path(tmp_path: Path):
    code, lines = run_pytest(tmp_path, "mysql://user:s3cret@host/db")
    assert_one_line_usage_error(code, lines, "the URL scheme 'mysql' is not supported")
    assert "s3cret" not in lines[0]
    assert list(tmp_path.iterdir()) == [], "nothing may be created for a URL"


def test_a_sqlite_url_names_the_file(tmp_path: Path):
    code, lines = run_pytest(tmp_path, "sqlite:///sub/q.db")
    assert code == pytest.ExitCode.OK, lines
    assert (tmp_path / "sub" / "q.db").is_file() and not (tmp_path / "sqlite:").exists()


def _nobody_can_run_python() -> bool:
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import harness"], user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _immutable(path: Path, on: bool) -> bool:
    """Set or clear the immutable attribute (root cannot write into an immutable directory); return success."""
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def read_only_dir() -> Iterator[tuple[Path, dict]]:
    """A directory the tested pytest cannot write, and the subprocess options that run that pytest.

    Root ignores permission bits, so as root the run is made as user nobody (in a world-writable parent) when
    nobody can run this interpreter, else the directory is made immutable; failing both, the test skips saying why.
    """
    parent = Path(tempfile.mkdtemp(prefix="qh-ro-"))
    parent.chmod(0o777)
    ro = parent / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    popen: dict = {}
    immutable = False
    try:
        if os.geteuid() == 0 and _nobody_can_run_python():
            popen = {"user": NOBODY, "group": NOBODY, "extra_groups": [], "env": {**os.environ, "HOME": str(parent)}}
        elif os.geteuid() == 0:
            immutable = _immutable(ro, True)
            if not immutable or os.access(ro, os.W_OK):
                pytest.skip(
                    f"as root a directory is read-only only to another user or when immutable: user nobody "
                    f"({NOBODY}) cannot run {sys.executable} here, and chattr +i is not available"
                )
        yield ro, popen
    finally:
        if immutable:
            _immutable(ro, False)
        ro.chmod(0o755)
        shutil.rmtree(parent, ignore_errors=True)


def test_a_read_only_directory_ends_the_run_with_one_line(read_only_dir: tuple[Path, dict]):
    ro, popen = read_only_dir
    code, lines = run_pytest(ro.parent, str(ro / "q.db"), **popen)
    assert_one_line_usage_error(code, lines, f"directory {ro} is not writable")
    assert list(ro.iterdir()) == []
