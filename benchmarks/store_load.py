"""Load on the results store: 16 writer processes x 100 runs into SQLite and into PostgreSQL, then a report over
10,000 stored runs.

    python -m benchmarks.store_load [--writers 16] [--runs 100] [--report-runs 10000] [--engines sqlite,postgresql]

Each writer opens the (new) store at the same moment and writes whole runs through `Store` exactly as a session
does: start_run, 8 raw records, 20 metrics with their gate details, finish_run, every write its own committed
transaction (30 per run), with the payloads of real quick-budget runs (tests/store/fixtures/store-v1.db). A writer
counts each call that raised, and "database is locked" among them. Afterwards every row a writer was told it
wrote is looked for (lost rows), the database's own integrity check runs, the store is filled to 10,000 runs by
bulk inserts of the same rows, and `build_report` writes the HTML/Markdown/JSON report of all its profiles.

PostgreSQL: $QHARNESS_BENCH_PG (a role that may CREATE DATABASE), else a throwaway server started with
tests/store/pg_server.py with its durable defaults (fsync and synchronous_commit on). SQLite: a file on the
same disk, WAL, synchronous=FULL. The section is written to benchmarks/RESULTS-store.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import machine_info
from harness.metrics import Direction, Estimate
from harness.store import Store, parse_store_url
from harness.store.schema import metrics, raw_records, runs

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "store" / "fixtures" / "store-v1.db"
PG_SERVER = ROOT / "tests" / "store" / "pg_server.py"
OUT = Path(__file__).resolve().parent / "RESULTS-store.md"
PROFILES = ("bench-1", "bench-2", "bench-3", "aer-reference")
REPORT_TARGET_S = 10.0


# -- the rows a real run writes -----------------------------------------------------------------------------


def _template() -> tuple[dict, list[dict], list[dict]]:
    """Return one real candidate run of the fixture: its run row, raw record rows and metric rows."""
    src = sa.create_engine(f"sqlite:///file:{FIXTURE}?mode=ro&uri=true")
    try:
        with src.connect() as c:
            run = dict(c.execute(sa.select(runs).where(runs.c.build == "2.5.0-rc1").limit(1)).mappings().one())
            raws = [
                dict(r) for r in c.execute(sa.select(raw_records).where(raw_records.c.run_id == run["id"])).mappings()
            ]
            mets = [dict(r) for r in c.execute(sa.select(metrics).where(metrics.c.run_id == run["id"])).mappings()]
    finally:
        src.dispose()
    return run, raws, mets


def _estimate(m: dict) -> Estimate:
    """Return the Estimate of a stored metric row."""
    return Estimate(
        m["value"], m["ci_low"], m["ci_high"], m["n"], m["unit"], Direction(m["direction"]), m["confidence"]
    )


# -- writers ----------------------------------------------------------------------------------------------------


def _writer(url: str, k: int, n_runs: int, ready: str, go: str, out: Any) -> None:
    """Write `n_runs` whole runs through Store once `go` exists; put (k, counts of rows written, failures) on `out`."""
    import json

    run, raws, mets = _template()
    wrote = Counter()
    failures: list[str] = []
    try:
        s = Store(url)
    except Exception as exc:  # the load's outcome, reported, not a crash of the benchmark
        out.put((k, dict(wrote), [f"open: {exc}"]))
        return
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.001)
    for i in range(n_runs):
        try:
            rid = s.start_run(
                profile=PROFILES[k % len(PROFILES)],
                profile_hash=run["profile_hash"],
                build=f"3.{i // 10}.0",
                baseline_build=run["baseline_build"],
                seed=i,
                budget="quick",
                session_id=f"w{k}",
                provenance=json.loads(run["provenance"]),
            )
            wrote["runs"] += 1
            for r in raws:
                s.add_raw(rid, r["protocol"], json.loads(r["payload"]), test=r["test"])
                wrote["raw_records"] += 1
            for m in mets:
                detail = json.loads(m["detail"]) if m["detail"] else None
                s.add_metric(rid, m["name"], _estimate(m), m["verdict"], detail)
                wrote["metrics"] += 1
            s.finish_run(rid, "passed")
            wrote["finished"] += 1
        except Exception as exc:  # counted: the benchmark's point is how many there are
            failures.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
    s.close()
    out.put((k, dict(wrote), failures))


def _run_writers(url: str, writers: int, n_runs: int, work: Path) -> tuple[float, Counter, list[str]]:
    """Start the writers, release them together, and return (wall s of the writing, rows reported, failures)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    go = work / f"go-{uuid.uuid4().hex}"
    readies = [work / f"ready-{go.name}-{k}" for k in range(writers)]
    procs = [ctx.Process(target=_writer, args=(url, k, n_runs, str(readies[k]), str(go), out)) for k in range(writers)]
    for p in procs:
        p.start()
    while not all(r.exists() for r in readies) and any(p.is_alive() for p in procs):
        time.sleep(0.01)
    t0 = time.perf_counter()
    go.touch()
    results = [out.get(timeout=3600) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    reported: Counter = Counter()
    failures: list[str] = []
    for _k, wrote, failed in results:
        reported.update(wrote)
        failures += failed
    return elapsed, reported, failures


# -- checks -------------------------------------------------------------------------------------------------


def _count(c: sa.Connection, sql: str) -> int:
    """Return the single integer a counting query answers."""
    return int(c.execute(sa.text(sql)).scalar_one())


def _found(url: str) -> Counter:
    """Return the rows the writers' runs have in the store (by table), and the runs finished as passed."""
    engine = sa.create_engine(parse_store_url(url).url)
    try:
        with engine.connect() as c:
            mine = "SELECT id FROM runs WHERE session_id LIKE 'w%'"
            return Counter(
                runs=_count(c, "SELECT COUNT(*) FROM runs WHERE session_id LIKE 'w%'"),
                raw_records=_count(c, f"SELECT COUNT(*) FROM raw_records WHERE run_id IN ({mine})"),
                metrics=_count(c, f"SELECT COUNT(*) FROM metrics WHERE run_id IN ({mine})"),
                finished=_count(c, "SELECT COUNT(*) FROM runs WHERE session_id LIKE 'w%' AND status = 'passed'"),
            )
    finally:
        engine.dispose()


def _integrity(url: str) -> str:
    """Return 'ok' or what the database's integrity check found (SQLite: integrity_check and foreign_key_check;
    PostgreSQL: orphan rows, unvalidated foreign keys, and duplicate ids)."""
    engine = sa.create_engine(parse_store_url(url).url)
    try:
        with engine.connect() as c:
            if engine.dialect.name == "sqlite":
                check = [r[0] for r in c.exec_driver_sql("PRAGMA integrity_check")]
                fks = c.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                return "ok" if check == ["ok"] and not fks else f"integrity_check {check[:3]}, {len(fks)} FK violations"
            problems = {
                "orphan raw records": _count(
                    c, "SELECT COUNT(*) FROM raw_records r LEFT JOIN runs u ON u.id = r.run_id WHERE u.id IS NULL"
                ),
                "orphan metrics": _count(
                    c, "SELECT COUNT(*) FROM metrics m LEFT JOIN runs u ON u.id = m.run_id WHERE u.id IS NULL"
                ),
                "unvalidated foreign keys": _count(
                    c, "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
                ),
                "foreign keys": 2 - _count(c, "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f'"),
            }
            bad = {k: v for k, v in problems.items() if v}
            return "ok" if not bad else ", ".join(f"{k}: {v}" for k, v in bad.items())
    finally:
        engine.dispose()


# -- 10,000 runs and the report ------------------------------------------------------------------------------


def _fill(url: str, total: int) -> int:
    """Bulk-insert copies of the template run (its raw records and metrics) until the store holds `total` runs."""
    run, raws, mets = _template()
    raws = [{k: v for k, v in r.items() if k != "id"} for r in raws]
    mets = [{k: v for k, v in m.items() if k != "id"} for m in mets]
    engine = sa.create_engine(parse_store_url(url).url)
    try:
        with engine.begin() as c:
            have = _count(c, "SELECT COUNT(*) FROM runs")
            first = _count(c, "SELECT COALESCE(MAX(id), 0) FROM runs") + 1
            todo = max(total - have, 0)
            per_profile = -(-todo // len(PROFILES))
            start = datetime(2026, 1, 1, tzinfo=UTC)
            new_runs = []
            for n in range(todo):
                # Per profile 30 older builds, oldest first, the runs a minute apart.
                when = (start + timedelta(minutes=n)).isoformat(timespec="microseconds")
                new_runs.append(
                    {
                        **run,
                        "id": first + n,
                        "profile": PROFILES[n // per_profile],
                        "build": f"2.{(n % per_profile) * 30 // per_profile}.0",
                        "started_at": when,
                        "ended_at": when,
                        "session_id": "fill",
                    }
                )
            for at in range(0, len(new_runs), 500):
                part = new_runs[at : at + 500]
                c.execute(sa.insert(runs), part)
                c.execute(sa.insert(raw_records), [{**r, "run_id": x["id"]} for x in part for r in raws])
                c.execute(sa.insert(metrics), [{**m, "run_id": x["id"]} for x in part for m in mets])
            if engine.dialect.name == "postgresql":
                c.execute(sa.text("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT MAX(id) FROM runs))"))
            return _count(c, "SELECT COUNT(*) FROM runs")
    finally:
        engine.dispose()


def _time_report(url: str, work: Path, repeats: int = 3) -> tuple[list[float], str]:
    """Return the wall times (s) of `build_report` over every profile, and its headline."""
    from harness.report.build import build_report

    times, headline = [], ""
    with Store(url) as store:
        for i in range(repeats):
            t0 = time.perf_counter()
            result = build_report(store, release="load", out_dir=work / f"report-{i}")
            times.append(time.perf_counter() - t0)
            headline = f"{result.verdict} over {len(store.profiles())} profiles"
    return times, headline


def _time_reads(url: str) -> tuple[float, float, int, int]:
    """Return the seconds of a report's store reads for every profile, as now (every run's metric rows) and with
    one run per build (`history(run_ids=...)`), and the metric rows each reads."""
    with Store(url) as store:
        t0 = time.perf_counter()
        all_rows = 0
        for p in PROFILES:  # what the report reads now: every run, and every run's metric rows
            store.runs(p)
            all_rows += len(store.history(p))
        t1 = time.perf_counter()
        shown_rows = 0
        for p in PROFILES:
            with_metrics = store.metric_run_ids(p)
            newest: dict[str, int] = {}
            for r in store.runs(p):  # oldest first: the last run of a build is its newest
                if r.id in with_metrics:
                    newest[r.build] = r.id
            shown_rows += len(store.history(p, run_ids=newest.values()))
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, all_rows, shown_rows


# -- engines and the section ---------------------------------------------------------------------------------


def _pg_server(work: Path) -> tuple[str, Path | None]:
    """Return a server URL that may create databases ($QHARNESS_BENCH_PG, else a throwaway durable server)."""
    given = os.environ.get("QHARNESS_BENCH_PG", "").strip()
    if given:
        return given, None
    directory = Path(tempfile.mkdtemp(prefix="qharness-bench-pg-"))
    out = subprocess.run(
        [sys.executable, str(PG_SERVER), "start", str(directory), "--durable"], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not start a PostgreSQL server: {out.stderr.strip()}")
    return out.stdout.strip(), directory


def _new_database(server: str) -> str:
    """Create an empty database on `server` and return its URL."""
    import psycopg

    name = f"qh_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{server.rpartition('/')[0]}/{name}"


def measure(url: str, writers: int, n_runs: int, report_runs: int, work: Path) -> dict[str, Any]:
    """Run the load on the (new, empty) store at `url` and return its figures."""
    elapsed, reported, failures = _run_writers(url, writers, n_runs, work)
    found = _found(url)
    lost = sum(max(reported[t] - found[t], 0) for t in ("runs", "raw_records", "metrics", "finished"))
    extra = sum(max(found[t] - reported[t], 0) for t in ("runs", "raw_records", "metrics", "finished"))
    commits = reported["runs"] + reported["raw_records"] + reported["metrics"] + reported["finished"]
    figures = {
        "expected_runs": writers * n_runs,
        "runs": found["runs"],
        "raw_records": found["raw_records"],
        "metrics": found["metrics"],
        "lost": lost,
        "unreported": extra,
        "failures": len(failures),
        "locked": sum("database is locked" in f for f in failures),
        "first_failures": sorted(Counter(failures).items())[:3],
        "write_s": elapsed,
        "commits_per_s": commits / elapsed,
        "integrity": _integrity(url),
    }
    figures["stored_runs"] = _fill(url, report_runs)
    figures["integrity_after_fill"] = _integrity(url)
    figures["report_s"], figures["report_note"] = _time_report(url, work)
    figures["reads_all_s"], figures["reads_shown_s"], all_rows, shown_rows = _time_reads(url)
    figures["report_note"] += f"; metric rows read for all profiles: {all_rows} now, {shown_rows} one run per build"
    figures["report_note"] += f"; 1-minute load average of the machine after the report: {os.getloadavg()[0]:.1f}"
    return figures


def _cells(results: dict[str, dict], key: str, fmt: str = "{}") -> list[str]:
    """Return one figure's cell per engine ('not run' for an engine left out)."""
    return [fmt.format(results[e][key]) if e in results else "not run" for e in ("sqlite", "postgresql")]


def _met(results: dict[str, dict], ok: Any) -> str:
    """Return 'met' when `ok(figures)` holds for every engine run, else 'MISSED (engine, ...)'."""
    missed = [e for e, f in results.items() if not ok(f)]
    return "met" if not missed else f"MISSED ({', '.join(missed)})"


def section(results: dict[str, dict], writers: int, n_runs: int, report_runs: int) -> str:
    """Return the Markdown section of the load figures (for benchmarks/RESULTS.md)."""
    for f in results.values():
        f["report_median"] = statistics.median(f["report_s"])
        f["report_max"] = max(f["report_s"])
        f["stored"] = f"{f['runs']} / {f['raw_records']} / {f['metrics']}"
    lines = [
        (
            f"runs / raw records / metrics stored (expected {writers * n_runs} / {writers * n_runs * 8} / "
            f"{writers * n_runs * 20})",
            _cells(results, "stored"),
            "",
        ),
        (
            "rows a writer was told were written but are missing (lost)",
            _cells(results, "lost"),
            "0: " + _met(results, lambda f: f["lost"] == 0),
        ),
        (
            'writes that raised (of them "database is locked")',
            [f"{a} ({b})" for a, b in zip(_cells(results, "failures"), _cells(results, "locked"), strict=True)],
            "0: " + _met(results, lambda f: f["failures"] == 0),
        ),
        (
            "integrity check after the load, and after filling to the report size",
            [
                f"{a}, {b}"
                for a, b in zip(_cells(results, "integrity"), _cells(results, "integrity_after_fill"), strict=True)
            ],
            "ok: " + _met(results, lambda f: f["integrity"] == f["integrity_after_fill"] == "ok"),
        ),
        ("wall time of the concurrent writing (s)", _cells(results, "write_s", "{:.1f}"), ""),
        ("committed write transactions per second, all writers", _cells(results, "commits_per_s", "{:.0f}"), ""),
        (
            "runs stored when the report runs",
            _cells(results, "stored_runs"),
            ">= 10000: " + _met(results, lambda f: f["stored_runs"] >= 10_000),
        ),
        (
            "`build_report` of every profile (s), median of 3 (max)",
            [
                f"{a} ({b})"
                for a, b in zip(
                    _cells(results, "report_median", "{:.2f}"), _cells(results, "report_max", "{:.2f}"), strict=True
                )
            ],
            f"<= {REPORT_TARGET_S:g} s: " + _met(results, lambda f: f["report_max"] <= REPORT_TARGET_S),
        ),
        (
            "store reads of that report, all profiles: runs + history of every run (s)",
            _cells(results, "reads_all_s", "{:.2f}"),
            "",
        ),
        (
            "the same reads with one run per build: runs + metric_run_ids + history(run_ids) (s)",
            _cells(results, "reads_shown_s", "{:.2f}"),
            "",
        ),
    ]
    table = ["| figure | SQLite | PostgreSQL | target |", "|---|---|---|---|"]
    table += [f"| {fig} | {' | '.join(str(c) for c in cells)} | {target} |" for fig, cells, target in lines]
    m = machine_info()
    notes = [
        f"{writers} writer processes x {n_runs} runs, released together on a fresh store; each run is 30 committed "
        "write transactions (start, 8 raw records, 20 metrics with their gate details, finish) with the payloads "
        "of a real quick-budget run. SQLite: WAL, synchronous=FULL, on the local ext4 disk. PostgreSQL 15: a "
        "local server with durable defaults (fsync, synchronous_commit on), over TCP on 127.0.0.1.",
        f"The store is then filled to {report_runs} runs (4 profiles, 40 builds each) with bulk copies of the same "
        "rows; `build_report` writes index.html, summary.md and summary.json for every profile.",
        *(
            f"{e}: {f['report_note']}" + (f"; failures: {f['first_failures']}" if f["failures"] else "")
            for e, f in results.items()
        ),
        f"Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs), {m['os']}, Python {m['python']}; "
        f"{m['date']}.",
    ]
    return "\n".join(
        [
            "<!-- Section for benchmarks/RESULTS.md, produced by `python -m benchmarks.store_load`. -->",
            "",
            "## Results store under load: concurrent writers, integrity, report over 10,000 runs",
            "",
            *table,
            "",
            *(f"- {n}" for n in notes),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the load on each engine, print the section and write it to benchmarks/RESULTS-store.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--runs", type=int, default=100, help="runs per writer")
    ap.add_argument("--report-runs", type=int, default=10_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    results: dict[str, dict] = {}
    for engine in args.engines.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"qharness-load-{engine}-"))
        server_dir = None
        try:
            if engine == "sqlite":
                url = str(work / "load.db")
            else:
                server, server_dir = _pg_server(work)
                url = _new_database(server)
            t0 = time.perf_counter()
            results[engine] = measure(url, args.writers, args.runs, args.report_runs, work)
            print(f"{engine}: done in {time.perf_counter() - t0:.0f} s: {results[engine]}", file=sys.stderr)
        finally:
            if server_dir is not None:
                subprocess.run([sys.executable, str(PG_SERVER), "stop", str(server_dir)], check=False)
                shutil.rmtree(server_dir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    text = section(results, args.writers, args.runs, args.report_runs)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
