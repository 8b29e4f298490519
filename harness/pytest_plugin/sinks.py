"""The session's outputs, read back from the store: the summary JSON, the terminal table, Allure's environment.

Under xdist only the controller calls these; the workers' runs are in the store under one session id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harness.metrics import format_interval

if TYPE_CHECKING:
    from harness.store import Store


class LineWriter(Protocol):
    """The part of pytest's terminal reporter the table needs."""

    def write_sep(self, sep: str, title: str) -> None: ...

    def write_line(self, line: str) -> None: ...


def json_default(obj: object) -> object:
    """A JSON-ready form of what json cannot encode: numpy arrays as lists, numpy scalars as numbers, else str."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def write_summary(store: Store, session_id: str, path: Path) -> None:
    """Write the summary JSON of a session's candidate runs."""
    from harness.summary import session_summary

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(session_summary(store, session_id), indent=2, default=json_default))


def write_allure_environment(store: Store, session_id: str, alluredir: str) -> None:
    """Write the provenance of a session's candidate runs as Allure's environment.properties."""
    from harness.report.build import write_allure_environment as write_properties
    from harness.summary import candidate_runs

    provenance = {}
    for run in candidate_runs(store, session_id):
        provenance[run.profile] = {
            "profile_hash": run.profile_hash,
            "build": run.build,
            "baseline": run.baseline_build,
            "seed": run.seed,
            "budget": run.budget,
            "git_sha": run.git_sha,
            "host": run.host,
            **run.versions,
        }
    write_properties(alluredir, provenance)


def write_tables(writer: LineWriter, store: Store, session_id: str) -> None:
    """Write one verdict table per candidate run of a session, under its headline, then each error's cause once."""
    from harness.summary import candidate_runs, run_summary

    for run in candidate_runs(store, session_id):
        obj = run_summary(store, run)
        writer.write_sep("=", f"qharness {obj['profile']}: {obj['headline']}")
        for line in (*format_table(obj["metrics"]), *format_causes(obj["metrics"])):
            writer.write_line(line)


def format_table(metrics: list[dict]) -> list[str]:
    """Plain-text rows of a verdict table from summary metric entries (none without metrics); the metric column fits
    the longest name."""
    if not metrics:
        return []
    width = max((len(m["name"]) for m in metrics), default=0)
    width = max(width, len("metric"))
    head = f"{'metric':<{width}} {'value [95% CI]':<36} {'baseline':<12} {'delta [95% CI]':<34} {'detectable':<11}"
    rows = [f"{head} verdict"]
    for m in metrics:
        base = f"{m['baseline']['value']:.6g}" if m.get("baseline") else "-"
        delta = _interval(m.get("delta"), "+.4g")
        mdr = m.get("min_detectable_regression")
        mdr_text = "-" if mdr is None else f"{mdr:.4g}"
        line = f"{m['name']:<{width}} {_interval(m, '.6g'):<36} {base:<12} {delta:<34} {mdr_text:<11}"
        rows.append(f"{line} {verdict_text(m)}")
    return rows


def verdict_text(m: dict) -> str:
    """A summary metric's verdict with what qualifies it: the metric an alias follows, why it is not gated."""
    text = str(m["verdict"])
    if m.get("follows"):
        text += f" (follows {m['follows']})"
    if m["verdict"] == "NOT_GATED" and m.get("reason"):
        text += f": {m['reason']}"
    return text


def format_causes(metrics: list[dict]) -> list[str]:
    """One line per distinct cause of the ERROR metrics, naming how many metrics (or which one) it stopped."""
    causes: dict[str, list[str]] = {}
    for m in metrics:
        if m["verdict"] == "ERROR":
            causes.setdefault(m.get("error") or "no estimate", []).append(m["name"])
    return [
        f"ERROR ({names[0] if len(names) == 1 else f'{len(names)} metrics'}): {cause}"
        for cause, names in causes.items()
    ]


def _interval(d: dict | None, fmt: str) -> str:
    if not d or d.get("value") is None:
        return "-"
    return format_interval(d["value"], d["ci_low"], d["ci_high"], fmt)
