"""Smoke test of the benchmark runner: one tiny section end to end, the table format and the setup errors."""

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| [^|]+ \| [^|]+ \| [^|]+ \| [^|]+ \| [^|]* \| [^|]* \|$")


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def test_one_tiny_section_writes_a_well_formed_results_file(tmp_path):
    from benchmarks.__main__ import main

    out = tmp_path / "RESULTS.md"
    assert main(["--only", "capacities", "--smoke", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks against peers\n")
    assert "Smoke run with tiny sizes" in text
    for label in ("CPU ", "cores", "Python ", "numpy ", "qiskit ", "measured "):
        assert label in text
    lines = text.splitlines()
    start = lines.index("| figure | ours | peer | ratio | unit | target |")
    assert lines[start + 1] == "|---|---|---|---|---|---|"
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append(ln)
    assert len(rows) == 7, text
    for ln in rows:
        assert ROW.match(ln), ln
    # The closed forms are exact, so the general optimiser must reproduce them to well below a millibit.
    errors = [float(ln.split(" | ")[1]) for ln in rows if "vs closed form" in ln]
    assert len(errors) == 4 and max(errors) < 1e-6, errors
    ce_q1 = next(ln for ln in rows if ln.startswith("| C_E + Q1 per random"))
    assert re.search(r"<= 1: (met|MISSED by \d+%)", ce_q1)


def test_targets_state_how_far_they_are_missed():
    from benchmarks.common import format_table, target_row

    met = target_row("a", 0.9, 1.0, 0.9, "x", at_least=0.8)
    missed = target_row("b", 0.6, 1.0, 0.6, "x", at_least=0.8)
    over = target_row("c", 7.5, 5.0, 1.5, "ms", at_most=1.0)
    assert met["met"] and met["target"] == ">= 0.8: met"
    assert not missed["met"] and missed["target"] == ">= 0.8: MISSED by 25%"
    assert not over["met"] and over["target"] == "<= 1: MISSED by 50%"
    lines = format_table([met, missed, over]).splitlines()
    assert lines[0] == "| figure | ours | peer | ratio | unit | target |"
    assert lines[3] == "| b | 0.6 | 1 | 0.6 | x | >= 0.8: MISSED by 25% |"


def test_missing_qiskit_experiments_is_reported_with_the_fix(monkeypatch):
    from benchmarks.__main__ import run_section

    monkeypatch.setitem(sys.modules, "qiskit_experiments", None)  # makes `import qiskit_experiments` fail
    sec = run_section("tomography", smoke=True)
    assert sec.rows == []
    assert "qiskit-experiments is not installed" in sec.error
    assert "pip install -e '.[bench]'" in sec.error


def test_unknown_section_is_a_usage_error(tmp_path, capsys):
    from benchmarks.__main__ import main

    assert main(["--only", "nope", "--out", str(tmp_path / "r.md")]) == 2
    assert "unknown section" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def test_re_running_one_section_keeps_the_others_as_measured():
    from benchmarks import results_file as rf
    from benchmarks.common import Section, row

    machine = {"cpu": "X", "cores": "2", "os": "Linux", "python": "3.11", "packages": "numpy 2", "date": "D1"}
    first = [
        rf.block_of(Section(k, f"{i}. Title {k}", [row("f", 1.0, 2.0, 0.5, "s")], "n"), machine)
        for i, k in enumerate(("a", "b", "c"), 1)
    ]
    text = rf.render(first)
    assert rf.render(rf.parse(text)) == text  # the file reads back to the same blocks
    again = rf.block_of(Section("b", "Title b", [row("f", 9.0, 2.0, 4.5, "s")], "n2"), machine | {"date": "D2"})
    merged = rf.merge(rf.parse(text), [again], ["a", "b", "c"])
    assert [(b.key, b.date) for b in merged] == [("a", "D1"), ("b", "D2"), ("c", "D1")]
    out = rf.render(merged)
    assert "| 9 | 2 | 4.5 | s |" in out and out.count("| 1 | 2 | 0.5 | s |") == 2
    assert "## 2. Title b" in out and "measured D2" in out
