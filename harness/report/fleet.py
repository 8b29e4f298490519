"""The fleet matrix of a report: every bench (profile) of a shared store by every build, with each cell's verdict.

A cell is the newest finished candidate run of that profile and build (passed, failed or error; an aborted or
running one is not a result) and its verdict is the run's overall verdict by the summary contract
(`harness.summary.run_verdict`). Rows are the profiles the report holds, in name order, with their device kind
(bench, aer, replay); a row ends at the build its section reports, as that profile's trends do, so a report of a
release never shows what came after it. Columns are the builds of the cells in build order (or --builds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from harness.gate import Verdict
from harness.report.data import REPORTABLE_STATUSES, is_candidate
from harness.report.versions import order_builds
from harness.store import RunRow, Store
from harness.store.schema import metrics
from harness.summary import run_verdict

# Enough bound parameters per IN (...) for any engine, few enough round trips for 10,000 runs.
_CHUNK = 500


@dataclass(frozen=True)
class FleetCell:
    """One profile's newest finished candidate run of one build, and its verdict."""

    run_id: int
    verdict: str
    status: str
    baseline_build: str | None
    host: str
    ended_at: str | None


@dataclass
class FleetMatrix:
    """Profiles (rows) by builds (columns); `cells[(profile, build)]` exists where that build was measured there."""

    profiles: list[str]
    builds: list[str]
    kinds: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, str], FleetCell] = field(default_factory=dict)

    def cell(self, profile: str, build: str) -> FleetCell | None:
        """Return the cell of `profile` at `build`, or None where that build has no finished run there."""
        return self.cells.get((profile, build))

    def counts(self) -> dict[str, int]:
        """Return how many cells have each verdict."""
        found: dict[str, int] = defaultdict(int)
        for c in self.cells.values():
            found[c.verdict] += 1
        return dict(found)


def _newest_runs(runs: Iterable[RunRow], profiles: Collection[str]) -> dict[tuple[str, str], RunRow]:
    """Return per (profile, build) the newest finished candidate run of `profiles` (runs come oldest first)."""
    newest: dict[tuple[str, str], RunRow] = {}
    for r in runs:
        if r.profile in profiles and is_candidate(r) and str(r.status) in REPORTABLE_STATUSES:
            newest[(r.profile, r.build)] = r
    return newest


def _metric_verdicts(store: Store, run_ids: list[int]) -> dict[int, list[Verdict]]:
    """Return the stored metric verdicts of each run, in one query per chunk of runs."""
    found: dict[int, list[Verdict]] = defaultdict(list)
    with store.engine.connect() as c:
        for start in range(0, len(run_ids), _CHUNK):
            chunk = run_ids[start : start + _CHUNK]
            stmt = sa.select(metrics.c.run_id, metrics.c.verdict).where(metrics.c.run_id.in_(chunk))
            for run_id, verdict in c.execute(stmt):
                found[run_id].append(Verdict(verdict or Verdict.NO_BASELINE))
    return found


def _shown(
    newest: dict[tuple[str, str], RunRow], releases: Mapping[str, str], asked: list[str] | None
) -> tuple[list[str], dict[tuple[str, str], RunRow]]:
    """Return the columns and the runs in them: each profile's builds up to its reported one (in build order)."""
    order = {b: i for i, b in enumerate(order_builds({b for _, b in newest} | set(releases.values())))}
    shown = {
        (p, b): run for (p, b), run in newest.items() if order[b] <= order[releases[p]] and (not asked or b in asked)
    }
    columns = list(asked) if asked else sorted({b for _, b in shown}, key=order.__getitem__)
    return columns, shown


def collect_fleet(store: Store, releases: Mapping[str, str], builds: list[str] | None = None) -> FleetMatrix:
    """Return the fleet matrix of the reported profiles: `releases` maps each to the build its section reports.

    A profile's row stops at that build, as its trends do; `builds` (the report's --builds) fixes the columns.
    """
    newest = _newest_runs(store.runs(), releases.keys())
    columns, shown = _shown(newest, releases, builds)
    verdicts = _metric_verdicts(store, sorted(r.id for r in shown.values()))
    matrix = FleetMatrix(profiles=sorted(releases), builds=columns)
    for (profile, build), run in shown.items():
        matrix.cells[(profile, build)] = FleetCell(
            run_id=run.id,
            verdict=str(run_verdict(run, verdicts.get(run.id, []))),
            status=str(run.status),
            baseline_build=run.baseline_build,
            host=run.host,
            ended_at=run.ended_at,
        )
        matrix.kinds.setdefault(profile, str(run.provenance.get("kind", "")))
    return matrix


def profile_slug(profile: str) -> str:
    """Return the id fragment of a profile's section in the report (`#profile-<slug>`)."""
    return profile.replace(" ", "-")


def _cell_view(c: FleetCell | None, reported: bool, slug: str, symbols: dict[str, str]) -> dict | None:
    """Return the display of one cell (None where the build was not measured on that profile)."""
    if c is None:
        return None
    base = f"vs {c.baseline_build}" if c.baseline_build else "no baseline build"
    return {
        "verdict": c.verdict,
        "symbol": symbols.get(c.verdict, ""),
        "title": f"run {c.run_id} ({c.status}, {base}) on {c.host}, ended {c.ended_at or 'unknown'}",
        "anchor": f"#profile-{slug}" if reported else None,
    }


def fleet_view(matrix: FleetMatrix, reported: dict[str, int], symbols: dict[str, str]) -> dict:
    """Return the template view of the matrix; a cell links to its profile's section when it is the reported run.

    `reported` maps each profile with a section in the report to the id of the run the section shows.
    """
    rows = []
    for p in matrix.profiles:
        slug = profile_slug(p)
        cells = [
            _cell_view(c, c is not None and reported.get(p) == c.run_id, slug, symbols)
            for c in (matrix.cell(p, b) for b in matrix.builds)
        ]
        rows.append({"name": p, "kind": matrix.kinds.get(p, ""), "cells": cells})
    return {"builds": matrix.builds, "rows": rows}


def fleet_markdown(view: dict, cell: Callable[[str], str]) -> list[str]:
    """Return the matrix as a GitHub-flavoured Markdown table (`cell` escapes a cell's text)."""
    lines = [
        f"### Fleet: {len(view['rows'])} profile(s) × {len(view['builds'])} build(s)",
        "",
        "| Profile | Kind | " + " | ".join(cell(f"`{b}`") for b in view["builds"]) + " |",
        "|---|---|" + "---|" * len(view["builds"]),
    ]
    for row in view["rows"]:
        texts = ["—" if c is None else f"{c['symbol']} {c['verdict']}" for c in row["cells"]]
        lines.append("| " + " | ".join(cell(t) for t in [f"`{row['name']}`", row["kind"] or "—", *texts]) + " |")
    return [*lines, ""]
