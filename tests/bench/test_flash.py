"""Flashing a build on a bench over loopback: the emulated firmware switches builds; every failure is a FlashError."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import yaml

from harness.devices import FlashError
from harness.devices.bench import BenchDevice
from harness.devices.replay import ReplayDevice, ReplayMismatchError
from harness.emulators import EmulatorSet, ThreadedEmulators
from harness.emulators.decoder import SURFACE_D3_SINGLE_X_CHECK
from harness.errors import NotSupportedError
from harness.instruments import SessionRecorder
from harness.physics.link import delivered_state, link_kraus, observed_state, profile_rates
from harness.profiles import Profile, ProfileError, load_profile
from harness.records import BELL_SETTINGS
from tests.devices.test_aer_helpers import write_profile

LOADED = load_profile("bench-emulated")
# A flasher that loads the build over its own connection to the firmware and waits for the answer.
FLASHER = """\
import pathlib, socket, sys
port, build, profile, log = sys.argv[1:]
pathlib.Path(log).write_text(build + " " + profile)
with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
    s.sendall(f"FW:LOAD? {build}\\n".encode())
    reply = s.makefile().readline()
sys.exit(0 if reply.startswith("OK") else 1)
"""


@pytest.fixture
def flashable() -> Iterator[Callable[..., EmulatorSet]]:
    """Factory of emulators holding every build of bench-emulated, served on loopback; stopped at teardown."""
    started: list[ThreadedEmulators] = []

    def start(build: str = "2.4.0", **kw: Any) -> EmulatorSet:
        kw.setdefault("seed", 7)
        runner = ThreadedEmulators(emulators=EmulatorSet.from_profile(LOADED, build, **kw)).start()
        started.append(runner)
        return runner.set

    yield start
    for runner in started:
        runner.stop()


def _bench(emu: EmulatorSet, build: str = "2.4.0", flash: dict | None = None, **kw: Any) -> BenchDevice:
    data = emu.profile_dict(LOADED.effective(build), "bench-live", **kw)
    if flash is not None:
        data["firmware"]["flash"] = flash
    return BenchDevice(Profile.model_validate(data), build)


def _fidelity(counts: np.ndarray) -> tuple[float, float]:
    """Linear Bell fidelity from the XX, YY, ZZ rows and its shot-noise SE."""
    c = counts[[BELL_SETTINGS.index(s) for s in ("XX", "YY", "ZZ")]].astype(float)
    n = c.sum(axis=1)
    corr = (c[:, 0] - c[:, 1] - c[:, 2] + c[:, 3]) / n
    return float((1 + corr[0] - corr[1] + corr[2]) / 4), float(np.sqrt(((1 - corr**2) / n).sum()) / 4)


def _true_fidelity(build: str) -> float:
    p = LOADED.effective(build)
    link, det = p.link, p.detectors
    kraus = link_kraus(link.amplitude_damping, link.dephasing, link.depolarizing)
    rho = observed_state(
        delivered_state(p.source.visibility, kraus, profile_rates(p).accidental_fraction),
        det.readout_error_a,
        det.readout_error_b,
    )
    phi = np.array([1, 0, 0, 1]) / np.sqrt(2)
    return float(np.real(phi @ rho @ phi))


# ---- the emulated firmware switches builds -----------------------------------------------------------------------


def test_fw_load_switches_the_served_physics_build_and_decoder(flashable):
    emu = flashable()
    with _bench(emu) as dev:
        assert dev.identify().build == "2.4.0"
        before = _fidelity(dev.bell_tomography(0.05).counts)
        (ok_before,), _ = dev.decode("surface_d3_z", [SURFACE_D3_SINGLE_X_CHECK])
        rc1 = Profile.model_validate(emu.profile_dict(LOADED.effective("2.5.0-rc1"), "bench-live"))
        dev.flash("2.5.0-rc1", rc1)
        assert dev.identify().build == dev.build == "2.5.0-rc1" and dev.profile is rc1
        assert emu.firmware.loads == 1 and emu.build == "2.5.0-rc1"
        after = _fidelity(dev.bell_tomography(0.05).counts)
        (bug_after,), _ = dev.decode("surface_d3_z", [SURFACE_D3_SINGLE_X_CHECK])
    # Each build's counts carry its own source (V 0.97, then 0.955: fidelity drops by ~0.011, ~8 SE).
    for (value, se), build in ((before, "2.4.0"), (after, "2.5.0-rc1")):
        assert abs(value - _true_fidelity(build)) < 4 * se, (build, value, se)
    assert before[0] - after[0] > 4 * np.hypot(before[1], after[1])
    # The release candidate's decoder table carries its faulty entry.
    assert (ok_before, bug_after) == (0, 1)


def test_an_unknown_build_fails_the_flash_and_keeps_the_running_build(flashable):
    emu = flashable()
    with _bench(emu) as dev:
        with pytest.raises(FlashError) as err:
            dev.flash("9.9.9")
        assert dev.identify().build == dev.build == "2.4.0"
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("flashing build '9.9.9' with 'FW:LOAD? 9.9.9' failed: the source replied")
    assert "ERR unknown build '9.9.9'; this flasher has 2.3.0, 2.4.0, 2.5.0-rc1" in message
    assert emu.scpi.model.params.visibility == 0.97


def test_a_write_form_flash_is_judged_by_the_build_reported_afterwards(flashable):
    emu = flashable()
    with _bench(emu, flash={"command": "FW:LOAD {build}", "timeout_s": 2.0}) as dev:
        dev.flash("2.3.0")
        assert dev.identify().build == "2.3.0"
        with pytest.raises(
            FlashError,
            match=r"^flashing build '7\.0\.0' with 'FW:LOAD 7\.0\.0' left the source reporting build '2\.3\.0'; ",
        ):
            dev.flash("7.0.0")


@pytest.mark.parametrize(
    ("fault", "reported"),
    [("stuck-flash:1", "2.4.0"), ("wrong-build:2.3.0", "2.3.0")],
)
def test_a_flash_that_leaves_the_wrong_build_is_an_error(flashable, fault, reported):
    emu = flashable(faults=[fault] if fault.startswith("stuck") else [])
    with _bench(emu) as dev:
        if fault.startswith("wrong"):
            emu.firmware.faults.add(fault)  # after opening: the source claims another build from now on
        with pytest.raises(FlashError) as err:
            dev.flash("2.5.0-rc1")
        assert dev.build == "2.4.0"
    assert str(err.value).startswith(
        f"flashing build '2.5.0-rc1' with 'FW:LOAD? 2.5.0-rc1' left the source reporting build '{reported}'"
    )
    if fault.startswith("stuck"):
        assert emu.injected()["stuck-flash"] == 1
        assert emu.scpi.model.params.visibility == 0.97  # the physics stayed with the running build


def test_a_flash_that_never_answers_times_out_as_an_error_naming_the_command(flashable):
    emu = flashable()
    dev = _bench(emu, flash_timeout_s=0.3)
    with dev:
        emu.firmware.faults.add("drop:1")
        t0 = time.monotonic()
        with pytest.raises(FlashError, match=r"^flashing build '2\.5\.0-rc1' with 'FW:LOAD\? 2\.5\.0-rc1' failed: "):
            dev.flash("2.5.0-rc1")
        elapsed = time.monotonic() - t0
        emu.firmware.faults.clear()
        # Bounded by the flash timeout (a reply and a reconnect), with no retry; the source's own timing is back.
        assert elapsed < 2.0
        assert (dev.source.timeout_s, dev.source.retries) == (2.0, 3)
        assert dev.source.stats.retries == 0


def test_a_bench_without_flash_cannot_flash(flashable):
    emu = flashable()
    data = emu.profile_dict(LOADED.effective("2.4.0"), "bench-live")
    del data["firmware"]["flash"]
    dev = BenchDevice(Profile.model_validate(data), "2.4.0")
    with dev, pytest.raises(NotSupportedError, match=r"cannot flash builds: add firmware.flash"):
        dev.flash("2.5.0-rc1")


def test_a_build_that_is_not_a_build_name_never_reaches_a_command_line(flashable, tmp_path):
    marker = tmp_path / "ran"
    dev = _bench(flashable(), flash={"shell": f"touch {marker}"})
    with dev, pytest.raises(FlashError, match=r"cannot flash build '2\.4; rm -rf x': a build name must match"):
        dev.flash("2.4; rm -rf x")
    assert not marker.exists()


# ---- shell flashers ----------------------------------------------------------------------------------------------


def test_a_shell_flasher_gets_build_and_profile_and_the_identity_is_rechecked(flashable, tmp_path):
    emu = flashable()
    script, log = tmp_path / "flasher.py", tmp_path / "args.txt"
    script.write_text(FLASHER)
    port = emu.serial_url.rsplit(":", 1)[1]
    shell = f"{sys.executable} {script} {port} {{build}} {{profile}} {log}"
    with _bench(emu, flash={"shell": shell, "timeout_s": 10}) as dev:
        dev.flash("2.5.0-rc1")
        assert dev.identify().build == "2.5.0-rc1"
        with pytest.raises(FlashError, match=r"with '.*flasher\.py \d+ 1\.0\.0 bench-live .*' failed: exit status 1"):
            dev.flash("1.0.0")  # the flasher's FW:LOAD? is refused
    assert log.read_text() == "1.0.0 bench-live"


def test_a_failing_shell_flasher_is_an_error_with_its_message(flashable):
    dev = _bench(flashable(), flash={"shell": "echo cable unplugged >&2; exit 3"})
    with dev, pytest.raises(FlashError, match=r"failed: exit status 3 \(cable unplugged\)$"):
        dev.flash("2.5.0-rc1")


def test_a_shell_flasher_that_hangs_is_killed_with_its_children(flashable, tmp_path):
    pid_file = tmp_path / "child.pid"
    flash = {"shell": f"sleep 30 & echo $! > {pid_file}; wait", "timeout_s": 0.5}
    with _bench(flashable(), flash=flash) as dev:
        t0 = time.monotonic()
        with pytest.raises(FlashError, match=r"did not finish within 0\.5 s \(firmware.flash.timeout_s\)"):
            dev.flash("2.5.0-rc1")
        assert time.monotonic() - t0 < 5.0
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5.0
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie awaiting its reaper is dead too
        return stat.read().split(") ", 1)[1][0] != "Z"


# ---- replay and validation ----------------------------------------------------------------------------------------


def test_a_recorded_flash_replays_and_a_different_one_diverges(flashable, tmp_path):
    emu = flashable()
    profile = Profile.model_validate(emu.profile_dict(LOADED.effective("2.4.0"), "bench-live"))
    cassette = tmp_path / "flash.jsonl"
    with SessionRecorder(cassette) as rec, BenchDevice(profile, "2.4.0", recorder=rec) as dev:
        dev.flash("2.5.0-rc1")
        recorded = dev.bell_tomography(0.01).counts
    data = profile.model_dump(mode="json", exclude_none=True)
    data.update(name="bench-replay", kind="replay", replay={"cassette": str(cassette)})
    replay_profile = Profile.model_validate(data)
    with ReplayDevice(replay_profile, "2.4.0") as dev:
        dev.flash("2.5.0-rc1")
        np.testing.assert_array_equal(dev.bell_tomography(0.01).counts, recorded)
    with ReplayDevice(replay_profile, "2.4.0") as dev, pytest.raises(ReplayMismatchError, match="FW:LOAD"):
        dev.flash("2.3.0")


@pytest.mark.parametrize(
    ("flash", "where", "message"),
    [
        ({"command": "FW:LOAD {build}", "shell": "f {build}"}, "firmware.flash", "needs exactly one of 'command'"),
        ({"timeout_s": 5}, "firmware.flash", "needs exactly one of 'command'"),
        ({"command": "FW:LOAD {bild}"}, "firmware.flash.command", r"template .* uses \{bild\}; allowed.*: \{build\} "),
        (
            {"shell": "f {build} {seed}"},
            "firmware.flash.shell",
            r"template .* uses \{seed\}; allowed.*: \{build\}, \{profile\}",
        ),
        ({"shell": "f {"}, "firmware.flash.shell", r"bad template 'f \{'"),
        ({"shell": "f {build}", "timeout_s": 0}, "firmware.flash.timeout_s", r"out of range, got 0; allowed: > 0"),
        ({"shel": "f {build}"}, "firmware.flash.shel", r"unknown key 'shel'; did you mean 'shell'\?"),
    ],
)
def test_firmware_flash_is_validated(tmp_path, flash, where, message):
    with pytest.raises(ProfileError, match=rf"aer-test\.yaml: {where}: {message}"):
        write_profile(tmp_path, {"firmware": {"flash": flash}})


def test_the_served_bench_profile_names_its_flash(flashable, tmp_path):
    emu = flashable()
    path = emu.write_profile(tmp_path / "live.yaml", LOADED.effective("2.4.0"), "bench-live", flash_timeout_s=4.0)
    written = yaml.safe_load(path.read_text())
    assert written["firmware"]["flash"] == {"command": "FW:LOAD? {build}", "timeout_s": 4.0}
    assert load_profile(path).effective("2.4.0").firmware.flash.command == "FW:LOAD? {build}"
