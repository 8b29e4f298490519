"""A realistic results store for the report tests: 3 profiles x 6 builds, one release build regressed.

Every candidate run holds bell raw records sampled from a known two-qubit state, rate and logical raw
records, and metrics estimated from those records (bootstrap or Wilson intervals) and gated against the
previous build with harness.gate.evaluate, exactly as a session stores them: with the analysis products
(the reconstructed density matrix, the logical memories with their Wilson intervals) in the rows' details.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.analysis.capacities import bbm92_key_fraction, plob_bound
from harness.analysis.intervals import make_estimate, proportion_estimate, wilson_interval
from harness.analysis.measures import chsh_max, coherent_information, concurrence, qber, state_fidelity
from harness.analysis.tomography import state_tomography
from harness.gate import Tolerance, Verdict, evaluate, overall_verdict
from harness.metrics import Estimate
from harness.physics.link import delivered_state, link_kraus, observed_state
from harness.records import BELL_SETTINGS
from harness.store import Store

# Trend axis order is by version; runs are stored in another order (2.1.0 before 2.0.0) on purpose.
BUILDS = ("2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0-rc1")
INSERT_ORDER = ("2.1.0", "2.0.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0-rc1")
PROFILES = ("aer-reference", "aer-long-haul", "bench-lab")
REGRESSED = ("aer-reference", "2.5.0-rc1")
RELEASE = "2.5.0-rc1"
N_PER_SETTING = 16_000  # coincidences per tomography setting, in each of two pooled records
N_BOOT = 200
CODES = (("repetition_bitflip", 3), ("repetition_bitflip", 5), ("surface", 3), ("surface", 5))
P_LOGICAL = {
    ("repetition_bitflip", 3): 4e-4,
    ("repetition_bitflip", 5): 6e-5,
    ("surface", 3): 2e-3,
    ("surface", 5): 4e-4,
}
SHOTS = 200_000

TOLERANCES = {
    "bell_fidelity": Tolerance(absolute=0.002),
    "concurrence": Tolerance(absolute=0.0065),
    "chsh_s": Tolerance(absolute=0.017),
    "qber_z": Tolerance(absolute=0.004),
    "qber_x": Tolerance(absolute=0.004),
    "pair_rate_hz": Tolerance(relative=0.01),
    "heralding_efficiency_a": Tolerance(absolute=0.0037),
    "heralding_efficiency_b": Tolerance(absolute=0.003),
    "car": Tolerance(relative=0.02),
    "ebit_rate_hz": Tolerance(relative=0.034),
    "secret_key_rate_bps": Tolerance(relative=0.05),
    "plob_fraction": Tolerance(relative=0.034),
    "link_process_fidelity": Tolerance(absolute=0.0075),
    "capacity_ce_bits": Tolerance(absolute=0.046),
    "capacity_q1_bits": Tolerance(absolute=0.046),
    "capacity_chi_bits": Tolerance(absolute=0.015),
}
for _fam, _d in CODES:
    TOLERANCES[f"logical_success_{_fam}_d{_d}"] = Tolerance(absolute=3.5 * np.sqrt(P_LOGICAL[_fam, _d] / SHOTS))
    TOLERANCES[f"logical_error_per_round_{_fam}_d{_d}"] = Tolerance(absolute=3.5 * np.sqrt(P_LOGICAL[_fam, _d] / SHOTS))
    TOLERANCES[f"decode_time_us_{_fam}_d{_d}"] = Tolerance(relative=0.5)


@dataclass(frozen=True)
class Physics:
    """The truth of one build of one profile."""

    visibility: float
    dephasing: float
    pair_rate_hz: float
    eta_a: float  # detection efficiency of arm A
    eta_b: float  # link transmissivity x detection efficiency of arm B
    dark_hz: float
    window_s: float = 1e-9
    readout: float = 0.01

    def rates(self) -> tuple[float, float, float, float]:
        """Return singles A, singles B, true and accidental coincidence rates (Hz)."""
        s_a = self.pair_rate_hz * self.eta_a + self.dark_hz
        s_b = self.pair_rate_hz * self.eta_b + self.dark_hz
        c_t = self.pair_rate_hz * self.eta_a * self.eta_b
        return s_a, s_b, c_t, s_a * s_b * self.window_s

    def rho(self) -> np.ndarray:
        """Return the state a coincidence event is measured in (qubit A first)."""
        _, _, c_t, acc = self.rates()
        delivered = delivered_state(self.visibility, link_kraus(0.0, self.dephasing, 0.0), acc / (c_t + acc))
        return observed_state(delivered, self.readout, self.readout)


BASE_PHYSICS = {
    "aer-reference": Physics(0.97, 0.01, 2.0e6, 0.8, 0.5 * 0.8, 100.0),
    "aer-long-haul": Physics(0.96, 0.02, 1.0e7, 0.8, 3.16e-3 * 0.6, 2000.0),
    "bench-lab": Physics(0.975, 0.01, 1.0e6, 0.7, 0.3 * 0.7, 200.0),
    "bench-emulated": Physics(0.97, 0.01, 2.0e6, 0.8, 0.5 * 0.8, 100.0),
}


def physics_of(profile: str, build: str) -> Physics:
    """Return the truth of a build: unchanged except the regressed release and one improved build."""
    p = BASE_PHYSICS[profile]
    if (profile, build) == REGRESSED:
        # A less pure source: fidelity drops by ~0.75 * 0.04 = 0.03, far beyond the 0.002 margin.
        return Physics(p.visibility - 0.04, p.dephasing, p.pair_rate_hz, p.eta_a, p.eta_b, p.dark_hz)
    if profile == "aer-long-haul" and build in ("2.2.0", "2.3.0", "2.4.0", "2.5.0-rc1"):
        # From 2.2.0 the long-haul source runs 20% brighter (an improvement of the rates, kept since).
        return Physics(p.visibility, p.dephasing, p.pair_rate_hz * 1.2, p.eta_a, p.eta_b, p.dark_hz)
    return p


_PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def born_probabilities(rho: np.ndarray) -> np.ndarray:
    """Return P(outcome | setting) for the 9 Pauli settings, outcomes ++, +-, -+, -- (A first), shape (9, 4)."""
    proj = {b: [(np.eye(2) + s * _PAULI[b]) / 2 for s in (1, -1)] for b in "XYZ"}
    ops = np.array([[np.kron(pa, pb) for pa, pb in itertools.product(proj[s[0]], proj[s[1]])] for s in BELL_SETTINGS])
    p = np.real(np.einsum("soab,ba->so", ops, rho))
    p = np.clip(p, 0, None)
    return p / p.sum(axis=1, keepdims=True)


def _boot(name: str, point: float, reps: np.ndarray, n: int) -> Estimate:
    """Return a percentile-bootstrap Estimate of a registered metric."""
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return make_estimate(name, float(point), float(min(lo, point)), float(max(hi, point)), n, 0.95)


def _normal(name: str, value: float, se: float, n: int) -> Estimate:
    """Return a normal-interval Estimate of a registered metric."""
    return make_estimate(name, value, value - 1.96 * se, value + 1.96 * se, n, 0.95)


@dataclass
class RunTruth:
    """What one candidate run holds, for assertions."""

    profile: str
    build: str
    run_id: int
    physics: Physics
    counts: np.ndarray  # pooled bell counts in BELL_SETTINGS order
    verdicts: dict[str, str] = field(default_factory=dict)
    memories: list[dict] = field(default_factory=list)


@dataclass
class ReleaseStore:
    """The filled store and its ground truth."""

    path: Path
    runs: dict[tuple[str, str], RunTruth]
    metric_names: list[str]

    def release(self, profile: str) -> RunTruth:
        """Return the release run of a profile."""
        return self.runs[profile, RELEASE]


def _rho_artifacts(rho: np.ndarray) -> dict:
    """Return the stored products of bell_fidelity: the reconstructed density matrix and how it was obtained."""
    return {
        "rho": {"real": rho.real.tolist(), "imag": rho.imag.tolist()},
        "method": "linear inversion with projection to the nearest density matrix",
    }


def _memory_artifact(memory: dict) -> dict:
    """Return the stored form of one memory run: its counts, p_fail and the Wilson 95% interval of p_fail."""
    low, high = wilson_interval(memory["errors"], memory["shots"])
    return {**memory, "p_fail": memory["errors"] / memory["shots"], "ci_low": float(low), "ci_high": float(high)}


def _measure(
    profile: str, build: str, rng: np.random.Generator
) -> tuple[dict, dict[str, Estimate], dict[str, dict], Physics]:
    """Return raw payloads per protocol, the estimates and the stored analysis products of one build's measurement."""
    ph = physics_of(profile, build)
    probs = born_probabilities(ph.rho())
    bell = [rng.multinomial(N_PER_SETTING, probs) for _ in range(2)]  # two pooled re-measurements
    counts = bell[0] + bell[1]
    n_coinc = int(counts.sum())
    rho_hat = state_tomography(counts)
    totals = counts.sum(axis=1, keepdims=True)
    reps = rng.multinomial(totals[:, 0], counts / totals, size=(N_BOOT, 9))
    rho_b = state_tomography(reps)
    est = {
        "bell_fidelity": _boot("bell_fidelity", state_fidelity(rho_hat), state_fidelity(rho_b), n_coinc),
        "concurrence": _boot("concurrence", concurrence(rho_hat), concurrence(rho_b), n_coinc),
        "chsh_s": _boot("chsh_s", chsh_max(rho_hat), chsh_max(rho_b), n_coinc),
        "qber_z": _boot("qber_z", qber(rho_hat, "Z"), qber(rho_b, "Z"), n_coinc),
        "qber_x": _boot("qber_x", qber(rho_hat, "X"), qber(rho_b, "X"), n_coinc),
    }
    # Rates over 0.2 s: Poisson singles and coincidences.
    dur = 0.2
    s_a, s_b, c_t, acc = ph.rates()
    # A true coincidence is also a single on both arms, so singles and coincidences share the pair counts.
    pairs = int(rng.poisson(c_t * dur))
    sa = pairs + int(rng.poisson((s_a - c_t) * dur))
    sb = pairs + int(rng.poisson((s_b - c_t) * dur))
    c = pairs + int(rng.poisson(acc * dur))
    acc_hat = sa * sb * ph.window_s / dur
    pair = (c - acc_hat * dur) / dur
    est["pair_rate_hz"] = _normal("pair_rate_hz", pair, np.sqrt(c) / dur, c)
    est["heralding_efficiency_a"] = proportion_estimate("heralding_efficiency_a", c, sb)
    est["heralding_efficiency_b"] = proportion_estimate("heralding_efficiency_b", c, sa)
    car = c / (acc_hat * dur)
    est["car"] = _normal("car", car, car / np.sqrt(c), c)
    ci = float(coherent_information(rho_hat))
    ci_b = coherent_information(rho_b)
    est["ebit_rate_hz"] = _boot("ebit_rate_hz", pair * ci, pair * ci_b, c)
    kf = float(bbm92_key_fraction(qber(rho_hat, "X"), qber(rho_hat, "Z")))
    kf_b = bbm92_key_fraction(qber(rho_b, "X"), qber(rho_b, "Z"))
    est["secret_key_rate_bps"] = _boot("secret_key_rate_bps", 0.5 * pair * kf, 0.5 * pair * kf_b, c)
    h_b = c / sa
    plob = float(plob_bound(h_b))
    est["plob_fraction"] = _boot("plob_fraction", h_b * ci / plob, h_b * ci_b / plob, c)
    # Link and capacities: normal noise around the physics' truth.
    pf = 1 - 0.75 * (2 * ph.readout) - ph.dephasing / 2
    est["link_process_fidelity"] = _normal("link_process_fidelity", pf + rng.normal(0, 2e-3), 2.1e-3, 64_000)
    for name, truth, se in (
        ("capacity_ce_bits", 1.9, 0.013),
        ("capacity_q1_bits", 0.85, 0.013),
        ("capacity_chi_bits", 0.93, 4.2e-3),
    ):
        est[name] = _normal(name, truth - 2 * ph.dephasing + rng.normal(0, se), se, 64_000)
    memories = []
    artifacts = {"bell_fidelity": _rho_artifacts(rho_hat)}
    for fam, d in CODES:
        p_l = P_LOGICAL[fam, d]
        errors = int(rng.binomial(SHOTS, p_l))
        memories.append(
            {"code": f"{fam}_d{d}", "basis": "Z", "distance": d, "rounds": d, "shots": SHOTS, "errors": errors}
        )
        artifacts[f"logical_success_{fam}_d{d}"] = {"memories": [_memory_artifact(memories[-1])]}
        succ = proportion_estimate(f"logical_success_{fam}_d{d}", SHOTS - errors, SHOTS)
        est[f"logical_success_{fam}_d{d}"] = succ
        per_round = proportion_estimate(f"logical_error_per_round_{fam}_d{d}", errors, SHOTS)
        est[f"logical_error_per_round_{fam}_d{d}"] = make_estimate(
            f"logical_error_per_round_{fam}_d{d}",
            per_round.value / d,
            per_round.ci_low / d,
            per_round.ci_high / d,
            SHOTS,
            0.95,
        )
        t = 2.0 * d**2 * (1 + rng.normal(0, 0.03))
        est[f"decode_time_us_{fam}_d{d}"] = _normal(f"decode_time_us_{fam}_d{d}", t, 0.05 * t, SHOTS)
    raw = {
        "bell": [
            {"settings": list(BELL_SETTINGS), "counts": b.tolist(), "duration_s": 0.05, "budget_scale": 1.0}
            for b in bell
        ],
        "rates": [
            {
                "singles_a": sa,
                "singles_b": sb,
                "coincidences": c,
                "window_s": ph.window_s,
                "duration_s": dur,
                "budget_scale": 1.0,
            }
        ],
        "logical": [
            {
                "link_choi": {"real": np.eye(4).tolist(), "imag": np.zeros((4, 4)).tolist()},
                "memories": memories,
                "budget_scale": 1.0,
            }
        ],
    }
    return raw, est, artifacts, ph


BENCH_INSTRUMENTS = {
    "counter": {"queries": 120, "writes": 30, "retries": 3, "reconnects": 1, "faults": {"timeout": 2, "garbage": 1}},
    "analyzers": {"queries": 90, "writes": 18, "retries": 1, "reconnects": 0, "faults": {"drop": 1}},
    "setting_redos": 2,
}


def start_bare_run(store: Store, profile: str, build: str) -> int:
    """Start a candidate run with no baseline and a minimal provenance (an older store's); return its id."""
    return store.start_run(
        profile=profile,
        profile_hash=f"sha256:{profile}",
        build=build,
        baseline_build=None,
        seed=1,
        budget="quick",
        provenance={"role": "candidate"},
    )


@dataclass(frozen=True)
class Planned:
    """One run to store: whose, which build, its role, the baseline it is gated on and where that came from."""

    profile: str
    build: str
    baseline_build: str | None
    role: str = "candidate"
    baseline_source: str | None = None  # the session's provenance key; None: not recorded (an older store)


def _add_run(
    store: Store, plan: Planned, rng: np.random.Generator, seed: int, estimates: dict[tuple[str, str], dict]
) -> RunTruth:
    """Measure one planned run, store its raw records, gate it on its baseline's stored estimates, store metrics."""
    raw, est, artifacts, ph = _measure(plan.profile, plan.build, rng)
    estimates[plan.profile, plan.build] = est
    provenance: dict = {"kind": "bench" if plan.profile.startswith("bench") else "aer", "role": plan.role}
    if plan.baseline_source is not None:
        provenance["baseline_source"] = plan.baseline_source
    if plan.profile == "bench-lab":
        provenance["instruments"] = BENCH_INSTRUMENTS
    run_id = store.start_run(
        profile=plan.profile,
        profile_hash=f"sha256:{plan.profile}-hash",
        build=plan.build,
        baseline_build=plan.baseline_build,
        seed=seed,
        budget="standard",
        session_id=f"session-{plan.build}",
        provenance=provenance,
    )
    for proto, payloads in raw.items():
        for payload in payloads:
            store.add_raw(run_id, proto, payload)
    # The baseline of a build is its baseline build as stored (the same estimates the gate saw).
    base = estimates.get((plan.profile, plan.baseline_build), {}) if plan.baseline_build else {}
    comps = evaluate(est, base, TOLERANCES, alpha=0.05)
    for name, comp in comps.items():
        if plan.role == "candidate":
            detail = comp.to_dict() | ({"artifacts": artifacts[name]} if name in artifacts else {})
            store.add_metric(run_id, name, est[name], str(comp.verdict), detail)
        else:  # a baseline measured in a session is stored ungated, as the session stores it
            store.add_metric(
                run_id, name, est[name], detail={"artifacts": artifacts[name]} if name in artifacts else None
            )
    top = overall_verdict(c.verdict for c in comps.values())
    store.finish_run(run_id, "failed" if top is Verdict.REGRESSION and plan.role == "candidate" else "passed")
    counts = np.sum([np.asarray(p["counts"]) for p in raw["bell"]], axis=0)
    verdicts = {n: str(c.verdict) for n, c in comps.items()}
    return RunTruth(plan.profile, plan.build, run_id, ph, counts, verdicts, raw["logical"][0]["memories"])


def fill_planned(path: Path, plans: list[Planned], seed: int) -> ReleaseStore:
    """Store the planned runs in order; return the store with the truth of its candidate runs."""
    rng = np.random.default_rng(seed)
    truths: dict[tuple[str, str], RunTruth] = {}
    estimates: dict[tuple[str, str], dict[str, Estimate]] = {}
    with Store(path) as store:
        for plan in plans:
            truth = _add_run(store, plan, rng, seed, estimates)
            if plan.role == "candidate":
                truths[plan.profile, plan.build] = truth
    names = list(next(iter(estimates.values())))
    return ReleaseStore(path, truths, names)


def fill_store(path: Path, seed: int = 20240611) -> ReleaseStore:
    """Fill a store at `path` with 3 profiles x 6 builds of candidate runs; return it with its ground truth."""
    plans = []
    for build in INSERT_ORDER:
        i = BUILDS.index(build)
        plans += [Planned(profile, build, BUILDS[i - 1] if i > 0 else None) for profile in PROFILES]
    filled = fill_planned(path, plans, seed)
    with Store(path) as store:
        for profile in PROFILES:
            store.set_baseline(profile, "2.4.0")
    return filled


# Two releases of aer-reference as sessions store them: 2.4.0 gated on a 2.3.0 baseline measured in its session
# (stored first here, so that its estimates exist to gate on), 2.5.0-rc1 on the stored 2.4.0. An emulator profile
# with runs of 2.3.0 and 2.5.0-rc1 but none of 2.4.0 shares the store.
UNRELATED = "bench-emulated"
TWO_RELEASES = [
    Planned("aer-reference", "2.3.0", None, role="baseline"),
    Planned("aer-reference", "2.4.0", "2.3.0", baseline_source="measured"),
    Planned(UNRELATED, "2.3.0", None, baseline_source="none"),
    Planned("aer-reference", "2.5.0-rc1", "2.4.0", baseline_source="store"),
    Planned(UNRELATED, "2.5.0-rc1", "2.3.0", baseline_source="store"),
]


def fill_two_release_store(path: Path, seed: int = 4242) -> ReleaseStore:
    """Fill a store with TWO_RELEASES; return it with the truth of its candidate runs."""
    return fill_planned(path, TWO_RELEASES, seed)
