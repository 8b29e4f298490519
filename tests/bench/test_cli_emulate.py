"""`qharness emulate` as a real subprocess: announces the profile path first, serves it, exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from harness.devices.bench import BenchDevice
from harness.profiles import load_profile

CLI = [sys.executable, "-c", "from harness.cli import main; main()", "emulate"]


def _first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not out:
        proc.kill()
        pytest.fail(f"qharness emulate printed nothing within {timeout_s} s")
    return out[0].rstrip("\n")


@pytest.mark.parametrize("serial", ["socket", "pty"])
def test_emulate_subprocess_serves_a_ready_profile(tmp_path, serial):
    target = tmp_path / "live" / "bench.yaml"
    proc = subprocess.Popen(
        [
            *CLI,
            "--profile",
            "bench-emulated",
            "--build",
            "2.5.0-rc1",
            "--seed",
            "3",
            "--serial",
            serial,
            "--profile-out",
            str(target),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert _first_line(proc, 30) == str(target)
        loaded = load_profile(target)
        assert loaded.kind == "bench" and loaded.default_build == "2.5.0-rc1"
        profile = loaded.effective()
        assert profile.source.visibility == load_profile("bench-emulated").effective("2.5.0-rc1").source.visibility
        dev = BenchDevice(loaded.effective("2.5.0-rc1"), "2.5.0-rc1")
        with dev:
            assert dev.identify().build == "2.5.0-rc1"
            counts = dev.bell_tomography(0.01).counts
        assert counts.shape == (9, 4) and np.all(counts.sum(axis=1) > 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, proc.stderr.read()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--fault", "drop:2"], "drop:P"),
        (["--build", "9.9"], "known: 2.3.0, 2.4.0, 2.5.0-rc1"),
        (["--serial", "usb"], "'socket' or 'pty'"),
    ],
)
def test_emulate_rejects_bad_options_in_one_line(args, needle):
    proc = subprocess.run([*CLI, "--profile", "bench-emulated", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4
    assert proc.stderr.strip().count("\n") == 0 and needle in proc.stderr and "Traceback" not in proc.stderr
