"""Everything a store answers through `Store`'s public queries, as canonical JSON text (to compare two stores)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from harness.store import Store


def _estimate(e: Any) -> dict:
    """Return an Estimate's persisted fields (`samples` is never stored; `binomial` counts live in the detail)."""
    d = dataclasses.asdict(e)
    d.pop("samples", None)
    d.pop("binomial", None)
    return d


def api_dump(s: Store) -> str:
    """Return every run, raw record, metric, baseline, history row and latest metric of `s` as sorted JSON."""
    runs = s.runs()
    out: dict[str, Any] = {
        "runs": [dataclasses.asdict(r) for r in runs],
        "raw_records": {r.id: s.raw_records(r.id) for r in runs},
        "metrics": {r.id: {k: [_estimate(e), v, d] for k, (e, v, d) in s.metrics(r.id).items()} for r in runs},
        "baselines": s.baselines(),
        "profiles": s.profiles(),
        "history": {p: s.history(p) for p in s.profiles()},
        "latest": {
            f"{r.profile}@{r.build}": {k: _estimate(e) for k, e in s.latest_metrics(r.profile, r.build).items()}
            for r in runs
        },
        "has_build": {f"{r.profile}@{r.build}": s.has_build(r.profile, r.build) for r in runs},
    }
    return json.dumps(out, sort_keys=True, indent=1, default=str)
