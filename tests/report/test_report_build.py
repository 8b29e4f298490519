"""The release report against a real store: every section present and every number equal to the store's."""

from __future__ import annotations

import json
import math
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from functools import reduce
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from report_store import BUILDS, INSERT_ORDER, PROFILES, REGRESSED, RELEASE, ReleaseStore, start_bare_run

from harness.analysis.measures import state_fidelity
from harness.metrics import Direction, Estimate
from harness.records import TomographyCounts
from harness.report import build_report, order_builds
from harness.report.data import collect_profile
from harness.report.text import fmt_number
from harness.store import RunRow, Store
from harness.summary import run_summary

MAX_SECONDS = 5.0
MAX_BYTES = 3 * 1024 * 1024


class ReportParser(HTMLParser):
    """Collects, per profile section, the metric rows (data attributes, cell texts, verdict) and other texts."""

    def __init__(self) -> None:
        super().__init__()
        self.profile: str | None = None
        self.rows: dict[str, dict[str, dict]] = {}
        self.row: dict | None = None
        self.cell: str | None = None
        self.counts: dict[str, int] = {}
        self.count_key: str | None = None
        self.in_count_strong = False
        self.regressions: list[str] = []
        self.in_regression = False
        self.provenance: dict[str, dict[str, str]] = {}
        self.prov_key: str | None = None
        self.figures: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "section" and "profile" in cls:
            self.profile = a["data-profile"]
            self.rows[self.profile] = {}
            self.provenance[self.profile] = {}
            self.figures[self.profile] = []
        elif tag == "tr" and "data-metric" in a and self.profile:
            self.row = {k: v for k, v in a.items() if k.startswith("data-")}
            self.rows[self.profile][a["data-metric"]] = self.row
        elif tag == "td" and self.row is not None:
            self.cell = next((c for c in ("value", "baseline", "delta") if c in cls), None)
            if self.cell:
                self.row[self.cell] = ""
        elif tag == "span" and "verdict" in cls and self.row is not None:
            self.row["verdict"] = a["data-verdict"]
        elif tag == "span" and "count" in cls:
            self.count_key = a["data-count"]
        elif tag == "strong" and self.count_key:
            self.in_count_strong = True
        elif tag == "li" and self.profile is None:
            self.in_regression = True
            self.regressions.append("")
        elif tag == "td" and "data-key" in a and self.profile:
            self.prov_key = a["data-key"]
            self.provenance[self.profile][self.prov_key] = ""
        elif tag == "figure" and self.profile:
            self.figures[self.profile].append(" ".join(cls) + (f":{a['data-metric']}" if "data-metric" in a else ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.row = None
        elif tag == "td":
            self.cell = None
            self.prov_key = None
        elif tag == "strong":
            self.in_count_strong = False
            self.count_key = None
        elif tag == "li":
            self.in_regression = False

    def handle_data(self, data: str) -> None:
        if self.row is not None and self.cell:
            self.row[self.cell] += data
        if self.in_count_strong and self.count_key:
            self.counts[self.count_key] = int(data)
        if self.in_regression:
            self.regressions[-1] += data
        if self.prov_key and self.profile:
            self.provenance[self.profile][self.prov_key] += data


@pytest.fixture(scope="module")
def parsed(release_report: tuple) -> tuple[ReportParser, str]:
    """The parsed index.html of the shared report, and its text."""
    result, _ = release_report
    html = result.index_html.read_text(encoding="utf-8")
    p = ReportParser()
    p.feed(html)
    return p, html


def release_run(store: Store, profile: str) -> RunRow:
    """The newest candidate run of a profile (the release run by definition)."""
    return [r for r in store.runs(profile) if r.provenance.get("role") == "candidate"][-1]


def test_metric_tables_match_the_store(release_store: ReleaseStore, parsed: tuple) -> None:
    p, _ = parsed
    assert list(p.rows) == sorted(PROFILES)
    with Store(release_store.path) as store:
        for profile in PROFILES:
            run = release_run(store, profile)
            assert run.build == RELEASE
            stored = store.metrics(run.id)
            rows = p.rows[profile]
            assert set(rows) == set(stored)
            for name, (est, verdict, detail) in stored.items():
                row = rows[name]
                # Exact: the data attributes carry repr() of the stored floats.
                assert float(row["data-value"]) == est.value
                assert float(row["data-ci-low"]) == est.ci_low
                assert float(row["data-ci-high"]) == est.ci_high
                assert row["verdict"] == verdict == release_store.release(profile).verdicts[name]
                half = (est.ci_high - est.ci_low) / 2
                assert row["value"].startswith(f"{fmt_number(est.value)} ± {fmt_number(half, 2)}")
                assert f"[{fmt_number(est.ci_low)}, {fmt_number(est.ci_high)}]" in row["value"]
                assert row["baseline"].startswith(fmt_number(detail["baseline"]["value"]))
                assert row["delta"].startswith(fmt_number(detail["delta"]["value"]))
                d = detail["delta"]
                assert math.isclose(d["value"], est.value - detail["baseline"]["value"], rel_tol=1e-12, abs_tol=1e-15)


def test_headline_counts_and_regressions(release_store: ReleaseStore, parsed: tuple, release_report: tuple) -> None:
    p, html = parsed
    truth = Counter(v for prof in PROFILES for v in release_store.release(prof).verdicts.values())
    for v in ("REGRESSION", "IMPROVED", "INCONCLUSIVE", "ERROR"):
        assert p.counts[v] == truth.get(v, 0), v
    assert truth["REGRESSION"] >= 5  # the regressed build really regressed on the Bell metrics
    assert re.search(r'Release verdict: <span class="verdict v-REGRESSION" data-verdict="REGRESSION">', html)
    regressed = {
        (prof, n) for prof in PROFILES for n, v in release_store.release(prof).verdicts.items() if v == "REGRESSION"
    }
    assert {prof for prof, _ in regressed} == {REGRESSED[0]}
    named = {tuple(line.split(" REGRESSION")[0].split(": ", 1)) for line in p.regressions}
    assert named == regressed
    result, _ = release_report
    assert result.verdict == "REGRESSION"
    assert len(result.regressions) == len(regressed)


def test_trends_are_in_version_order_with_the_stored_points(release_store: ReleaseStore, parsed: tuple) -> None:
    _, html = parsed
    assert list(INSERT_ORDER) != list(BUILDS)  # runs were stored out of version order
    assert order_builds(INSERT_ORDER) == list(BUILDS)
    with Store(release_store.path) as store:
        for profile in PROFILES:
            section = html.split(f'data-profile="{profile}"', 1)[1].split('<section class="profile"', 1)[0]
            figures = re.findall(r'<figure class="trend" data-metric="([^"]+)">(.*?)</figure>', section, re.S)
            assert {m for m, _ in figures} == set(store.metrics(release_run(store, profile).id))
            svg = dict(figures)["bell_fidelity"]
            labels = re.findall(r"<title>([^<:]+)</title></text>", svg)
            assert labels == list(BUILDS)
            for build in BUILDS:
                run = [r for r in store.runs(profile, build) if r.provenance.get("role") == "candidate"][-1]
                est, verdict, _ = store.metrics(run.id)["bell_fidelity"]
                tip = f"<title>{build}: {fmt_number(est.value)} [{fmt_number(est.ci_low)}, {fmt_number(est.ci_high)}]"
                assert tip in svg
                assert f"{verdict}</title>" in svg.split(tip, 1)[1].split("</g>", 1)[0]
            # Baseline band and tolerance limit of the release comparison.
            assert 'class="band"' in svg


def test_bell_state_logical_and_plob_from_stored_products(release_store: ReleaseStore, parsed: tuple) -> None:
    _, html = parsed
    with Store(release_store.path) as store:
        for profile in PROFILES:
            truth = release_store.release(profile)
            payloads = [r["payload"] for r in store.raw_records(truth.run_id) if r["protocol"] == "bell"]
            bell = reduce(
                TomographyCounts.__add__,
                (TomographyCounts(tuple(p["settings"]), p["counts"], p["duration_s"]) for p in payloads),
            )
            counts, duration = bell.counts, bell.duration_s
            assert np.array_equal(counts, truth.counts)  # both records pooled
            assert duration == pytest.approx(0.1)
            rep = collect_profile(store, profile)
            rho = rep.rho
            assert rho.shape == (4, 4)
            assert np.allclose(rho, rho.conj().T, atol=1e-9)
            assert np.trace(rho).real == pytest.approx(1.0, abs=1e-9)
            assert np.linalg.eigvalsh(rho).min() > -1e-9
            # 32k coincidences per setting: the fidelity's standard error is ~1e-3; 0.01 is a generous bound.
            true_f = float(state_fidelity(truth.physics.rho()))
            assert abs(rep.rho_fidelity - true_f) < 0.01
            assert f'<span class="rho-fidelity">{rep.rho_fidelity:.4f}</span>' in html
            # Logical error rates are the raw errors over shots, per code and distance.
            got = {(p.family, p.distance): (p.errors, p.shots, p.rate) for p in rep.logical}
            want = {(m["code"].rsplit("_d", 1)[0], m["distance"]): (m["errors"], m["shots"]) for m in truth.memories}
            assert {k: v[:2] for k, v in got.items()} == want
            for (e, s, rate), lp in zip(got.values(), rep.logical, strict=True):
                assert rate == e / s
                assert lp.ci_low <= rate <= lp.ci_high
            # PLOB point: heralding_efficiency_b * ebit_rate_hz / pair_rate_hz of the stored metrics.
            m = {k: v[0].value for k, v in store.metrics(truth.run_id).items()}
            want_y = m["heralding_efficiency_b"] * m["ebit_rate_hz"] / m["pair_rate_hz"]
            assert rep.plob.ebits_per_use == pytest.approx(want_y, rel=1e-12)
            assert rep.plob.eta == m["heralding_efficiency_b"]
            assert f'<span class="plob-value">{fmt_number(want_y)}</span>' in html
    for needle in ("Re ρ", "Im ρ", "code distance d", "ebits per channel use", "PLOB bound"):
        assert html.count(needle) >= len(PROFILES), needle


def _one_run_store(path: Path, details: dict[str, dict | None]) -> None:
    """Write one finished candidate run whose metric rows carry the given details (an older store has none)."""
    with Store(path) as store:
        run_id = start_bare_run(store, "old", "1.0.0")
        for name, detail in details.items():
            est = Estimate(0.99, 0.98, 0.995, 1000, "", Direction.HIGHER)
            store.add_metric(run_id, name, est, "NO_BASELINE", detail)
        store.finish_run(run_id, "passed")


def _figure_text(html: str, cls: str) -> str:
    return re.search(rf'<figure class="{cls}">(.*?)</figure>', html, re.S).group(1)


def test_a_run_without_stored_products_says_so_where_the_plots_would_be(tmp_path: Path) -> None:
    _one_run_store(tmp_path / "old.db", {"bell_fidelity": None, "logical_success_surface_d3": {"verdict": "PASS"}})
    with Store(tmp_path / "old.db") as store:
        rep = collect_profile(store, "old")
        assert rep.rho is None and rep.rho_fidelity is None and rep.logical == []
        html = build_report(store, "1.0.0", tmp_path / "r").index_html.read_text()
    for cls in ("rho", "logical"):
        figure = _figure_text(html, cls)
        assert "not recorded in this run" in figure and "<svg" not in figure, cls


def test_an_unreadable_stored_product_costs_only_its_own_plot(tmp_path: Path) -> None:
    memory = {"code": "surface_d3", "basis": "Z", "distance": 3, "rounds": 3, "shots": 100, "errors": 1}
    memory |= {"p_fail": 0.01, "ci_low": 0.002, "ci_high": 0.05}
    _one_run_store(
        tmp_path / "bad.db",
        {
            "bell_fidelity": {"artifacts": {"rho": {"real": [[1.0]], "imag": [[0.0]]}, "method": "m"}},
            "logical_success_surface_d3": {"artifacts": {"memories": [memory]}},
        },
    )
    with Store(tmp_path / "bad.db") as store:
        rep = collect_profile(store, "old")
    assert rep.rho is None and "unreadable" in rep.rho_note and "(4, 4)" in rep.rho_note
    assert [(p.family, p.distance, p.rate, p.ci_low, p.ci_high) for p in rep.logical] == [
        ("surface", 3, 0.01, 0.002, 0.05)
    ]


def test_provenance_table(release_store: ReleaseStore, parsed: tuple) -> None:
    p, _ = parsed
    with Store(release_store.path) as store:
        for profile in PROFILES:
            run = release_run(store, profile)
            prov = p.provenance[profile]
            assert prov["profile hash"] == run.profile_hash
            assert prov["build"] == RELEASE
            assert prov["seed"] == str(run.seed)
            assert prov["host"] == run.host
            assert prov["git sha"] == (run.git_sha or "unknown")
            assert prov["started"] == run.started_at
            assert prov["ended"] == run.ended_at
            assert prov["numpy version"] == run.versions["numpy_version"]
            assert prov["qiskit version"] == (run.versions["qiskit_version"] or "absent")
            # This store's runs predate the provenance key, and the report says so rather than guessing.
            assert prov["baseline source"] == "not recorded in this run"
    bench = p.provenance["bench-lab"]
    assert bench["retries (all instruments)"] == "4"
    assert bench["faults"] == "drop: 1, garbage: 1, timeout: 2"
    assert bench["tomography settings redone"] == "2"
    assert "not a bench run" in p.provenance["aer-reference"]["retries and faults"]


def test_summary_json_is_the_summary_contract(release_store: ReleaseStore, release_report: tuple) -> None:
    result, _ = release_report
    got = json.loads(result.summary_json.read_text())
    assert isinstance(got, list)
    with Store(release_store.path) as store:
        want = [run_summary(store, release_run(store, p)) for p in sorted(PROFILES)]
    assert got == json.loads(json.dumps(want))
    assert {s["profile"]: s["verdict"] for s in got}["aer-reference"] == "REGRESSION"


def test_summary_md_has_a_table_per_profile_and_names_every_regression(
    release_store: ReleaseStore, release_report: tuple
) -> None:
    result, _ = release_report
    md = result.summary_md.read_text()
    assert md.startswith(f"## qharness release {RELEASE}: ✖ REGRESSION")
    assert md.count("| Metric | Value | 95% interval |") == len(PROFILES)
    for profile in PROFILES:
        assert f"### `{profile}` — build `{RELEASE}` vs baseline `2.4.0`" in md
    with Store(release_store.path) as store:
        for profile in PROFILES:
            for name, (est, verdict, _) in store.metrics(release_run(store, profile).id).items():
                row = next(
                    line
                    for line in md.splitlines()
                    if line.startswith(f"| `{name}` |") and fmt_number(est.value) in line
                )
                assert verdict in row
                if verdict == "REGRESSION":
                    assert re.search(rf"^- {profile}: {name} REGRESSION: {re.escape(RELEASE)} ", md, re.M), name
    assert md.count("\n- aer-reference: ") == sum(
        v == "REGRESSION" for v in release_store.release("aer-reference").verdicts.values()
    )


def test_html_is_self_contained(parsed: tuple) -> None:
    _, html = parsed
    assert "<script" not in html and "<link" not in html and "@import" not in html
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(r.startswith(("#", "data:")) for r in refs), [r for r in refs if not r.startswith("#")][:5]
    assert "url(http" not in html
    # The only http text is the SVG namespace, which browsers never fetch.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }


def test_builds_option_limits_and_orders_the_trend(release_store: ReleaseStore, tmp_path: Path) -> None:
    with Store(release_store.path) as store:
        result = build_report(store, "2.2.0", tmp_path / "r", profiles=["aer-long-haul"], builds=["2.4.0", "2.2.0"])
        summary = json.loads(result.summary_json.read_text())
        assert [s["build"] for s in summary] == ["2.2.0"]  # the last of --builds is the release build
        html = result.index_html.read_text()
        svg = re.search(r'data-metric="pair_rate_hz">(.*?)</figure>', html, re.S).group(1)
        assert re.findall(r"<title>([^<:]+)</title></text>", svg) == ["2.4.0", "2.2.0"]
        assert 'data-profile="aer-reference"' not in html


def test_generation_time_and_size_in_a_fresh_process(release_store: ReleaseStore, tmp_path: Path) -> None:
    """The CLI in a new interpreter (cold imports included): <= 5 s to generate, index.html <= 3 MB.

    The limit is on the CPU time the report process spends (interpreter start and imports included), which is the
    work generation costs; wall time on a shared CI machine running other tests in parallel is reported alongside.
    """
    out = tmp_path / "cold"
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from harness.cli import main; main()",
            "report",
            "--db",
            str(release_store.path),
            "--release",
            RELEASE,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert proc.returncode == 0, proc.stderr
    seconds = float(re.search(r" in ([0-9.]+) s$", proc.stdout, re.M).group(1))
    size = (out / "index.html").stat().st_size
    print(
        f"\nreport 3 profiles x 6 builds: generation {seconds:.2f} s wall, process CPU {cpu:.2f} s, wall {wall:.2f} s, "
        f"index.html {size / 1024:.0f} KiB"
    )
    assert cpu <= MAX_SECONDS
    assert size <= MAX_BYTES
    assert "aer-reference: bell_fidelity REGRESSION" in proc.stdout
