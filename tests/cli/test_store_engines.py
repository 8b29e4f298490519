"""`qharness history`, `compare`, `baseline`, `export` and `report` read a PostgreSQL store exactly as a SQLite one:
the same stored rows give the same output, byte for byte (apart from the store's own name), and the same exit codes.

The rows are those of a real `qharness run` (the `measured_store` fixture), copied unchanged into a fresh
PostgreSQL schema, so any difference is the engine's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import harness.cli.history  # registers history, compare, baseline and export
import harness.cli.report  # noqa: F401 - registers report
from harness.cli.app import app
from harness.store import Store, parse_store_url
from harness.store.schema import baselines, metrics, raw_records, runs

pytest_plugins = ["pg_engines"]  # pg_url: a fresh schema on the PostgreSQL test server
COPIED = (runs, raw_records, metrics, baselines)
READS = [
    ["history", "-p", "aer-reference"],
    ["history", "-p", "aer-reference", "-m", "bell_fidelity"],
    ["compare", "2.3.0", "2.4.0", "-p", "aer-reference"],
    ["compare", "2.3.0", "2.4.0", "-p", "aer-reference", "--fail-on-regression", "--alpha", "0.2"],
    ["export", "--format", "json"],
    ["export", "--format", "csv", "-p", "aer-reference"],
    ["baseline", "show"],
    ["history", "-p", "no-such-profile"],
    ["history", "-p", "aer-reference", "-m", "no_such_metric"],
    ["compare", "2.3.0", "9.9.9", "-p", "aer-reference"],
]


def copy_store(sqlite_path: Path, url: str) -> int:
    """Copy every run, raw record, metric and baseline of a SQLite store into the (new) store at `url`; return
    how many rows were copied."""
    Store(url).close()  # creates the tables at this release's schema
    source, target = sa.create_engine(f"sqlite:///{sqlite_path}"), sa.create_engine(parse_store_url(url).url)
    copied = 0
    try:
        with source.connect() as src, target.begin() as dst:
            for table in COPIED:
                rows = [dict(r) for r in src.execute(sa.select(table)).mappings()]
                if rows:
                    dst.execute(sa.insert(table), rows)
                copied += len(rows)
                if "id" in table.c:  # later inserts continue after the copied ids
                    dst.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
                        )
                    )
    finally:
        source.dispose()
        target.dispose()
    return copied


def invoke(args: list[str], db: str) -> tuple[int, str, str]:
    """Run one `qharness` command on the store `db`; return its exit code, stdout and stderr (store name masked)."""
    res = CliRunner().invoke(app, [*args, "--db", db])
    names = sorted({db, str(parse_store_url(db))}, key=len, reverse=True)
    out = []
    for text in (res.stdout, res.stderr):
        for name in names:
            text = text.replace(name, "<store>")
        out.append(text)
    return res.exit_code, out[0], out[1]


@pytest.fixture
def both(measured_store: tuple[Path, subprocess.CompletedProcess], pg_url: str, tmp_path: Path) -> tuple[str, str]:
    """(a copy of the measured SQLite store, a PostgreSQL store holding the same rows)."""
    db, res = measured_store
    assert res.returncode == 0, res.stderr
    local = tmp_path / "copy.db"
    local.write_bytes(db.read_bytes())
    assert copy_store(local, pg_url) > 0
    return str(local), pg_url


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_a_reading_command_says_the_same_on_both_engines(both: tuple[str, str], args: list[str]) -> None:
    sqlite, postgresql = both
    expected = invoke(args, sqlite)
    assert expected[0] in (0, 1, 4) and (expected[1] or expected[2])  # it did answer something
    if expected[0] != 4 and args[0] != "baseline":
        assert "bell_fidelity" in expected[1]  # the stored metrics themselves, not an empty table
    assert invoke(args, postgresql) == expected
    assert "Traceback" not in expected[1] + expected[2]


def test_marking_a_baseline_then_reporting_gives_the_same_result_on_both_engines(
    both: tuple[str, str], tmp_path: Path
) -> None:
    outputs = []
    for k, db in enumerate(both):
        mark = invoke(["baseline", "set", "-p", "aer-reference", "--build", "2.3.0"], db)
        show = invoke(["baseline", "show"], db)
        out = tmp_path / f"report-{k}"
        code, text, err = invoke(["report", "--release", "latest", "--out", str(out)], db)
        assert code == 0, err
        files = {name: (out / name).read_text(encoding="utf-8") for name in ("summary.json", "summary.md")}
        # The command's last line names where it wrote and how long it took.
        outputs.append((mark, show, text.rsplit("wrote ", 1)[0], files))
    assert outputs[0][1][0] == 0 and "2.3.0" in outputs[0][1][1]
    assert outputs[1] == outputs[0]
