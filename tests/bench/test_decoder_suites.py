"""The decoder suite test end to end: `qharness emulate` per build, the suites run by pytest in a subprocess."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.protocols.decoder import DECODER_METRICS

# Only the module holding the decoder test: the plugin measures the whole family of the collected tests.
SUITES = str(Path(__file__).resolve().parents[2] / "harness" / "test_suites" / "test_logical_success.py")
BROKEN = {"decoder_agreement", "decoder_logical_success"}


@contextlib.contextmanager
def emulated(tmp: Path, build: str) -> Iterator[Path]:
    """Serve bench-emulated at `build` on ephemeral ports; yield the profile written by --profile-out."""
    out = tmp / f"live-{build}.yaml"
    cmd = [sys.executable, "-m", "harness.cli", "emulate", "--profile", "bench-emulated", "--build", build]
    proc = subprocess.Popen([*cmd, "--profile-out", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first == str(out), f"emulate printed {first!r}"
        yield out
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def run_decoder_suite(tmp: Path, profile: Path, build: str, *extra: str) -> tuple[int, dict[str, dict], str]:
    """Run the decoder tests of the suites at the quick budget; return (exit code, metrics by name, output)."""
    summary = tmp / f"summary-{build}.json"
    cmd = [sys.executable, "-m", "pytest", SUITES, "-p", "no:cacheprovider", "-q", "-rA", "-k", "decoder"]
    cmd += ["--device-profile", str(profile), "--results-db", str(tmp / "q.db"), "--budget", "quick"]
    # The emulated bench can flash, so it would interleave, which gates no decoder metric; this is the gated path.
    cmd += ["--harness-summary", str(summary), "--no-interleave", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=300)
    data = json.loads(summary.read_text()) if summary.exists() else {"metrics": []}
    metrics = {m["name"]: m for m in data["metrics"] if m["name"] in DECODER_METRICS}
    return proc.returncode, metrics, proc.stdout + proc.stderr


@pytest.mark.slow
def test_faulty_decoder_build_is_a_regression_and_good_build_passes(tmp_path: Path):
    runs = {}
    for build in ("2.3.0", "2.4.0", "2.5.0-rc1"):
        extra = () if build == "2.3.0" else ("--baseline-build", "2.3.0")
        with emulated(tmp_path, build) as profile:
            runs[build] = run_decoder_suite(tmp_path, profile, build, *extra)

    code, first, out = runs["2.3.0"]
    assert code == 0 and set(first) == set(DECODER_METRICS), out
    assert {m["verdict"] for m in first.values()} == {"NO_BASELINE"}, out
    assert first["decoder_agreement"]["value"] == 1.0

    code, good, out = runs["2.4.0"]
    assert code == 0, out
    assert out.count("PASSED") == len(DECODER_METRICS), out
    assert good["decoder_agreement"]["verdict"] == good["decoder_logical_success"]["verdict"] == "PASS", good
    assert {m["verdict"] for m in good.values()} <= {"PASS", "IMPROVED", "INCONCLUSIVE"}, good

    code, bad, out = runs["2.5.0-rc1"]
    assert code == 1, out
    assert {n for n, m in bad.items() if m["verdict"] == "REGRESSION"} == BROKEN, bad
    for name in BROKEN:
        # The failure message names the metric, both builds and the verdict.
        assert f"{name} REGRESSION: 2.5.0-rc1" in out and "baseline 2.3.0" in out, out
    assert bad["decoder_agreement"]["value"] < 0.995
