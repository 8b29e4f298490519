"""Where a release run's numbers came from, as the report's provenance block: run, baseline, versions, instruments."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.store import RunRow

# The session records in the candidate run's provenance where its baseline's metrics came from.
BASELINE_SOURCE_KEY = "baseline_source"


def baseline_source_text(run: RunRow, baseline_build: str | None) -> str:
    """Return, in words, where the gate's baseline of `run` came from: the store, measured in the session, or none."""
    source = run.provenance.get(BASELINE_SOURCE_KEY)
    build = baseline_build or "?"
    if source == "store":
        return f"baseline {build}: from the results store (its newest completed run of that build)"
    if source == "measured":
        return f"baseline {build}: measured in this session (the store held no completed run of it)"
    if source == "none" and baseline_build is None:
        return "no baseline: none was named (--baseline-build, `qharness baseline set` or firmware.baseline)"
    if source == "none":
        kind = run.provenance.get("kind") or "this"
        return (
            f"no baseline: the store held no completed run of {build}, "
            f"and a {kind} profile does not measure its baseline in the session"
        )
    return "not recorded in this run"


def instrument_rows(provenance: dict[str, Any]) -> list[dict]:
    """Return one row per instrument of a bench run's provenance: queries, writes, retries, reconnects, faults."""
    inst = provenance.get("instruments")
    if not isinstance(inst, dict):
        return []
    rows = []
    for name, stats in inst.items():
        if not isinstance(stats, dict):
            continue
        faults = stats.get("faults") or {}
        rows.append(
            {
                "name": name,
                "queries": int(stats.get("queries", 0)),
                "writes": int(stats.get("writes", 0)),
                "retries": int(stats.get("retries", 0)),
                "reconnects": int(stats.get("reconnects", 0)),
                "faults": {str(k): int(v) for k, v in faults.items()} if isinstance(faults, dict) else {},
            }
        )
    return rows


def provenance_rows(run: RunRow, baseline_build: str | None, instruments: list[dict]) -> list[tuple[str, str]]:
    """Return the provenance of a profile's release run as (label, text) rows."""
    rows = [
        ("profile", run.profile),
        ("profile hash", run.profile_hash),
        ("build", run.build),
        ("baseline build", baseline_build or "none"),
        ("baseline source", baseline_source_text(run, baseline_build)),
        ("seed", str(run.seed)),
        ("budget", run.budget),
        ("run id / status", f"{run.id} / {run.status}"),
        ("host", run.host),
        ("git sha", run.git_sha or "unknown"),
        ("started", run.started_at),
        ("ended", run.ended_at or "not finished"),
    ]
    rows += [
        (k.removesuffix("_version").replace("_", "-") + " version", v or "absent") for k, v in run.versions.items()
    ]
    if not instruments:
        return [*rows, ("retries and faults", "no instrument statistics (not a bench run)")]
    faults: Counter = Counter()
    for i in instruments:
        faults.update(i["faults"])
    rows.append(("retries (all instruments)", str(sum(i["retries"] for i in instruments))))
    rows.append(("faults", ", ".join(f"{k}: {v}" for k, v in sorted(faults.items())) or "none"))
    redos = (run.provenance.get("instruments") or {}).get("setting_redos")
    if redos is not None:
        rows.append(("tomography settings redone", str(redos)))
    return rows
