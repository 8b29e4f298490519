"""`qharness tomography`: lab counts (CSV or JSON) to a maximum-likelihood state; bad input is one line, exit 4."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.analysis.measures import concurrence, state_fidelity
from harness.analysis.schemes import ANALYSER_ANGLES, james16_scheme, projections36_scheme
from harness.cli import app
from harness.cli.tomography import TARGETS

runner = CliRunner()
# A known state with an imaginary coherence: Werner-mixed (|HH> + e^{0.4i}|VV>)/√2 at visibility 0.92.
_PSI = np.array([1, 0, 0, np.exp(0.4j)]) / np.sqrt(2)
RHO = 0.92 * np.outer(_PSI, _PSI.conj()) + 0.08 * np.eye(4) / 4


def _counts(scheme, per_setting: float, seed: int) -> np.ndarray:
    probs = np.real(np.einsum("sij,ji->s", scheme.projectors()[:, 0], RHO))
    return np.random.default_rng(seed).poisson(per_setting * probs)


def _csv(path: Path, rows: list[tuple[str, str, object]]) -> Path:
    path.write_text("a,b,counts\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return path


def _angles(label: str) -> str:
    hwp, qwp = ANALYSER_ANGLES[label]
    return f"hwp={hwp};qwp={qwp}"


def _james16_rows(counts: np.ndarray) -> list[tuple[str, str, object]]:
    return [(s[0], s[1], int(c)) for s, c in zip(james16_scheme().labels, counts, strict=True)]


def _run(*args: str):
    return runner.invoke(app, ["tomography", *args])


def test_csv_of_a_known_state_recovers_it_within_its_intervals(tmp_path: Path) -> None:
    counts = _counts(james16_scheme(), 50_000, seed=3)
    res = _run("--counts", str(_csv(tmp_path / "c.csv", _james16_rows(counts))), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rho = np.array(out["rho_real"]) + 1j * np.array(out["rho_imag"])
    truth = {
        "fidelity": float(state_fidelity(RHO, TARGETS["phi+"])),
        "concurrence": float(concurrence(RHO)),
        "purity": float(np.real(np.trace(RHO @ RHO))),
    }
    for key, value in truth.items():
        assert out[key]["ci_low"] <= value <= out[key]["ci_high"], (key, out[key], value)
        assert out[key]["ci_high"] - out[key]["ci_low"] < 0.06  # ~225k counts: each 95% interval is a few % wide
    assert np.max(np.abs(rho - RHO)) < 0.01  # the imaginary coherence -0.46 sin 0.4 = -0.18 is recovered
    assert np.allclose(rho, rho.conj().T) and np.trace(rho).real == pytest.approx(1.0)


def test_json_labels_and_csv_angles_give_the_same_state_and_targets_differ(tmp_path: Path) -> None:
    scheme = projections36_scheme()
    counts = _counts(scheme, 5_000, seed=4)
    data = {"projections": list(scheme.labels), "counts": counts.tolist()}
    (tmp_path / "c.json").write_text(json.dumps(data))
    rows = [(_angles(s[0]), _angles(s[1]), int(c)) for s, c in zip(scheme.labels, counts, strict=True)]
    by_json = json.loads(_run("--counts", str(tmp_path / "c.json"), "--json").stdout)
    by_csv = json.loads(_run("--counts", str(_csv(tmp_path / "c.csv", rows)), "--json").stdout)
    assert np.allclose(by_json["rho_real"], by_csv["rho_real"], atol=1e-5)
    assert np.allclose(by_json["rho_imag"], by_csv["rho_imag"], atol=1e-5)
    psi = json.loads(_run("--counts", str(tmp_path / "c.json"), "--json", "--target", "psi-").stdout)
    assert psi["fidelity"]["value"] < 0.05 < by_json["fidelity"]["value"] - 0.85
    assert psi["concurrence"] == by_json["concurrence"]


def test_text_output_prints_the_matrix_and_the_intervals(tmp_path: Path) -> None:
    counts = _counts(james16_scheme(), 5_000, seed=5)
    res = _run("--counts", str(_csv(tmp_path / "c.csv", _james16_rows(counts))), "--target", "phi-")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("density matrix") and all("|" in line for line in lines[1:5])
    assert lines[5].startswith("fidelity to phi-: ") and "[" in lines[5]
    assert lines[6].startswith("concurrence: ") and lines[7].startswith("purity: ")


def _bad_rows(kind: str) -> list[tuple[str, str, object]]:
    rows = _james16_rows(_counts(james16_scheme(), 1_000, seed=6))
    edits = {
        "label": (4, ("X", rows[4][1], rows[4][2])),
        "angles": (4, ("hwp=1;qwq=2", rows[4][1], rows[4][2])),
        "negative": (2, (rows[2][0], rows[2][1], -3)),
        "fraction": (2, (rows[2][0], rows[2][1], 2.5)),
        "text": (2, (rows[2][0], rows[2][1], "many")),
    }
    row, value = edits[kind]
    rows[row] = value
    return rows


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("label", "row 6, column a: 'X' is neither a label"),
        ("angles", "row 6, column a: 'hwp=1;qwq=2' is neither a label"),
        ("negative", "row 4, column counts: count -3 must be a whole number >= 0"),
        ("fraction", "row 4, column counts: count 2.5 must be a whole number >= 0"),
        ("text", "row 4, column counts: count 'many' is not a number"),
    ],
)
def test_a_bad_csv_row_is_named(tmp_path: Path, kind: str, words: str) -> None:
    res = _run("--counts", str(_csv(tmp_path / "c.csv", _bad_rows(kind))))
    assert res.exit_code == 4 and "Traceback" not in res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("qharness tomography: ") and words in line, line


def test_bad_files_are_one_line_naming_the_problem(tmp_path: Path) -> None:
    good = _james16_rows(_counts(james16_scheme(), 1_000, seed=7))
    cases = {
        "missing.csv": (None, "missing.csv: file not found"),
        "ragged.csv": ("a,b,counts\nH,H,10\nH,V\n", "row 3: 2 fields, expected 3 (a,b,counts)"),
        "header.csv": ("x,y,n\nH,H,1\n", "line 1: the header must be 'a,b,counts'"),
        "empty.csv": ("a,b,counts\n", "no settings"),
        "zeros.csv": ("a,b,counts\n" + "".join(f"{a},{b},0\n" for a, b, _ in good), "every count is 0"),
        "hv.csv": (
            "a,b,counts\n" + "".join(f"{a},{b},100\n" for a, b in itertools.product("HV", repeat=2)) * 4,
            "not informationally complete",
        ),
        "keys.json": (json.dumps({"projections": ["HH"], "count": [1]}), 'exactly the keys "projections" and "counts"'),
        "ragged.json": (json.dumps({"projections": ["HH", "HV"], "counts": [1]}), "lists of equal length"),
        "label.json": (json.dumps({"projections": ["HH", "HQ"], "counts": [1, 2]}), "projections[1]: 'Q'"),
        "arms.json": (
            json.dumps({"projections": ["HHV"], "counts": [1]}),
            "projections[0]: 'HHV' needs one projection",
        ),
        "count.json": (json.dumps({"projections": ["HH", "HV"], "counts": [1, 1.5]}), "counts[1]: count 1.5 must"),
        "bool.json": (json.dumps({"projections": ["HH", "HV"], "counts": [1, True]}), "counts[1]: count True is not"),
        "broken.json": ("{", "malformed JSON"),
    }
    for name, (text, words) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        res = _run("--counts", str(path))
        assert res.exit_code == 4 and "Traceback" not in res.output, (name, res.output)
        (line,) = res.stderr.strip().splitlines()
        assert str(path) in line and words in line, (name, line)


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    path = _csv(tmp_path / "c.csv", _james16_rows(_counts(james16_scheme(), 1_000, seed=8)))
    res = _run("--counts", str(path), "--target", "phi")
    assert res.exit_code == 4 and "--target 'phi': choose one of phi+, phi-, psi+, psi-" in res.stderr
    res = _run("--counts", str(path), "--bootstrap", "10")
    assert res.exit_code == 4 and "--bootstrap must be >= 50" in res.stderr
