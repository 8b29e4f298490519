"""`qharness tomography`: the maximum-likelihood two-qubit state of lab counts, with fidelity, concurrence, purity.

Input (one detector per arm, one count per setting; arm A first):
- CSV with the header `a,b,counts`: one row per setting, each arm a label (H, V, D, A, R, L) or waveplate angles
  `hwp=22.5;qwp=45` in degrees (conventions: `harness.analysis.schemes`);
- JSON `{"projections": ["HH", "HV", ...], "counts": [...]}`: a setting is two labels, or a list of two per-arm
  projections (a label, "hwp=..;qwp=..", or {"hwp": .., "qwp": ..}).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import typer

from harness.cli.app import app, fail

_S = 1 / math.sqrt(2)
TARGETS: dict[str, np.ndarray] = {
    "phi+": np.array([_S, 0, 0, _S], dtype=complex),
    "phi-": np.array([_S, 0, 0, -_S], dtype=complex),
    "psi+": np.array([0, _S, _S, 0], dtype=complex),
    "psi-": np.array([0, _S, -_S, 0], dtype=complex),
}
HEADER = ["a", "b", "counts"]
_OUTPUTS = {"fidelity": "bell_fidelity", "concurrence": "concurrence", "purity": "purity"}


class CountsError(Exception):
    """A counts file the command cannot use; the message names the row or key and what was wrong."""


def _angles(text: str, where: str) -> Any:
    from harness.analysis.schemes import Waveplates

    parts = dict(p.partition("=")[::2] for p in text.replace(" ", "").split(";") if p)
    try:
        if set(parts) != {"hwp", "qwp"}:
            raise ValueError
        plates = Waveplates(float(parts["hwp"]), float(parts["qwp"]))
    except ValueError:
        raise CountsError(f"{where}: {text!r} is neither a label (H, V, D, A, R, L) nor 'hwp=DEG;qwp=DEG'") from None
    if not all(math.isfinite(a) for a in plates):
        raise CountsError(f"{where}: waveplate angles {text!r} must be finite numbers of degrees")
    return plates


def _arm(spec: Any, where: str) -> Any:
    """One arm's projection: a label string, or Waveplates from 'hwp=..;qwp=..' or {"hwp": .., "qwp": ..}."""
    from harness.analysis.schemes import LABEL_VECTORS

    if isinstance(spec, str):
        text = spec.strip()
        return text if text in LABEL_VECTORS else _angles(text, where)
    if isinstance(spec, dict):
        return _angles(";".join(f"{k}={v}" for k, v in spec.items()), where)
    raise CountsError(f"{where}: {spec!r} is neither a label nor waveplate angles")


def _count(value: Any, where: str) -> int:
    shown = value.strip() if isinstance(value, str) else value
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise CountsError(f"{where}: count {shown!r} is not a number") from None
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise CountsError(f"{where}: count {shown!r} is not a number")
    if number < 0 or number != int(number):
        raise CountsError(f"{where}: count {shown} must be a whole number >= 0")
    return int(number)


def _read_csv(text: str, name: str) -> tuple[list[list[Any]], list[int]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows or [c.strip().lower() for c in rows[0]] != HEADER:
        raise CountsError(f"{name}: line 1: the header must be 'a,b,counts', got {','.join(rows[0]) if rows else ''!r}")
    settings, counts = [], []
    for i, row in enumerate(rows[1:], start=2):
        where = f"{name}: row {i}"
        if len(row) != 3:
            raise CountsError(f"{where}: {len(row)} fields, expected 3 (a,b,counts)")
        settings.append([_arm(row[0], f"{where}, column a"), _arm(row[1], f"{where}, column b")])
        counts.append(_count(row[2], f"{where}, column counts"))
    return settings, counts


def _read_json(text: str, name: str) -> tuple[list[list[Any]], list[int]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CountsError(f"{name}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or set(data) != {"projections", "counts"}:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CountsError(f'{name}: expected an object with exactly the keys "projections" and "counts", got {got}')
    proj, raw = data["projections"], data["counts"]
    if not isinstance(proj, list) or not isinstance(raw, list) or len(proj) != len(raw):
        raise CountsError(f'{name}: "projections" and "counts" must be lists of equal length')
    settings = []
    for i, setting in enumerate(proj):
        where = f"{name}: projections[{i}]"
        arms = list(setting) if isinstance(setting, str) else setting
        if not isinstance(arms, list) or len(arms) != 2:
            raise CountsError(f"{where}: {setting!r} needs one projection per arm, e.g. 'HD' (arm A first)")
        settings.append([_arm(a, where) for a in arms])
    return settings, [_count(c, f"{name}: counts[{i}]") for i, c in enumerate(raw)]


def read_counts(path: Path) -> tuple[list[list[Any]], np.ndarray]:
    """Return the settings (per-arm projection specs) and counts of a CSV or JSON counts file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CountsError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CountsError(f"{path}: cannot read file ({exc})") from None
    is_json = path.suffix.lower() == ".json" or text.lstrip().startswith("{")
    settings, counts = (_read_json if is_json else _read_csv)(text, str(path))
    if not settings:
        raise CountsError(f"{path}: no settings; give one row (or projection) per setting")
    if sum(counts) == 0:
        raise CountsError(f"{path}: every count is 0; there is nothing to fit")
    return settings, np.array(counts, dtype=float)


def analyse(settings: list[list[Any]], counts: np.ndarray, target: str, n_boot: int, seed: int) -> dict:
    """Return the JSON-ready result: fidelity to `target`, concurrence, purity (95% intervals) and the state."""
    from harness.analysis.mle import fit_tomography
    from harness.analysis.mle_bootstrap import state_estimates
    from harness.analysis.schemes import check_complete, custom_scheme

    scheme = custom_scheme(settings, detectors_per_arm=1)
    check_complete(scheme)
    data = counts[:, None]
    found = state_estimates(scheme, data, rng=np.random.default_rng(seed), target=TARGETS[target], n_boot=n_boot)
    rho = fit_tomography(scheme, data).rho
    out: dict[str, Any] = {}
    for key, name in _OUTPUTS.items():
        est = found[name]
        out[key] = {"value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high}
    out.update(target=target, settings=len(settings), counts=int(counts.sum()), bootstrap=n_boot, confidence=0.95)
    return {**out, "rho_real": rho.real.tolist(), "rho_imag": rho.imag.tolist()}


def _print(result: dict) -> None:
    from harness.metrics import format_interval

    typer.echo("density matrix (rows and columns HH, HV, VH, VV; arm A first), real part | imaginary part:")
    for re_row, im_row in zip(result["rho_real"], result["rho_imag"], strict=True):
        typer.echo("  " + " ".join(f"{x:+.4f}" for x in re_row) + "  |  " + " ".join(f"{x:+.4f}" for x in im_row))
    names = {"fidelity": f"fidelity to {result['target']}", "concurrence": "concurrence", "purity": "purity"}
    for key, label in names.items():
        r = result[key]
        typer.echo(f"{label}: {format_interval(r['value'], r['ci_low'], r['ci_high'], '.4f')}")
    typer.echo(
        f"maximum likelihood over {result['settings']} settings and {result['counts']} counts; "
        f"95% bootstrap intervals from {result['bootstrap']} replicates"
    )


@app.command("tomography")
def tomography(
    counts: Path = typer.Option(
        ...,
        "--counts",
        metavar="FILE",
        help="CSV 'a,b,counts' (labels or hwp=..;qwp=.. per arm) or JSON "
        '{"projections": [...], "counts": [...]}; arm A first, one detector per arm',
    ),
    target: str = typer.Option("phi+", "--target", help="Bell state of the fidelity: phi+, phi-, psi+ or psi-"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    bootstrap: int = typer.Option(200, "--bootstrap", help="bootstrap replicates behind the 95% intervals (>= 50)"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap"),
) -> None:
    """Print the maximum-likelihood density matrix of lab counts, its fidelity, concurrence and purity."""
    from harness.analysis.validation import AnalysisError

    if target not in TARGETS:
        fail("tomography", f"--target {target!r}: choose one of {', '.join(TARGETS)}")
    if bootstrap < 50:
        fail("tomography", f"--bootstrap must be >= 50 replicates, got {bootstrap}")
    try:
        settings, data = read_counts(counts)
        result = analyse(settings, data, target, bootstrap, seed)
    except CountsError as exc:
        fail("tomography", str(exc))
    except AnalysisError as exc:
        fail("tomography", f"{counts}: {exc}")
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print(result)
