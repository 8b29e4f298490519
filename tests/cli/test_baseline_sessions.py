"""The profile's `sessions` block: validated like every block, used by `qharness baseline measure` when its options
are not given (the options override it), a shell re-alignment run between sessions and a source-controller one
sent to the (emulated) bench's source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from cli_helpers import qharness, query

from harness.cli.baseline import Separation, realign_source, separation
from harness.emulators import EmulatorSet, ThreadedEmulators
from harness.profiles import Profile, ProfileError, load_profile

BELL_ONLY = ["-k", "bell_fidelity"]  # one metric test: each session takes seconds
EMULATED = load_profile("bench-emulated")


def _profile(tmp_path: Path, sessions: str, base: str = "aer-reference", name: str = "aer-sessions") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nextends: {base}\nsessions:\n{sessions}")
    return path


@pytest.mark.parametrize(
    ("block", "key", "message"),
    [
        ("  pause_s: -1\n", "sessions.pause_s", "out of range, got -1; allowed: >= 0"),
        ("  pause: 5\n", "sessions.pause", "unknown key 'pause'; did you mean 'pause_s'?"),
        ("  realign: {shell: 'a.sh', command: 'ALIGN'}\n", "sessions.realign", "got both command and shell"),
        ("  realign: {timeout_s: 5}\n", "sessions.realign", "needs exactly one of 'command'"),
        ("  realign: {shell: 'a.sh {host}'}\n", "sessions.realign.shell", "uses {host}; allowed placeholders"),
        ("  realign: {shell: 'a.sh', timeout_s: 0}\n", "sessions.realign.timeout_s", "got 0; allowed: > 0"),
        ("  realign: {shell: 'a.sh {'}\n", "sessions.realign.shell", "escape literal braces as '{{'"),
        ("  realign: {command: 'ALIGN'}\n", "sessions.realign.command", "needs kind bench"),
    ],
)
def test_a_bad_sessions_block_names_the_file_and_key(tmp_path: Path, block: str, key: str, message: str) -> None:
    path = _profile(tmp_path, block)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert str(path) in text and f"{key}:" in text and message in text, text


def test_the_options_override_the_profile_and_the_profile_fills_in(tmp_path: Path) -> None:
    block = "  pause_s: 30\n  realign: {shell: 'align.sh {profile} {build}', timeout_s: 45}\n"
    profile = load_profile(_profile(tmp_path, block)).effective("2.3.0")
    assert separation(profile, "aer-sessions", "2.3.0", None, None, None) == Separation(
        30.0, shell="align.sh aer-sessions 2.3.0", timeout_s=45.0, origin="sessions.realign"
    )
    assert separation(profile, "aer-sessions", "2.3.0", 0.0, "true", None) == Separation(0.0, shell="true")
    assert separation(profile, "aer-sessions", "2.3.0", None, None, 5.0).timeout_s == 5.0
    plain = load_profile("aer-reference").effective("2.3.0")
    assert separation(plain, "aer-reference", "2.3.0", None, None, None) == Separation()


def test_measure_runs_the_profiles_realignment_and_pause_between_sessions(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    block = f"  pause_s: 0.2\n  realign: {{shell: 'echo {{build}} {{profile}} >> {trace}'}}\n"
    path = _profile(tmp_path, block)
    db = tmp_path / "q.db"
    args = ["baseline", "measure", "-p", str(path), "-b", "2.3.0", "--budget", "quick", "--db", str(db)]
    res = qharness(*args, "--sessions", "2", *BELL_ONLY, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    # Between the two sessions, once: the re-alignment, then the pause.
    assert trace.read_text() == "2.3.0 aer-sessions\n"
    assert "pausing 0.2 s before the next session" in res.stderr
    assert len(query(db, "SELECT id FROM runs WHERE build = '2.3.0' AND status = 'passed'")) == 2


def test_a_failing_profile_realignment_names_the_profile_key(tmp_path: Path) -> None:
    path = _profile(tmp_path, "  realign: {shell: 'exit 7'}\n")
    db = tmp_path / "q.db"
    args = ["baseline", "measure", "-p", str(path), "-b", "2.3.0", "--budget", "quick", "--db", str(db)]
    res = qharness(*args, "--sessions", "2", *BELL_ONLY, cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "qharness baseline measure: re-alignment command 'exit 7' (sessions.realign) exited 7"
    )


# -- a source-controller re-alignment on the emulated bench ---------------------------------------------------


@pytest.fixture
def bench() -> Iterator[ThreadedEmulators]:
    runner = ThreadedEmulators(emulators=EmulatorSet.from_profile(EMULATED, "2.4.0", seed=7)).start()
    yield runner
    runner.stop()


def _separation(emu: EmulatorSet, command: str) -> Separation:
    """The separation of a bench profile at the live emulator whose sessions block re-aligns with `command`."""
    data = emu.profile_dict(EMULATED.effective("2.4.0"), "bench-live")
    data["sessions"] = {"realign": {"command": command, "timeout_s": 2.0}}
    return separation(Profile.model_validate(data), "bench-live", "2.4.0", None, None, None)


def test_a_source_command_reaches_the_emulated_source(bench: ThreadedEmulators) -> None:
    source = bench.set.firmware.source
    assert not source.on  # the emulated source starts dark
    realign_source(_separation(bench.set, "PAIR:ON"), "2.4.0")
    assert source.on
    realign_source(_separation(bench.set, "PAIR?"), "2.4.0")  # a query whose reply is not an error


def test_a_refused_or_unanswered_source_command_exits_1(
    bench: ThreadedEmulators, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(typer.Exit) as info:
        realign_source(_separation(bench.set, "FW:LOAD? 9.9.{build}"), "2.4.0")
    assert info.value.exit_code == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("qharness baseline measure: re-alignment command 'FW:LOAD? 9.9.2.4.0' (sessions.realign)")
    assert line.endswith(" was refused: \"ERR unknown build '9.9.2.4.0'; this flasher has 2.3.0, 2.4.0, 2.5.0-rc1\"")
    sep = _separation(bench.set, "PAIR:OFF")
    bench.stop()  # the bench is gone: nothing answers on its ports
    with pytest.raises(typer.Exit) as info:
        realign_source(sep, "2.4.0")
    assert info.value.exit_code == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("qharness baseline measure: re-alignment command 'PAIR:OFF' (sessions.realign) failed: ")
    assert "\n" not in line
