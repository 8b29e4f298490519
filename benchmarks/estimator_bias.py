"""Bias and interval coverage of every Bell, link and rates metric against the exact truth of its physics.

For each truth (a shipped profile's build, or a pure Werner pair at fidelity 0.998, 0.99 or 0.9 on the reference
link without readout or link noise) and each budget (the profile's standard one, 32k expected coincidences per Bell
setting on aer-reference and the Werner truths, and a small one of 1000, the same scale applied to link tomography
and the rate measurement), `reps` replicate
data sets are drawn exactly as the Aer stand-in draws them: the device's exact outcome probabilities (readout
included), Poisson shots per setting and multinomial outcomes; coincidences C ~ Poisson and singles N = C +
Poisson(events of one arm only). Each replicate goes through the public estimators (`estimate_bell_metrics`,
`estimate_link_metrics` with the six inputs the link protocol uses, `estimate_rate_metrics` with that replicate's
Bell counts), with the protocols' 200 bootstrap replicates.

Per metric: bias = (mean estimate - truth) / SD, where SD is the estimates' spread over the replicates (its Monte
Carlo error is about 1/sqrt(reps) SE); coverage = share of 95% intervals that contain the truth (Monte Carlo error
about 0.007 at 1000 replicates); width = mean interval width / (2 x 1.96 SD), 1 for an interval as wide as the
sampling spread needs; replicate SD = mean SD of an estimate's bootstrap replicates / SD, 1 when the replicates
carry the real sampling spread.

`python -m benchmarks --only estimators` writes its block of benchmarks/RESULTS.md (the Werner truths, 1000
replicates, two processes); `python -m
benchmarks.estimator_bias --help` runs the audit alone (saved results, before/after comparisons).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import Section, row
from harness.metrics import metric_spec, metrics_of

# Every metric of the three protocols, from the registry (capacity_chi_bits is informational: audited, never gated).
PROTOCOL_METRICS = {p: metrics_of(p) for p in ("bell", "link", "rates")}
WERNER_FIDELITIES = (0.998, 0.99, 0.9)
SHIPPED = (("aer-reference", "2.4.0"), ("aer-reference", "2.5.0-rc1"), ("aer-long-haul", "2.4.0"))
SMALL_PER_SETTING = 1000.0
BIAS_LIMIT = 0.2
COVERAGE_RANGE = (0.93, 0.97)
DEFAULT_OUT = Path(__file__).resolve().parent / "RESULTS-estimators.md"


@dataclass(frozen=True)
class Scenario:
    """One truth: a label and the effective Aer profile whose physics the counts are drawn from."""

    label: str
    profile: object  # harness.profiles.Profile


def werner_profile(fidelity: float) -> object:
    """aer-reference with a noiseless link and analysers, and the visibility that gives `fidelity` to Phi+ observed."""
    from harness.physics.link import profile_rates
    from harness.profiles import load_profile

    base = load_profile("aer-reference").effective("2.4.0")
    link = base.link.model_copy(update={"dephasing": 0.0, "depolarizing": 0.0, "amplitude_damping": 0.0})
    det = base.detectors.model_copy(update={"readout_error_a": 0.0, "readout_error_b": 0.0})
    f_acc = profile_rates(base).accidental_fraction
    # Observed F = (1 - f_acc)(1 + 3V)/4 + f_acc/4: accidentals mix the Werner pair with white noise.
    v = (4 * (fidelity - f_acc / 4) / (1 - f_acc) - 1) / 3
    source = base.source.model_copy(update={"visibility": v})
    name = f"werner-{fidelity:g}"
    return base.model_copy(update={"name": name, "link": link, "detectors": det, "source": source})


def scenarios() -> list[Scenario]:
    """The truths of the audit: Werner pairs near the top and the shipped profiles' builds."""
    from harness.profiles import load_profile

    out = [Scenario(f"Werner F={f:g}", werner_profile(f)) for f in WERNER_FIDELITIES]
    for name, build in SHIPPED:
        label = f"{name} {build}" + (" (= 2.3.0)" if build == "2.4.0" else "")
        out.append(Scenario(label, load_profile(name).effective(build)))
    return out


@dataclass(frozen=True)
class Records:
    """Replicate raw records of one scenario and budget (lists of equal length)."""

    bell: list
    link: list
    coinc: list


def simulate(profile: object, scale: float, reps: int, rng: np.random.Generator) -> Records:
    """Draw `reps` replicate records of all three protocols at budget `scale`, as the Aer stand-in does."""
    from harness.devices.aer import AerDevice
    from harness.records import BASES, BELL_SETTINGS, INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts

    with AerDevice(profile, "audit", seed=0) as dev:
        p_bell, p_link, r = dev.bell_probabilities(), dev.link_probabilities(INPUTS_6), dev.rates
    t_tomo = profile.measurement.integration_time_s * scale
    t_rate = profile.measurement.coincidence_time_s * scale
    shots = rng.poisson(r.coincidence_hz * t_tomo, size=(reps, len(BELL_SETTINGS)))
    bell = rng.multinomial(shots, p_bell)
    flat = p_link.reshape(-1, 2)
    link = rng.multinomial(rng.poisson(r.coincidence_hz * t_tomo, size=(reps, len(flat))), flat)
    link = link.reshape(reps, *p_link.shape)
    c = rng.poisson(r.coincidence_hz * t_rate, size=reps)
    only = np.maximum(np.array([r.singles_a_hz, r.singles_b_hz]) - r.coincidence_hz, 0.0) * t_rate
    singles = c[:, None] + rng.poisson(only, size=(reps, 2))
    return Records(
        [TomographyCounts(BELL_SETTINGS, b, t_tomo) for b in bell],
        [ProcessCounts(INPUTS_6, BASES, x, t_tomo) for x in link],
        [CoincidenceCounts(int(s[0]), int(s[1]), int(k), r.window_s, t_rate) for k, s in zip(c, singles, strict=True)],
    )


def _estimates(protocol: str, records: Records, i: int, rng: np.random.Generator, n_boot: int) -> dict:
    from harness.analysis.estimators import estimate_bell_metrics, estimate_link_metrics
    from harness.analysis.rates import estimate_rate_metrics

    if protocol == "bell":
        return estimate_bell_metrics(records.bell[i], rng=rng, n_boot=n_boot)
    if protocol == "link":
        return estimate_link_metrics(records.link[i], rng=rng, n_boot=n_boot)
    return estimate_rate_metrics(records.coinc[i], records.bell[i], rng=rng, n_boot=n_boot)


def summarise(values: np.ndarray, lows: np.ndarray, highs: np.ndarray, rep_sd: np.ndarray, true: float) -> dict:
    """Bias in SE, coverage, width and replicate-SD ratios of one metric's replicate estimates against `true`."""
    sd = float(np.std(values, ddof=1))
    z = 1.959963984540054
    bias = float(np.mean(values) - true)
    return {
        "true": true,
        "mean": float(np.mean(values)),
        "sd": sd,
        "bias_se": bias / sd if sd > 0 else float("nan"),
        "coverage": float(np.mean((lows <= true) & (true <= highs))),
        "width": float(np.mean(highs - lows) / (2 * z * sd)) if sd > 0 else float("nan"),
        "rep_sd": float(np.mean(rep_sd) / sd) if sd > 0 else float("nan"),
        "reps": int(values.size),
    }


def audit_protocol(protocol: str, records: Records, truth: dict, n_boot: int, seed: int) -> dict[str, dict]:
    """Run one protocol's estimator on every replicate; return metric -> summary against `truth`."""
    names = PROTOCOL_METRICS[protocol]
    reps = len(records.bell)
    cols = {k: np.empty((len(names), reps)) for k in ("value", "low", "high", "sd")}
    rng = np.random.default_rng(seed)
    for i in range(reps):
        found = _estimates(protocol, records, i, rng, n_boot)
        for j, name in enumerate(names):
            e = found[name]
            cols["value"][j, i], cols["low"][j, i], cols["high"][j, i] = e.value, e.ci_low, e.ci_high
            cols["sd"][j, i] = np.std(e.samples, ddof=1) if e.samples else np.nan
    return {
        name: summarise(cols["value"][j], cols["low"][j], cols["high"][j], cols["sd"][j], truth[name])
        for j, name in enumerate(names)
    }


def small_scale(profile: object) -> float:
    """The budget scale that gives SMALL_PER_SETTING expected coincidences per Bell setting."""
    from harness.physics.link import profile_rates

    per_setting = profile_rates(profile).coincidence_hz * profile.measurement.integration_time_s
    return SMALL_PER_SETTING / per_setting


def _physics_key(protocol: str, profile: object, true: dict, scale: float) -> tuple:
    """What a protocol's counts depend on: its metrics' truths and its expected counts per setting."""
    from harness.physics.link import profile_rates

    per_setting = profile_rates(profile).coincidence_hz * profile.measurement.integration_time_s * scale
    return (protocol, *(round(true[m], 12) for m in PROTOCOL_METRICS[protocol]), round(per_setting, 6))


def _cells(only: str) -> list[tuple[int, Scenario, str, float]]:
    """The (scenario index, scenario, budget label, scale) cells of the audit kept by `only`."""
    out = []
    for k, sc in enumerate(scenarios()):
        small = small_scale(sc.profile)
        standard = f"standard ({SMALL_PER_SETTING / small / 1000:.0f}k/setting)"
        for budget, scale in ((standard, 1.0), ("1k/setting", small)):
            if not only or any(part in f"{sc.label} / {budget}" for part in only.split(",")):
                out.append((k, sc, budget, scale))
    return out


def _audit_task(task: tuple) -> tuple[tuple, dict[str, dict]]:
    """One protocol of one cell: draw its replicate records and audit them (a process pool's unit of work)."""
    key, protocol, profile, scale, true, reps, n_boot, seeds = task
    t0 = time.perf_counter()
    records = simulate(profile, scale, reps, np.random.default_rng(seeds[0]))
    found = audit_protocol(protocol, records, true, n_boot, seeds[1])
    print(f"[{profile.name} x{scale:.3g} / {protocol}] {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return key, found


def audit(
    reps: int = 1000,
    n_boot: int = 200,
    protocols: tuple[str, ...] = tuple(PROTOCOL_METRICS),
    seed: int = 20,
    only: str = "",
    jobs: int = 1,
) -> list[dict]:
    """Return one result dict per (scenario, budget, protocol, metric) over `reps` replicates each.

    `only` keeps the (truth, budget) cells whose "truth / budget" label contains one of its comma-separated parts.
    A protocol whose counts have the same distribution as in an earlier cell (the link of every Werner truth, or of
    two builds that differ only in the source) is audited once and reported for both. `jobs` > 1 audits the
    distinct (protocol, physics) tasks in that many processes; the seeds do not depend on it.
    """
    from harness.analysis.truth import truth

    cells, tasks = [], {}
    for k, sc, budget, scale in _cells(only):
        tru = truth(sc.profile)
        true = {m: float(getattr(tru, m)) for ms in PROTOCOL_METRICS.values() for m in ms}
        small = int(scale < 1)
        for protocol in protocols:
            key = _physics_key(protocol, sc.profile, true, scale)
            cells.append((sc.label, budget, protocol, key))
            seeds = ([seed, k, small], seed + 1000 * k + small)
            tasks.setdefault(key, (key, protocol, sc.profile, scale, true, reps, n_boot, seeds))
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = dict(pool.map(_audit_task, tasks.values()))
    else:
        done = dict(map(_audit_task, tasks.values()))
    return [
        {"scenario": label, "budget": budget, "protocol": protocol, "metric": metric, **summary}
        for label, budget, protocol, key in cells
        for metric, summary in done[key].items()
    ]


def _passes(r: dict) -> bool:
    return abs(r["bias_se"]) < BIAS_LIMIT and COVERAGE_RANGE[0] <= r["coverage"] <= COVERAGE_RANGE[1]


def section(results: list[dict], seconds: float = 0.0) -> Section:
    """The runner's Section: per metric, its worst |bias| (SE) and its coverage range over every truth and budget."""
    rows = []
    for metric in [m for ms in PROTOCOL_METRICS.values() for m in ms]:
        mine = [r for r in results if r["metric"] == metric]
        if not mine:
            continue
        worst = max(mine, key=lambda r: abs(r["bias_se"]))
        bias_ok = abs(worst["bias_se"]) < BIAS_LIMIT
        cov = [r["coverage"] for r in mine]
        cov_ok = COVERAGE_RANGE[0] <= min(cov) and max(cov) <= COVERAGE_RANGE[1]
        if metric_spec(metric).informational:  # never gated: the targets are those of gated metrics
            bias_ok = cov_ok = None
        rows.append(row(f"{metric}: max abs bias", abs(worst["bias_se"]), 0, 0, "SE", f"< 0.2: {_met(bias_ok)}"))
        rows.append(
            row(
                f"{metric}: min coverage (max {max(cov):.3f})",
                min(cov),
                0.95,
                min(cov) / 0.95,
                "share",
                f"0.93-0.97: {_met(cov_ok)}",
            )
        )
    return Section("estimators", "Estimator bias and interval coverage", rows, render_grid(results), seconds)


def _met(ok: bool | None) -> str:
    if ok is None:
        return "n/a (never gated)"
    return "met" if ok else "MISSED"


def _order(results: list[dict]) -> list[dict]:
    metrics = [m for ms in PROTOCOL_METRICS.values() for m in ms]
    first_seen = {}
    for r in results:
        first_seen.setdefault((r["scenario"], r["budget"]), len(first_seen))
    return sorted(results, key=lambda r: (metrics.index(r["metric"]), first_seen[(r["scenario"], r["budget"])]))


def render_grid(results: list[dict], before: list[dict] | None = None) -> str:
    """Markdown table of every (metric, truth, budget): bias (SE), coverage, width and replicate-SD ratios."""
    prior = {(r["scenario"], r["budget"], r["metric"]): r for r in before or []}
    head = "| metric | truth | budget | true value | bias (SE) | coverage | width / needed | replicate SD / SD |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in _order(results):
        b = prior.get((r["scenario"], r["budget"], r["metric"]))
        cells = [
            _pair(b, r, "bias_se", "{:+.2f}"),
            _pair(b, r, "coverage", "{:.3f}"),
            _pair(b, r, "width", "{:.2f}"),
            _pair(b, r, "rep_sd", "{:.2f}"),
        ]
        flag = "" if _passes(r) else " **x**"
        lines.append(
            f"| {r['metric']}{flag} | {r['scenario']} | {r['budget']} | {r['true']:.6g} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _span(rows: list[dict]) -> str:
    cov = [r["coverage"] for r in rows]
    return f"{max(abs(r['bias_se']) for r in rows):.2f} | {min(cov):.3f}-{max(cov):.3f}"


def render_summary(results: list[dict], before: list[dict] | None = None) -> str:
    """Markdown table per metric: worst |bias| (SE) and coverage range over all truths and budgets, before and after."""
    lines = [
        "| metric | before: max abs bias (SE) | before: coverage | after: max abs bias (SE) | after: coverage "
        "| cells met |",
        "|---|---|---|---|---|---|",
    ]
    for metric in [m for ms in PROTOCOL_METRICS.values() for m in ms]:
        now = [r for r in results if r["metric"] == metric]
        if not now:
            continue
        then = [r for r in before or [] if r["metric"] == metric]
        old = _span(then) if then else "n/a | n/a"
        lines.append(f"| {metric} | {old} | {_span(now)} | {sum(map(_passes, now))}/{len(now)} |")
    return "\n".join(lines)


def _pair(before: dict | None, after: dict, key: str, fmt: str) -> str:
    now = fmt.format(after[key])
    return now if before is None else f"{fmt.format(before[key])} -> {now}"


def run(
    reps: int = 1000,
    n_boot: int = 200,
    protocols: tuple[str, ...] = tuple(PROTOCOL_METRICS),
    only: str = "Werner",
    jobs: int = 2,
) -> Section:
    """Run the audit and return its Section (the runner's entry point; by default the Werner truths only)."""
    t0 = time.perf_counter()
    results = audit(reps, n_boot, protocols, only=only, jobs=jobs)
    return section(results, time.perf_counter() - t0)


def _load(paths: list[Path] | None) -> list[dict] | None:
    if not paths:
        return None
    return [r for p in paths for r in json.loads(p.read_text(encoding="utf-8"))]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimator_bias", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="replicate data sets per truth and budget")
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates per estimate")
    parser.add_argument("--protocols", default="bell,link,rates", help="comma-separated subset of bell,link,rates")
    parser.add_argument("--jobs", type=int, default=1, help="processes auditing distinct tasks at once")
    parser.add_argument("--only", default="", help="comma-separated parts of 'truth / budget' labels to keep")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--results", type=Path, nargs="+", help="render these saved results instead of running")
    parser.add_argument(
        "--before", type=Path, nargs="+", help="saved results of earlier code, shown as 'before -> after'"
    )
    parser.add_argument("--out", type=Path, help=f"Markdown summary and grid (e.g. {DEFAULT_OUT.name})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the audit (or load saved results); write the JSON results and the Markdown summary and grid."""
    args = _parser().parse_args(argv)
    protocols = tuple(p for p in args.protocols.split(",") if p)
    bad = [p for p in protocols if p not in PROTOCOL_METRICS]
    if bad:
        print(f"--protocols: unknown {','.join(bad)}; use bell, link, rates", file=sys.stderr)
        return 2
    results = _load(args.results) or audit(args.reps, args.n_boot, protocols, only=args.only, jobs=args.jobs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    before = _load(args.before)
    text = render_summary(results, before) + "\n\n" + render_grid(results, before) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
