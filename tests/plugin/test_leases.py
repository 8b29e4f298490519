"""Bench leases in `pytest test_suites`: a run reserves each bench profile before measuring it, a second run waits
(saying once who holds the bench) or gives up with one line and exit 4, and a holder that dies or is interrupted
gives the bench back. Every case runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from suite_facts import SUITES

from harness.emulators import EmulatorSet, ThreadedEmulators
from harness.profiles import load_profile
from harness.store import Store, parse_store_url

pytest_plugins = ["pg_engines"]  # store_url: SQLite, then PostgreSQL
BUILD = "2.4.0"
WAITING = "qharness: bench '{bench}' is leased by "

HOLDER = """
import sys, time
from harness.store import Store

url, bench = sys.argv[1:3]
with Store(url) as s, s.lease(bench, ttl_s=30, timeout_s=0, run_id="run-42"):
    print("held", flush=True)
    time.sleep(120)
"""


def _env() -> dict[str, str]:
    """The environment of child interpreters: this source tree first, no inherited store."""
    env = {k: v for k, v in os.environ.items() if k != "QHARNESS_DB"}
    env["PYTHONPATH"] = str(Path(SUITES).parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _hold(url: str, bench: str) -> subprocess.Popen:
    """A child process that holds `bench`'s lease in the store at `url` (as run 'run-42') until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), url, bench],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held", proc.communicate()
    return proc


def _suites(tmp: Path, url: str, *args: str) -> subprocess.Popen:
    """Start `pytest test_suites` with the store at `url` and the given options."""
    # Not interleaved: two runs flashing one unleased emulator would each see the other's build (an ERROR).
    cmd = [sys.executable, "-m", "pytest", SUITES, "-p", "no:cacheprovider", "-q", "--results-db", url]
    cmd += ["--no-interleave", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp, env=_env())


def _rows(url: str, statement: str) -> list[tuple]:
    """Rows of one SQL statement on the store at `url` (through a connection of its own)."""
    engine = sa.create_engine(parse_store_url(url).url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(statement))]
    finally:
        engine.dispose()


def _profile(tmp: Path, name: str, extends: str = "bench-lab-template") -> Path:
    """A bench profile named `name` that nothing answers for (the lease is taken before any instrument)."""
    path = tmp / "device_profiles" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, "extends": extends}))
    return path


@pytest.fixture
def live_bench(tmp_path: Path) -> Iterator[tuple[EmulatorSet, Path]]:
    """The emulated bench served on loopback, and a profile (bench-live) pointing at it."""
    loaded = load_profile("bench-emulated")
    emulators = EmulatorSet.from_profile(loaded, BUILD, seed=3)
    with ThreadedEmulators(emulators=emulators) as emu:
        yield emu, emu.write_profile(tmp_path / "bench-live.yaml", loaded.effective(BUILD), "bench-live")


@pytest.fixture
def url(store_url: str) -> str:
    """The test's results store (SQLite, then PostgreSQL), its tables created."""
    Store(store_url).close()
    return store_url


def test_a_waiting_run_names_the_holder_once_then_exits_4_on_one_line(tmp_path: Path, url: str) -> None:
    holder = _hold(url, "bench-b")
    try:
        t0 = time.monotonic()
        run = _suites(tmp_path, url, "--device-profile", str(_profile(tmp_path, "bench-b")), "--lease-timeout", "1")
        out, err = run.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.communicate()
    assert run.returncode == 4, out + err
    assert waited >= 1
    who = f"run run-42 (host {socket.gethostname()}, pid {holder.pid}, since "
    # Told once, not once per poll (the run polls every 0.25 s for 1 s).
    assert out.count(WAITING.format(bench="bench-b")) == 1, out
    assert f"{WAITING.format(bench='bench-b')}{who}" in out
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"ERROR: bench 'bench-b' is still leased by {who}")
    assert errors[0].endswith("after waiting 1 s; run again when it is free, or wait longer with --lease-timeout")
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--lease-timeout", "-1", "--lease-timeout must be a finite number of seconds >= 0, got -1"),
        (
            "--lease-timeout",
            "soon",
            "--lease-timeout must be a number of seconds >= 0, e.g. --lease-timeout 600; got 'soon'",
        ),
        ("--lease-ttl", "0", "--lease-ttl must be a finite number of seconds > 0, got 0"),
        ("--lease-ttl", "inf", "--lease-ttl must be a finite number of seconds > 0, got inf"),
    ],
)
def test_a_bad_lease_option_is_a_usage_error(tmp_path: Path, option: str, value: str, said: str) -> None:
    run = _suites(tmp_path, str(tmp_path / "q.db"), "--device-profile", "bench-lab-template", option, value)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 4, out + err
    assert [line for line in err.splitlines() if line.strip()] == [f"ERROR: {said}"], err
    assert not (tmp_path / "q.db").exists()  # refused before the store or any bench was touched


def test_simulated_profiles_take_no_lease(tmp_path: Path, url: str) -> None:
    bench = _profile(tmp_path, "bench-b")
    holders = [_hold(url, "aer-reference"), _hold(url, "bench-b")]
    try:
        # A stand-in reserves nothing: a held lease of its name does not make the run wait.
        aer = _suites(tmp_path, url, "--device-profile", "aer-reference", "--lease-timeout", "0", "--co")
        aer_out, aer_err = aer.communicate(timeout=120)
        # A bench in the same run is reserved: held by another run, it stops this one.
        both = _suites(
            tmp_path,
            url,
            "--device-profile",
            "aer-reference",
            "--device-profile",
            str(bench),
            "--lease-timeout",
            "0",
            "--co",
        )
        both_out, both_err = both.communicate(timeout=120)
    finally:
        for holder in holders:
            holder.kill()
            holder.communicate()
    assert aer.returncode == 0, aer_out + aer_err
    assert "is leased by" not in aer_out
    assert both.returncode == 4, both_out + both_err
    assert both_out.count("is leased by") == 1 and WAITING.format(bench="bench-b") in both_out
    assert "ERROR: bench 'bench-b' is still leased by run run-42" in both_err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_waiting_run_gives_back_the_leases_it_took(
    tmp_path: Path, url: str, signum: signal.Signals
) -> None:
    holder = _hold(url, "bench-z")
    try:
        # Sorted order: bench-a is taken first, then the run waits for bench-z.
        args = ["--device-profile", str(_profile(tmp_path, "bench-z")), "--device-profile"]
        run = _suites(tmp_path, url, *args, str(_profile(tmp_path, "bench-a")), "--lease-timeout", "60")
        assert run.stdout is not None
        line = run.stdout.readline()
        assert line.startswith(WAITING.format(bench="bench-z")), line + run.communicate()[1]
        assert _rows(url, "SELECT pid FROM leases WHERE bench = 'bench-a'") == [(run.pid,)]
        run.send_signal(signum)
        out, err = run.communicate(timeout=60)
    finally:
        holder.kill()
        holder.communicate()
    assert run.returncode == 2, out + err
    assert "Traceback" not in out + err
    assert _rows(url, "SELECT bench FROM leases ORDER BY bench") == [("bench-z",)]
    with Store(url) as s, s.lease("bench-a", timeout_s=0):  # free again at once
        pass


def _two_runs(tmp: Path, urls: tuple[str, str], profile: Path) -> tuple[list[str], list[int]]:
    """Start two quick runs on one bench together (run k on store urls[k]); return their outputs and exit codes."""
    args = ["--device-profile", str(profile), "--budget", "quick", "-k", "fidelity", "--lease-timeout", "300"]
    runs = [_suites(tmp, url, *args) for url in urls]
    done = [r.communicate(timeout=600) for r in runs]
    return [out + err for out, err in done], [r.returncode for r in runs]


@pytest.mark.slow
def test_two_runs_on_one_emulated_bench_never_measure_at_once(
    tmp_path: Path, url: str, live_bench: tuple[EmulatorSet, Path]
) -> None:
    emu, profile = live_bench
    outputs, codes = _two_runs(tmp_path, (url, url), profile)
    assert codes == [0, 0], outputs
    # Both runs measured (one source and one counter session each) and never at once.
    assert emu.sessions() == {
        "source": {"sessions": 2, "open": 0, "overlaps": 0},
        "counter": {"sessions": 2, "open": 0, "overlaps": 0},
    }
    assert emu.overlaps() == 0
    told = [out.count(WAITING.format(bench="bench-live")) for out in outputs]
    assert sorted(told) == [0, 1], outputs  # the second run waited, and said so once
    assert _rows(url, "SELECT COUNT(*) FROM leases") == [(0,)]


@pytest.mark.slow
def test_runs_that_share_no_store_do_measure_one_bench_at_once(
    tmp_path: Path, live_bench: tuple[EmulatorSet, Path]
) -> None:
    """The control: with nothing reserving the bench, the emulator sees the two runs overlap."""
    emu, profile = live_bench
    outputs, codes = _two_runs(tmp_path, (str(tmp_path / "own-0.db"), str(tmp_path / "own-1.db")), profile)
    assert codes == [0, 0], outputs
    assert emu.overlaps() >= 1
    assert emu.sessions()["source"]["sessions"] == 2
    assert not any("is leased by" in out for out in outputs)


@pytest.mark.slow
def test_a_killed_holder_loses_its_lease_and_the_waiting_run_takes_over(
    tmp_path: Path, url: str, live_bench: tuple[EmulatorSet, Path]
) -> None:
    emu, profile = live_bench
    ttl = 6.0
    first = _suites(tmp_path, url, "--device-profile", str(profile), "--lease-ttl", str(ttl), "-k", "not decoder")
    _wait_for_lease(url, first)
    args = ["--device-profile", str(profile), "--budget", "quick", "-k", "bell", "--lease-timeout", "120"]
    second = _suites(tmp_path, url, *args)
    assert second.stdout is not None
    told = second.stdout.readline()  # it waits for the first run, naming it
    assert told.startswith(WAITING.format(bench="bench-live")) and f"pid {first.pid}, since" in told, told
    # The first run's lease ends no earlier than this (a heartbeat after this read only pushes it later).
    expires_at = _rows(url, f"SELECT expires_at FROM leases WHERE pid = {first.pid}")[0][0]
    first.send_signal(signal.SIGKILL)
    killed_at = time.time()
    first.communicate()
    deadline = time.monotonic() + 120
    while not (taken := _rows(url, f"SELECT since FROM leases WHERE pid = {second.pid}")):
        assert second.poll() is None and time.monotonic() < deadline, second.communicate()
        time.sleep(0.02)
    took_over = datetime.fromisoformat(taken[0][0]).timestamp()
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0 and "passed" in out, out + err
    if url.startswith("postgresql"):
        # The dead holder's row is taken over only once its TTL has run out (the server's clock is this host's).
        assert took_over >= expires_at - 0.05
        assert took_over - killed_at < ttl + 30
    else:
        # The kernel drops a dead process's flock at once: no TTL to wait for.
        assert took_over - killed_at < ttl
    assert emu.overlaps() == 0
    assert _rows(url, "SELECT COUNT(*) FROM leases") == [(0,)]


def _wait_for_lease(url: str, run: subprocess.Popen) -> None:
    """Wait until `run` holds the only lease in the store."""
    deadline = time.monotonic() + 120
    while _rows(url, "SELECT pid FROM leases") != [(run.pid,)]:
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)


@pytest.mark.slow
def test_under_xdist_the_controller_holds_the_lease_for_its_workers(
    tmp_path: Path, live_bench: tuple[EmulatorSet, Path]
) -> None:
    emu, profile = live_bench
    url = str(tmp_path / "q.db")
    Store(url).close()
    run = _suites(tmp_path, url, "-n", "2", "--device-profile", str(profile), "--budget", "quick", "-k", "fidelity")
    _wait_for_lease(url, run)  # the controller's pid: a worker that tried would wait for it, then fail
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, out + err
    assert emu.sessions()["source"] == {"sessions": 1, "open": 0, "overlaps": 0}
    assert _rows(url, "SELECT COUNT(*) FROM leases") == [(0,)]


@pytest.mark.slow
def test_a_run_whose_lease_is_taken_from_it_stops_with_exit_4(
    tmp_path: Path, pg_url: str, live_bench: tuple[EmulatorSet, Path]
) -> None:
    _, profile = live_bench
    Store(pg_url).close()
    run = _suites(tmp_path, pg_url, "--device-profile", str(profile), "--lease-ttl", "1.5", "-k", "not decoder")
    _wait_for_lease(pg_url, run)
    engine = sa.create_engine(parse_store_url(pg_url).url)
    try:
        with engine.begin() as c:  # another run's row replaces this one's (as after an expiry and a take-over)
            c.execute(sa.text("UPDATE leases SET token = 'another-run', pid = 1"))
    finally:
        engine.dispose()
    out, err = run.communicate(timeout=600)
    assert run.returncode == 4, out + err
    assert "bench 'bench-live': this run's lease was not renewed within its 1.5 s TTL" in out + err
    assert "Traceback" not in out + err
