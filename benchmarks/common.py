"""Shared pieces of the benchmark runner: timing, targets, machine description and the Markdown table."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

REPEATS = 5
KEY_PACKAGES = ("numpy", "scipy", "qiskit", "qiskit-aer", "qiskit-experiments", "stim", "pymatching", "qharness")
TABLE_HEADER = "| figure | ours | peer | ratio | unit | target |\n|---|---|---|---|---|---|"


class BenchmarkSetupError(RuntimeError):
    """A benchmark cannot run on this machine (a peer package is missing); the message says how to fix it."""


def require_qiskit_experiments() -> None:
    """Import qiskit-experiments or raise BenchmarkSetupError naming the `bench` extra that installs it."""
    try:
        import qiskit_experiments  # noqa: F401
    except ImportError as exc:
        raise BenchmarkSetupError(
            f"qiskit-experiments is not installed ({exc}); the tomography and Bell sections compare against it. "
            "Install it with `pip install -e '.[bench]'` (or `pip install qiskit-experiments`), "
            "or skip those sections with `python -m benchmarks --skip tomography,bell`"
        ) from None


def median_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of `fn` in seconds over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_median_times(
    a: Callable[[], object], b: Callable[[], object], repeats: int = REPEATS
) -> tuple[float, float]:
    """Median wall times (s) of `a` and `b` after one warm-up each, run alternately so both see the same load."""
    a()
    b()
    ta, tb = [], []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return statistics.median(ta), statistics.median(tb)


def row(
    figure: str, ours: float, peer: float, ratio: float, unit: str, target: str = "", met: bool | None = None
) -> dict:
    """One result row: the figure, both values, their ratio, the unit, and the target with its outcome."""
    return {"figure": figure, "ours": ours, "peer": peer, "ratio": ratio, "unit": unit, "target": target, "met": met}


def target_row(
    figure: str,
    ours: float,
    peer: float,
    ratio: float,
    unit: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
) -> dict:
    """A row whose ratio has a target (ratio >= at_least or ratio <= at_most), stating by how much it is missed."""
    if at_least is not None:
        met = ratio >= at_least
        text = f">= {at_least:g}: " + ("met" if met else f"MISSED by {100 * (1 - ratio / at_least):.0f}%")
    elif at_most is not None:
        met = ratio <= at_most
        text = f"<= {at_most:g}: " + ("met" if met else f"MISSED by {100 * (ratio / at_most - 1):.0f}%")
    else:
        raise ValueError("target_row needs at_least or at_most")
    return row(figure, ours, peer, ratio, unit, text, met)


@dataclass
class Section:
    """The outcome of one benchmark section: its rows, a Markdown note on the method, and its wall time in s."""

    key: str
    title: str
    rows: list[dict] = field(default_factory=list)
    notes: str = ""
    seconds: float = 0.0
    error: str | None = None
    table: str = ""  # a pre-rendered Markdown table, for sections whose columns are not ours/peer/ratio


def _fmt(x: object) -> str:
    if isinstance(x, str):
        return x
    if x is None:
        return ""
    v = float(x)  # type: ignore[arg-type]
    if v != v:
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.4g}"


def format_table(rows: list[dict]) -> str:
    """Return the Markdown table (figure | ours | peer | ratio | unit | target) of `rows`."""
    lines = [TABLE_HEADER]
    for r in rows:
        cells = [r["figure"], _fmt(r["ours"]), _fmt(r["peer"]), _fmt(r["ratio"]), r["unit"], r.get("target", "")]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    """The machine the numbers come from: CPU model, cores, OS, Python and key package versions, UTC date."""
    versions = {}
    for pkg in KEY_PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
