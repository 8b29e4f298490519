"""A release report holds its own release only: the profiles with a run of its build, trends up to that build.

The store holds two releases of aer-reference (2.4.0 gated on a baseline measured in its session, 2.5.0-rc1 on the
stored 2.4.0) and an emulator profile with runs of 2.3.0 and 2.5.0-rc1 only; see report_store.TWO_RELEASES.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_store import UNRELATED, Planned, ReleaseStore, fill_planned, fill_two_release_store, start_bare_run
from typer.testing import CliRunner

import harness.cli.report  # noqa: F401 - registers the report command
from harness.cli.app import app
from harness.report import LATEST, ReportError, ReportResult, build_report
from harness.store import Store

LATER = "2.5.0-rc1"


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory: pytest.TempPathFactory) -> ReleaseStore:
    """The store of TWO_RELEASES, shared read-only by this module."""
    return fill_two_release_store(tmp_path_factory.mktemp("two") / "qharness.db")


def report(store_path: Path, release: str, out: Path, **kw: object) -> tuple[ReportResult, str, str, list]:
    """Build a report; return it with its index.html, summary.md and parsed summary.json."""
    with Store(store_path) as store:
        result = build_report(store, release, out, **kw)  # type: ignore[arg-type]
    html = result.index_html.read_text(encoding="utf-8")
    return result, html, result.summary_md.read_text(encoding="utf-8"), json.loads(result.summary_json.read_text())


def sections(html: str) -> list[str]:
    """The profiles that have a section in the HTML, in order."""
    return re.findall(r'<section class="profile" id="[^"]*" data-profile="([^"]+)"', html)


def section(html: str, profile: str) -> str:
    """The HTML of one profile's section."""
    return html.split(f'data-profile="{profile}"', 1)[1].split('<section class="profile"', 1)[0]


def trend_axes(section_html: str) -> dict[str, list[str]]:
    """The build labels on the x axis of each trend plot of a section, by metric."""
    figures = re.findall(r'<figure class="trend" data-metric="([^"]+)">(.*?)</figure>', section_html, re.S)
    return {m: re.findall(r"<title>([^<:]+)</title></text>", svg) for m, svg in figures}


def provenance(section_html: str, key: str) -> str:
    """The text of one row of a section's provenance table."""
    return re.search(rf'<td data-key="{key}">(.*?)</td>', section_html, re.S).group(1)


def test_the_earlier_release_shows_only_itself(two_releases: ReleaseStore, tmp_path: Path) -> None:
    result, html, md, summary = report(two_releases.path, "2.4.0", tmp_path / "r")
    assert sections(html) == ["aer-reference"]
    assert [(s["profile"], s["build"]) for s in summary] == [("aer-reference", "2.4.0")]
    assert result.skipped == []
    for text in (html, md, json.dumps(summary)):
        assert LATER not in text
        assert UNRELATED not in text
    axes = trend_axes(section(html, "aer-reference"))
    assert set(axes) == set(two_releases.metric_names)
    # 2.3.0 is the baseline run measured in the 2.4.0 session; the later release's points are not drawn.
    assert all(labels == ["2.3.0", "2.4.0"] for labels in axes.values()), axes
    want = "baseline 2.3.0: measured in this session (the store held no completed run of it)"
    assert provenance(html, "baseline source") == want
    assert f"Baseline source: {want}." in md
    # The release run really was gated against the measured baseline: its verdicts are the stored ones.
    truth = two_releases.runs["aer-reference", "2.4.0"]
    assert {m["name"]: m["verdict"] for m in summary[0]["metrics"]} == truth.verdicts
    assert "NO_BASELINE" not in truth.verdicts.values()


def test_the_later_release_holds_every_profile_with_a_run_of_it(two_releases: ReleaseStore, tmp_path: Path) -> None:
    result, html, md, summary = report(two_releases.path, LATER, tmp_path / "r")
    assert sections(html) == ["aer-reference", UNRELATED]
    assert {(s["profile"], s["build"]) for s in summary} == {("aer-reference", LATER), (UNRELATED, LATER)}
    assert result.verdict == "REGRESSION"  # aer-reference's 2.5.0-rc1 has the less pure source
    ref, emu = section(html, "aer-reference"), section(html, UNRELATED)
    assert set(map(tuple, trend_axes(ref).values())) == {("2.3.0", "2.4.0", LATER)}
    assert set(map(tuple, trend_axes(emu).values())) == {("2.3.0", LATER)}
    assert provenance(ref, "baseline source") == (
        "baseline 2.4.0: from the results store (its newest completed run of that build)"
    )
    assert provenance(emu, "baseline build") == "2.3.0"
    assert md.count("Baseline source: baseline") == 2


def test_a_baseline_run_of_a_build_does_not_put_its_profile_in_that_release(
    two_releases: ReleaseStore, tmp_path: Path
) -> None:
    """aer-reference ran 2.3.0 only as the baseline of the 2.4.0 session; the 2.3.0 release is the emulator's."""
    _, html, md, summary = report(two_releases.path, "2.3.0", tmp_path / "r")
    assert sections(html) == [UNRELATED]
    assert [s["profile"] for s in summary] == [UNRELATED]
    assert "2.4.0" not in html and LATER not in html and "aer-reference" not in md
    assert provenance(html, "baseline source") == (
        "no baseline: none was named (--baseline-build, `qharness baseline set` or firmware.baseline)"
    )


def test_profile_narrows_the_release_and_a_profile_outside_it_is_an_error(
    two_releases: ReleaseStore, tmp_path: Path
) -> None:
    _, html, _, _ = report(two_releases.path, LATER, tmp_path / "r", profiles=[UNRELATED])
    assert sections(html) == [UNRELATED]
    with Store(two_releases.path) as store:
        with pytest.raises(ReportError, match=r"--profile aer-reference: no candidate run of build '2\.3\.0'") as err:
            build_report(store, "2.3.0", tmp_path / "x", profiles=["aer-reference"])
        assert f"its builds: 2.4.0, {LATER}" in str(err.value)
        with pytest.raises(ReportError, match=r"candidate run of the release build '9\.9\.9'") as err:
            build_report(store, "9.9.9", tmp_path / "y")
        assert f"builds with candidate runs: 2.3.0, 2.4.0, {LATER}" in str(err.value)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_an_unfinished_run_of_the_release_is_noted_not_dropped(two_releases: ReleaseStore, tmp_path: Path) -> None:
    """A profile whose run of the release is still running is part of the release: the report says it is missing."""
    db = tmp_path / "copy.db"
    db.write_bytes(two_releases.path.read_bytes())
    with Store(db) as store:
        start_bare_run(store, "aer-long-haul", "2.4.0")
    result, html, _, _ = report(db, "2.4.0", tmp_path / "r")
    assert sections(html) == ["aer-reference"]
    assert result.skipped == [
        f"profile 'aer-long-haul' has no finished candidate run of build '2.4.0' in results store {db}; "
        "run `qharness run` first or choose another --release or --builds"
    ]
    assert "Skipped: profile &#39;aer-long-haul&#39; has no finished candidate run" in html


def test_latest_reports_every_profile_and_stops_each_trend_at_its_release_build(tmp_path: Path) -> None:
    """`latest` takes each profile's newest candidate run; a build stored before it but later in order is not drawn."""
    plans = [
        Planned("aer-reference", "2.5.0-rc1", None, baseline_source="none"),
        Planned("aer-reference", "2.4.0", None, baseline_source="none"),  # re-run of an older build, stored last
        Planned(UNRELATED, "2.3.0", "2.2.0", baseline_source="none"),
    ]
    fill_planned(tmp_path / "s.db", plans, seed=5)
    _, html, _, summary = report(tmp_path / "s.db", LATEST, tmp_path / "r")
    assert sections(html) == ["aer-reference", UNRELATED]
    assert [(s["profile"], s["build"]) for s in summary] == [("aer-reference", "2.4.0"), (UNRELATED, "2.3.0")]
    assert set(map(tuple, trend_axes(section(html, "aer-reference")).values())) == {("2.4.0",)}
    assert LATER not in html
    assert provenance(section(html, UNRELATED), "baseline source") == (
        "no baseline: the store held no completed run of 2.2.0, and a bench profile does not measure its baseline "
        "in the session"
    )


def test_report_command_scopes_to_the_release(two_releases: ReleaseStore, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["report", "--db", str(two_releases.path), "--release", "2.4.0", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("release 2.4.0: ")
    assert LATER not in res.stdout and "skipped" not in res.stdout
    assert [s["profile"] for s in json.loads((out / "summary.json").read_text())] == ["aer-reference"]
