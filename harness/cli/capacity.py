"""`qharness capacity`: C_E, Q1 and chi of a named channel family or of a Choi matrix from a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from harness.cli.app import app, fail


class _UsageError(Exception):
    """A user error the command reports on one line with exit status 4."""


def _parse_params(params: list[str]) -> dict[str, float]:
    out = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. --param p=0.1")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise _UsageError(f"--param {item!r}: value {value!r} is not a number") from None
    return out


def _named_channel(channel: str, params: dict[str, float]) -> tuple[float, float, float]:
    from harness.analysis.capacities import CLOSED_FORMS
    from harness.physics.channels import ChannelError

    if channel not in CLOSED_FORMS:
        raise _UsageError(f"--channel {channel!r}: unknown channel; choose one of {', '.join(CLOSED_FORMS)}")
    pname, fn = CLOSED_FORMS[channel]
    extra = sorted(set(params) - {pname})
    if extra:
        raise _UsageError(f"--param {extra[0]}: unknown parameter for {channel}; it takes {pname}")
    if pname not in params:
        raise _UsageError(f"--param {pname}=VALUE is required for --channel {channel}")
    try:
        caps = fn(params[pname])
    except ChannelError as exc:
        raise _UsageError(f"--param {pname}: {exc}") from None
    return caps.C_E, caps.Q1, caps.chi


def _load_choi(path: Path) -> np.ndarray:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise _UsageError(f"--choi {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(f"--choi {path}: cannot read file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise _UsageError(f"--choi {path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or "real" not in data:
        raise _UsageError(f'--choi {path}: expected an object {{"real": [[...]], "imag": [[...]]}}')
    try:
        real = np.asarray(data["real"], dtype=float)
        imag = np.asarray(data.get("imag", np.zeros_like(real)), dtype=float)
    except (TypeError, ValueError):
        raise _UsageError(f'--choi {path}: "real" and "imag" must be rectangular arrays of numbers') from None
    if real.shape != imag.shape:
        raise _UsageError(f'--choi {path}: wrong shape: "real" is {real.shape} but "imag" is {imag.shape}')
    return real + 1j * imag


def _compute(channel: str | None, params: list[str], choi: Path | None) -> tuple[float, float, float]:
    if (channel is None) == (choi is None):
        raise _UsageError("give exactly one of --channel NAME or --choi FILE")
    if channel is not None:
        return _named_channel(channel, _parse_params(params))
    if params:
        raise _UsageError("--param applies to --channel only, not to --choi")
    from harness.analysis.capacities import channel_capacities
    from harness.physics.channels import ChannelError, validate_choi

    matrix = _load_choi(choi)
    try:
        validate_choi(matrix, atol=1e-6)
    except ChannelError as exc:
        raise _UsageError(f"--choi {choi}: {exc}") from None
    caps = channel_capacities(matrix)
    return caps.C_E, caps.Q1, caps.chi


@app.command("capacity")
def capacity(
    channel: str | None = typer.Option(
        None, "--channel", help="depolarizing (p), dephasing (p), amplitude_damping (gamma) or erasure (epsilon)"
    ),
    param: list[str] = typer.Option([], "--param", help="Channel parameter NAME=VALUE, e.g. p=0.1"),
    choi: Path | None = typer.Option(
        None,
        "--choi",
        metavar="FILE",
        help='JSON file {"real": [[...]], "imag": [[...]]} holding the Choi matrix J = sum_ij |i><j| ⊗ N(|i><j|) '
        "of a qubit-input channel: input factor first (row and column i*d_out + a for input i, output a), "
        "unnormalised (Tr J = 2, Tr_out J = I), Hermitian, PSD and trace preserving within 1e-6",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Print C_E, Q1 and chi of a qubit-input channel in bits per channel use."""
    try:
        c_e, q1, chi = _compute(channel, param, choi)
    except _UsageError as exc:
        fail("capacity", str(exc))
    if as_json:
        typer.echo(json.dumps({"C_E": c_e, "Q1": q1, "chi": chi, "unit": "bit/use"}))
        return
    typer.echo("| quantity | value | unit |\n|---|---|---|")
    for name, value in (("C_E", c_e), ("Q1", q1), ("chi", chi)):
        typer.echo(f"| {name} | {value:.6f} | bit/use |")
