"""Release reports: index.html (self-contained), summary.md (GitHub-flavoured) and summary.json (summary contract)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from harness.report.data import (
    COUNTED_VERDICTS,
    ProfileReport,
    ReportError,
    collect_trends,
    describe,
    release_verdict,
    verdict_counts,
)
from harness.report.fleet import FleetMatrix, collect_fleet, fleet_markdown, fleet_view, profile_slug
from harness.report.plots import VERDICT_COLOURS, density_svg, logical_svg, plob_svg, trend_png, trend_svg
from harness.report.provenance import baseline_source_text, provenance_rows
from harness.report.scope import collect_release
from harness.report.text import bracket_text, fmt_number, interval_text
from harness.store import Store, StoreError, StoreURL, parse_store_url

VERDICT_SYMBOLS = {
    "PASS": "✔",
    "REGRESSION": "✖",
    "IMPROVED": "▲",
    "INCONCLUSIVE": "?",
    "ERROR": "!",
    "NOT_GATED": "·",
    "NO_BASELINE": "–",
}
# Above this the report is too heavy for a CI artifact viewer or a mail attachment.
MAX_HTML_BYTES = 3 * 1024 * 1024


@dataclass
class ReportResult:
    """Where a report was written, its headline, and how long it took (s)."""

    out_dir: Path
    index_html: Path
    summary_md: Path
    summary_json: Path
    verdict: str
    counts: dict[str, int]
    regressions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


def open_store(target: str | Path | StoreURL) -> Store:
    """Return the results store at `target` (a path or URL); raise ReportError when it is missing (never created)."""
    try:
        url = parse_store_url(target)
    except StoreError as exc:
        raise ReportError(str(exc)) from None
    p = url.path
    if p is not None and not p.exists():
        raise ReportError(f"results store {p} does not exist; pass --db with the path `qharness run --db` wrote")
    if p is not None and p.is_dir():
        raise ReportError(f"results store {p} is a directory; pass --db with the path of the .sqlite/.db file")
    try:
        return Store(url)
    except StoreError as exc:
        raise ReportError(str(exc)) from None


# -- formatting -----------------------------------------------------------------------------------------


def _pm_text(d: dict | None) -> str:
    """Return 'value ± half-width' of a {value, ci_low, ci_high} dict ('—' when absent)."""
    if not d or d.get("value") is None:
        return "—"
    if d.get("ci_low") is None or d.get("ci_high") is None:
        return fmt_number(d["value"])
    half = (float(d["ci_high"]) - float(d["ci_low"])) / 2
    return f"{fmt_number(d['value'])} ± {fmt_number(half, 2)}"


def _bracket(d: dict | None) -> str:
    """Return '[ci_low, ci_high]' of an interval dict ('' when absent)."""
    if not d or d.get("ci_low") is None:
        return ""
    return bracket_text(d["ci_low"], d["ci_high"])


def _interval(d: dict) -> str:
    """Return 'value [ci_low, ci_high]' of an interval dict."""
    return interval_text(d["value"], d.get("ci_low"), d.get("ci_high"))


def metric_view(m: dict) -> dict:
    """Return the display strings of one summary metric (value, interval, baseline, delta, verdict)."""
    verdict = m.get("verdict") or "NO_BASELINE"
    return {
        "name": m["name"],
        "description": describe(m["name"]),
        "value": m["value"],
        "ci_low": m["ci_low"],
        "ci_high": m["ci_high"],
        "value_text": _pm_text(m),
        "interval_text": _bracket(m),
        "unit": m.get("unit") or "",
        "baseline_text": _pm_text(m.get("baseline")),
        "baseline_interval": _bracket(m.get("baseline")),
        "delta_text": _pm_text(m.get("delta")),
        "delta_interval": _bracket(m.get("delta")),
        "tolerance": m.get("tolerance"),
        "p_adjusted": m.get("p_adjusted"),
        "min_detectable_regression": m.get("min_detectable_regression"),
        "reason": m.get("reason"),
        "follows": m.get("follows"),
        "verdict": verdict,
        "symbol": VERDICT_SYMBOLS.get(verdict, ""),
        "error": m.get("error"),
    }


def regression_line(profile: str, build: str, baseline_build: str | None, m: dict) -> str:
    """Return a one-line account of a regressed metric: both builds with intervals, delta, tolerance and p."""
    unit = f" {m['unit']}" if m.get("unit") else ""
    parts = [f"{profile}: {m['name']} REGRESSION: {build} {_interval(m)}{unit}"]
    if m.get("baseline"):
        parts.append(f" vs baseline {baseline_build or '?'} {_interval(m['baseline'])}")
    if m.get("delta"):
        parts.append(f"; delta {_interval(m['delta'])}")
    if m.get("tolerance") is not None:
        worse = "worse-is-lower" if m.get("direction") == "higher" else "worse-is-higher"
        parts.append(f" (tolerance {fmt_number(m['tolerance'])}, {worse})")
    if m.get("p_adjusted") is not None:
        parts.append(f"; adjusted p = {m['p_adjusted']:.2g}")
    return "".join(parts)


def regressions(reports: list[ProfileReport]) -> list[str]:
    """Return one line per regressed metric over all profiles."""
    return [
        regression_line(r.profile, r.run.build, r.baseline_build, m)
        for r in reports
        for m in r.summary["metrics"]
        if m["verdict"] == "REGRESSION"
    ]


# -- rendering ------------------------------------------------------------------------------------------


def _env() -> Environment:
    """Return the Jinja environment of the report templates (autoescape on)."""
    env = Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(["html", "j2", "html.j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    return env


def _profile_view(r: ProfileReport) -> dict[str, Any]:
    """Return the template view of one profile, with its plots as inline SVG."""
    slug = profile_slug(r.profile)
    return {
        "name": r.profile,
        "slug": slug,
        "build": r.run.build,
        "baseline_build": r.baseline_build,
        "verdict": r.verdict,
        "symbol": VERDICT_SYMBOLS.get(r.verdict, ""),
        "counts": {v: r.counts().get(v, 0) for v in COUNTED_VERDICTS},
        "metrics": [metric_view(m) for m in r.summary["metrics"]],
        "builds": r.builds,
        "trends": [{"name": name, "svg": Markup(trend_svg(t))} for name, t in r.trends.items()],
        "rho_svg": Markup(density_svg(r.rho, f"{slug}/rho")) if r.rho is not None else None,
        "rho_method": r.rho_method,
        "rho_note": r.rho_note,
        "rho_fidelity": r.rho_fidelity,
        "logical_svg": Markup(logical_svg(r.logical, f"{slug}/logical")) if r.logical else None,
        "logical_note": r.logical_note,
        "plob_svg": Markup(plob_svg(r.plob, f"{slug}/plob")) if r.plob is not None else None,
        "plob": r.plob,
        "provenance": provenance_rows(r.run, r.baseline_build, r.instruments),
        "instruments": r.instruments,
    }


def _fleet(fleet: FleetMatrix | None, reports: list[ProfileReport]) -> dict | None:
    """Return the view of the fleet matrix (None without one); cells of the reported runs link to their sections."""
    if fleet is None:
        return None
    return fleet_view(fleet, {r.profile: r.run.id for r in reports}, VERDICT_SYMBOLS)


def render_html(
    release: str,
    reports: list[ProfileReport],
    generated_at: str,
    skipped: list[str],
    fleet: FleetMatrix | None = None,
) -> str:
    """Return the self-contained HTML of a release report (with the fleet matrix when given)."""
    template = _env().get_template("report.html.j2")
    return template.render(
        fleet=_fleet(fleet, reports),
        release=release,
        generated_at=generated_at,
        verdict=release_verdict(reports),
        symbols=VERDICT_SYMBOLS,
        counts=verdict_counts(reports),
        colours=VERDICT_COLOURS,
        regressions=regressions(reports),
        profiles=[_profile_view(r) for r in reports],
        skipped=skipped,
    )


def _md_cell(text: str) -> str:
    """Return text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _md_verdict(verdict: str, symbol: str) -> str:
    """Return a verdict for a Markdown cell: symbol and text, bold for a regression."""
    return f"{symbol} **{verdict}**" if verdict == "REGRESSION" else f"{symbol} {verdict}"


def render_markdown(
    release: str, reports: list[ProfileReport], skipped: list[str], fleet: FleetMatrix | None = None
) -> str:
    """Return GitHub-flavoured Markdown: headline, the fleet matrix, a table per profile, every regression named."""
    verdict = release_verdict(reports)
    counts = verdict_counts(reports)
    lines = [
        f"## qharness release {release}: {VERDICT_SYMBOLS.get(verdict, '')} {verdict}",
        "",
        " · ".join(f"**{v}** {counts[v]}" for v in COUNTED_VERDICTS),
        "",
    ]
    regs = regressions(reports)
    if regs:
        lines += [f"### Regressions ({len(regs)})", ""] + [f"- {_md_cell(line)}" for line in regs] + [""]
    else:
        lines += ["No regressions.", ""]
    view = _fleet(fleet, reports)
    if view is not None:
        lines += fleet_markdown(view, _md_cell)
    for r in reports:
        base = f" vs baseline `{r.baseline_build}`" if r.baseline_build else ""
        lines += [
            f"### `{r.profile}` — build `{r.run.build}`{base}: {VERDICT_SYMBOLS.get(r.verdict, '')} {r.verdict}",
            "",
            f"Baseline source: {_md_cell(baseline_source_text(r.run, r.baseline_build))}.",
            "",
            "| Metric | Value | 95% interval | Unit | Baseline | Δ (candidate − baseline) | Verdict |",
            "|---|---:|---|---|---:|---:|---|",
        ]
        for m in r.summary["metrics"]:
            v = metric_view(m)
            cells = [
                f"`{v['name']}`",
                v["value_text"],
                v["interval_text"],
                v["unit"],
                v["baseline_text"],
                v["delta_text"],
                _md_verdict(v["verdict"], v["symbol"]),
            ]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
    for s in skipped:
        lines.append(f"> skipped: {s}")
    return "\n".join(lines).rstrip() + "\n"


def json_ready(obj: Any) -> Any:
    """Return obj with non-finite floats replaced by None, in nested dicts and lists too (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    return obj


def _write(out: Path, files: dict[str, str]) -> list[Path]:
    """Write each named text into `out` (created if needed); return the paths; raise ReportError on an OS error."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from None
    paths = []
    try:
        for name, text in files.items():
            paths.append(out / name)
            paths[-1].write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot write the report ({exc.strerror or exc})") from None
    return paths


def build_report(
    store: Store,
    release: str,
    out_dir: str | Path,
    profiles: list[str] | None = None,
    builds: list[str] | None = None,
) -> ReportResult:
    """Write index.html, summary.md and summary.json of a release into `out_dir`; return paths and headline."""
    t0 = time.perf_counter()
    reports, skipped = collect_release(store, release, profiles, builds)
    fleet = collect_fleet(store, {r.profile: r.run.build for r in reports}, builds)
    out = Path(out_dir)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    html, md, js = _write(
        out,
        {
            "index.html": render_html(release, reports, generated, skipped, fleet),
            "summary.md": render_markdown(release, reports, skipped, fleet),
            "summary.json": json.dumps([json_ready(r.summary) for r in reports], indent=2) + "\n",
        },
    )
    return ReportResult(
        out_dir=out,
        index_html=html,
        summary_md=md,
        summary_json=js,
        verdict=release_verdict(reports),
        counts=verdict_counts(reports),
        regressions=regressions(reports),
        seconds=time.perf_counter() - t0,
        skipped=skipped,
    )


# -- helpers for the pytest plugin (Allure) ----------------------------------------------------------------


def _trend(store: Store, profile: str, metric: str, builds: list[str] | None) -> Any:
    """Return the Trend of one metric of a profile (the newest candidate run, even a running one, is the release)."""
    _, _, _, trends, _ = collect_trends(store, profile, builds, [metric], include_running=True)
    if metric not in trends:
        raise ReportError(f"profile {profile!r} has no measurements of metric {metric!r} in {store.path}")
    return trends[metric]


def trend_plot_png(store: Store, profile: str, metric: str, builds: list[str] | None = None, dpi: int = 100) -> bytes:
    """Return PNG bytes of one metric's trend across the profile's builds, with intervals and the baseline band."""
    return trend_png(_trend(store, profile, metric, builds), dpi)


def trend_plot_svg(store: Store, profile: str, metric: str, builds: list[str] | None = None) -> str:
    """Return standalone SVG text of one metric's trend across the profile's builds."""
    return '<?xml version="1.0" encoding="utf-8"?>\n' + trend_svg(_trend(store, profile, metric, builds))


def _prop_escape(text: str, key: bool) -> str:
    """Return text escaped for a Java .properties file (Allure reads environment.properties that way)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if key:
        for ch in (" ", "=", ":", "#", "!"):
            out = out.replace(ch, "\\" + ch)
    # java.util.Properties reads ISO-8859-1: anything beyond ASCII goes as a backslash-u escape (UTF-16 units).
    return "".join(c if ord(c) < 128 else "".join(f"\\u{u:04x}" for u in _utf16_units(c)) for c in out)


def _utf16_units(c: str) -> list[int]:
    """Return the UTF-16 code units of one character."""
    b = c.encode("utf-16-be")
    return [int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b), 2)]


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    """Flatten nested dicts into dotted keys; lists become comma-separated text."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        out[prefix] = ", ".join(str(v) for v in value)
    else:
        out[prefix] = "" if value is None else str(value)


def write_allure_environment(alluredir: str | Path, provenance: dict) -> Path:
    """Write `alluredir`/environment.properties (key=value lines, nested keys dotted); return its path."""
    flat: dict[str, str] = {}
    _flatten("", provenance, flat)
    directory = Path(alluredir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "environment.properties"
    lines = [f"{_prop_escape(k, True)}={_prop_escape(v, False)}" for k, v in flat.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
