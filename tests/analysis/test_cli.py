"""`qharness capacity` through Typer's runner and a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.analysis import amplitude_damping_capacities, erasure_capacities
from harness.cli import app
from harness.physics.channels import choi_from_kraus, erasure_kraus

runner = CliRunner()


def _write_choi(path, choi):
    path.write_text(json.dumps({"real": np.real(choi).tolist(), "imag": np.imag(choi).tolist()}))
    return path


def test_named_channel_json():
    res = runner.invoke(app, ["capacity", "--channel", "amplitude_damping", "--param", "gamma=0.3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    want = amplitude_damping_capacities(0.3)
    assert set(out) == {"C_E", "Q1", "chi", "unit"}
    assert out["C_E"] == pytest.approx(want.C_E) and out["Q1"] == pytest.approx(want.Q1)
    assert out["unit"] == "bit/use"


def test_named_channel_table():
    res = runner.invoke(app, ["capacity", "--channel", "dephasing", "--param", "p=0.1"])
    assert res.exit_code == 0
    assert "C_E" in res.stdout and "bit/use" in res.stdout


def test_qutrit_choi_file(tmp_path):
    f = _write_choi(tmp_path / "erasure.json", choi_from_kraus(erasure_kraus(0.25)))
    res = runner.invoke(app, ["capacity", "--choi", str(f), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    want = erasure_capacities(0.25)
    assert (out["C_E"], out["Q1"], out["chi"]) == pytest.approx((want.C_E, want.Q1, want.chi), abs=1e-6)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--channel", "bitflip", "--param", "p=0.1"], "unknown channel"),
        (["--channel", "dephasing", "--param", "q=0.1"], "unknown parameter"),
        (["--channel", "dephasing"], "required"),
        (["--channel", "dephasing", "--param", "p=abc"], "not a number"),
        (["--channel", "dephasing", "--param", "p=1.5"], "must be in"),
        (["--choi", "/nonexistent/choi.json"], "file not found"),
        ([], "exactly one"),
    ],
)
def test_usage_errors(args, match):
    res = runner.invoke(app, ["capacity", *args])
    assert res.exit_code == 4
    assert match in res.stderr
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "malformed JSON"),
        ('{"real": [[1, 0], [0, 1]]}', "wrong shape"),
        ('{"real": [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}', "not PSD"),
        ('{"real": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}', "partial trace not identity"),
        ('{"real": [[1, 2], [3]]}', "rectangular"),
        ('{"real": [[NaN, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]}', "NaN"),
        ("[1, 2]", "expected an object"),
    ],
)
def test_bad_choi_files(tmp_path, content, match):
    f = tmp_path / "c.json"
    f.write_text(content)
    res = runner.invoke(app, ["capacity", "--choi", str(f)])
    assert res.exit_code == 4
    assert match in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_real_subprocess(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "harness.cli", "capacity", "--channel", "erasure", "--param", "epsilon=0.2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Q1"] == pytest.approx(0.6)
    bad = _write_choi(tmp_path / "bad.json", np.diag([1.0, -1.0, 1.0, 1.0]))
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "capacity", "--choi", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 4
    assert "not PSD" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
