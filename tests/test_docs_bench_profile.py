"""docs/bench.md is followed to the letter: its example profile measures the emulators, and its replay profile replays.

A lab copies the example profile and changes the addresses; here the addresses become those of
`qharness emulate --profile aer-reference --profile-out` and nothing else changes. The suites then run through
pytest exactly as the docs say, recording the session; the replay profile from the docs answers from that cassette
and must reproduce every metric of the recorded run exactly.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.devices.replay import ReplayDevice, ReplayMismatchError
from harness.emulators import LinkModel, LinkParameters
from harness.metrics import REGISTRY, metric_spec
from harness.profiles import load_profile
from harness.protocols import BELL_METRICS, LINK_METRICS, RATE_METRICS
from harness.protocols.decoder import DECODER_METRICS
from harness.records import BELL_SETTINGS
from harness.store import Store

REPO = Path(__file__).resolve().parents[1]
BENCH_DOC = REPO / "docs" / "bench.md"
BASELINES_DOC = REPO / "docs" / "baselines.md"
TEMPLATE = REPO / "harness" / "device_profiles" / "bench-lab-template.yaml"
SUITES = REPO / "harness" / "test_suites"
PHYSICS = "aer-reference"  # the emulators report this profile's physics
SEED = 11
SELECT = "bell_state or entanglement_rate"
ROLE_ADDRESS = {"source": "url", "counter": "resource", "analyzers": "resource"}
EMULATOR_START_S = 60.0
RUN_TIMEOUT_S = 300


def doc_text() -> str:
    """The text of docs/bench.md."""
    return BENCH_DOC.read_text(encoding="utf-8")


def example_profile_text() -> str:
    """The ```yaml block that follows <!-- example-bench-profile --> in docs/bench.md."""
    m = re.search(r"<!-- example-bench-profile -->\s*\n```ya?ml\n(.*?)^```", doc_text(), re.S | re.M)
    assert m is not None, "docs/bench.md has no ```yaml block right after <!-- example-bench-profile -->"
    return m.group(1)


def baselines_tolerance_block() -> str:
    """The one ```yaml block of docs/baselines.md that sets tolerances."""
    text = BASELINES_DOC.read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"^```ya?ml\n(.*?)^```", text, re.S | re.M) if "tolerances:" in b]
    assert len(blocks) == 1, f"docs/baselines.md should show one tolerances block, found {len(blocks)}"
    return blocks[0]


def replay_profile_text() -> str:
    """The one ```yaml block of docs/bench.md that declares `kind: replay`."""
    blocks = [b for b in re.findall(r"^```ya?ml\n(.*?)^```", doc_text(), re.S | re.M) if "kind: replay" in b]
    assert len(blocks) == 1, f"docs/bench.md should show one kind: replay profile, found {len(blocks)}"
    return blocks[0]


def with_addresses(text: str, addresses: dict[str, str]) -> str:
    """The profile text with each role's url/resource value replaced, as a lab edits it, and nothing else."""
    data = yaml.safe_load(text)
    for role, new in addresses.items():
        old = data["bench"][role][ROLE_ADDRESS[role]]
        quoted = f'"{old}"'
        assert text.count(quoted) >= 1, f"bench.{role}.{ROLE_ADDRESS[role]} {quoted} is not written as a quoted string"
        text = text.replace(quoted, f'"{new}"')
    return text


@dataclass
class Recorded:
    """The recorded run: where its files are and what pytest said."""

    root: Path
    profile: Path
    replay_profile: Path
    cassette: Path
    db: Path
    summary: Path
    output: str
    seconds: float


def read_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The next stdout line of `proc`, waiting at most `timeout_s`; fail with its stderr if none comes."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        proc.terminate()
        pytest.fail(f"qharness emulate printed nothing within {timeout_s} s: {proc.communicate(timeout=10)[1]}")
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line:
        pytest.fail(f"qharness emulate exited {proc.wait(10)}: {proc.stderr.read()}")  # type: ignore[union-attr]
    return line.strip()


@contextlib.contextmanager
def serving(build: str, seed: int, live: Path) -> Iterator[dict]:
    """`qharness emulate` serving aer-reference's physics for `build`; yields its live bench block."""
    cmd = [sys.executable, "-m", "harness.cli", "emulate", "--profile", PHYSICS, "--build", build]
    proc = subprocess.Popen(
        [*cmd, "--seed", str(seed), "--profile-out", str(live)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = read_line(proc, EMULATOR_START_S)
        assert Path(first) == live, f"the first line should be the profile path, got {first!r}"
        yield yaml.safe_load(live.read_text())["bench"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The emulators serving the example's build; yields their live bench block."""
    build = yaml.safe_load(example_profile_text())["firmware"]["build"]
    with serving(build, SEED, tmp_path_factory.mktemp("emulators") / "live.yaml") as bench:
        yield bench


def addresses(bench: dict) -> dict[str, str]:
    """Each role's live address in a bench block written by `qharness emulate --profile-out`."""
    return {role: bench[role][key] for role, key in ROLE_ADDRESS.items()}


def run_suites(
    profile: Path, cwd: Path, db: Path, summary: Path, *extra: str, select: str | None = SELECT
) -> subprocess.CompletedProcess:
    """pytest on the packaged suites with one device profile, as docs/bench.md runs them (`select`: -k)."""
    cmd = [sys.executable, "-m", "pytest", str(SUITES), "--device-profile", str(profile)]
    cmd += ["-k", select] if select else []
    cmd += ["--budget", "quick", "--results-db", str(db), "--harness-summary", str(summary)]
    cmd += ["-p", "no:cacheprovider", "-q", *extra]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def recorded(emulators: dict, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The docs' layout: the example (live addresses) and the docs' replay profile side by side; one recorded run."""
    root = tmp_path_factory.mktemp("lab")
    profiles = root / "device_profiles"
    profiles.mkdir()
    replay_text = replay_profile_text()
    replay = yaml.safe_load(replay_text)
    bench_file = profiles / replay["extends"]
    bench_file.write_text(
        with_addresses(example_profile_text(), addresses(emulators)),
        encoding="utf-8",
    )
    replay_file = profiles / f"{Path(replay['extends']).stem}-replay.yaml"
    replay_file.write_text(replay_text, encoding="utf-8")
    cassette = profiles / replay["replay"]["cassette"]
    db, summary = root / "recorded.db", root / "recorded.json"
    t0 = time.monotonic()
    proc = run_suites(bench_file, root, db, summary, "--record-session", str(cassette))
    return Recorded(
        root, bench_file, replay_file, cassette, db, summary, proc.stdout + proc.stderr, time.monotonic() - t0
    )


def candidate_run(db: Path) -> tuple[Store, int]:
    """The store and the id of its single run."""
    store = Store(db)
    runs = store.runs()
    assert len(runs) == 1, [(r.id, r.build, r.provenance.get("role")) for r in runs]
    return store, runs[0].id


def tolerance_keys(profile: dict) -> set[str]:
    """The metric names a profile mapping gives a tolerance."""
    return set(profile.get("tolerances") or {})


def test_the_example_and_the_template_gate_every_bench_metric_with_a_margin(tmp_path: Path) -> None:
    """A margin for each metric a bench gates, none for the logical memories (never measured on a bench).

    A metric without a margin is INCONCLUSIVE on an unchanged build in ~95% of runs (docs/baselines.md), so a
    bench profile copied from the docs or the template must name one for each. Both were sized together (same
    measurement block, same margins), and docs/baselines.md quotes them.
    """
    measured = {*BELL_METRICS, *LINK_METRICS, *RATE_METRICS, *DECODER_METRICS}
    assert measured == set(REGISTRY), "a new registered metric needs a bench margin or a reason to have none"
    # Informational metrics (Holevo chi) are never gated, so a margin for them would only mislead.
    gated = {m for m in measured if not metric_spec(m).informational}
    assert gated < measured
    example_file = tmp_path / "example.yaml"
    example_file.write_text(example_profile_text(), encoding="utf-8")
    example = load_profile(example_file).base
    template = load_profile(TEMPLATE).base
    for label, profile in (("docs/bench.md example", example), ("bench-lab-template", template)):
        assert set(profile.tolerances) == gated, (label, sorted(gated ^ set(profile.tolerances)))
        assert all(t.absolute or t.relative for t in profile.tolerances.values()), label
    assert example.tolerances == template.tolerances
    assert example.measurement == template.measurement
    quoted = yaml.safe_load(baselines_tolerance_block())["tolerances"]
    assert quoted and all(example.tolerances[k].model_dump(exclude_none=True) == v for k, v in quoted.items())


def test_example_is_a_valid_bench_profile_of_its_own() -> None:
    """The example validates as a kind-bench profile and is not the shipped emulator profile."""
    profile_path = REPO / "harness" / "device_profiles" / "bench-emulated.yaml"
    example = yaml.safe_load(example_profile_text())
    assert example["kind"] == "bench"
    assert example["name"] != "bench-emulated"
    assert example != yaml.safe_load(profile_path.read_text())
    assert example_profile_text().count("#") >= 10, "the example should explain its keys in comments"


@pytest.mark.slow
def test_only_the_addresses_change(recorded: Recorded, emulators: dict) -> None:
    """The profile run against the emulators is the docs' example with three address strings replaced."""
    original = yaml.safe_load(example_profile_text())
    edited = yaml.safe_load(recorded.profile.read_text())
    for role, key in ROLE_ADDRESS.items():
        assert edited["bench"][role][key] == emulators[role][key]
        original["bench"][role][key] = emulators[role][key]
    assert edited == original
    loaded = load_profile(recorded.profile)
    assert loaded.kind == "bench" and loaded.name == original["name"]


@pytest.mark.slow
def test_example_profile_measures_the_emulators(recorded: Recorded) -> None:
    """The suites complete against the example with a verdict per metric, none of them ERROR."""
    out = recorded.output
    n = len(BELL_METRICS) + len(RATE_METRICS)
    assert re.search(rf"\b{n} passed\b", out), out[-3000:]
    assert " error" not in out.lower().split("short test summary")[-1], out[-3000:]
    summary = json.loads(recorded.summary.read_text())
    summary = summary[0] if isinstance(summary, list) else summary
    verdicts = {m["name"]: m["verdict"] for m in summary["metrics"]}
    assert set(BELL_METRICS + RATE_METRICS) <= set(verdicts), sorted(verdicts)
    assert "ERROR" not in verdicts.values(), verdicts
    # A bench with no stored baseline has nothing to compare with, so the docs promise NO_BASELINE.
    assert {verdicts[m] for m in BELL_METRICS + RATE_METRICS} == {"NO_BASELINE"}, verdicts


@pytest.mark.slow
def test_raw_records_are_stored_and_match_the_cassette(recorded: Recorded) -> None:
    """Each Bell setting is stored as measured, and its counts are the counter's replies on the cassette."""
    store, run_id = candidate_run(recorded.db)
    with store:
        run = store.run(run_id)
        assert run.status == "passed" and run.provenance["kind"] == "bench"
        raw = store.raw_records(run_id)
    settings = [r["payload"] for r in raw if r["protocol"] == "bell_setting"]
    assert [s["setting"] for s in settings] == list(BELL_SETTINGS)
    bell = next(r["payload"] for r in raw if r["protocol"] == "bell")
    np.testing.assert_array_equal(bell["counts"], [s["counts"] for s in settings])
    assert any(r["protocol"] == "coincidences" for r in raw)
    exchanges = [json.loads(line) for line in recorded.cassette.read_text().splitlines()]
    assert {"instrument", "command", "reply", "t", "fault"} <= set(exchanges[0])
    replies = [e["reply"] for e in exchanges if e["instrument"] == "counter" and e["command"] == "COUN:COIN?"]
    assert [[int(x) for x in r.split(",")] for r in replies[: len(BELL_SETTINGS)]] == bell["counts"]


@pytest.mark.slow
def test_metrics_match_the_emulated_physics(recorded: Recorded) -> None:
    """Bell fidelity and pair rate agree with the emulators' true values within 4 standard errors."""
    truth_params = LinkParameters.from_profile(
        load_profile(PHYSICS).effective(yaml.safe_load(example_profile_text())["firmware"]["build"])
    )
    model = LinkModel(truth_params)
    phi = np.array([1.0, 0.0, 0.0, 1.0]) / np.sqrt(2.0)
    truth = {
        "bell_fidelity": float(np.real(phi @ model.observed_state() @ phi)),
        "pair_rate_hz": float(model.link_rates().true_coincidence_hz),
    }
    store, run_id = candidate_run(recorded.db)
    with store:
        metrics = store.metrics(run_id)
    for name, value in truth.items():
        est = metrics[name][0]
        se = (est.ci_high - est.ci_low) / (2 * 1.96)
        assert abs(est.value - value) <= 4 * se, f"{name}: measured {est.value} ± {se}, true {value}"


@pytest.mark.slow
def test_replay_profile_from_the_docs_reproduces_the_metrics(recorded: Recorded) -> None:
    """The docs' kind: replay profile answers from the cassette and every stored metric equals the recorded one."""
    loaded = load_profile(recorded.replay_profile)
    assert loaded.kind == "replay" and loaded.effective().replay.cassette == str(recorded.cassette.resolve())
    db, summary = recorded.root / "replayed.db", recorded.root / "replayed.json"
    proc = run_suites(recorded.replay_profile, recorded.root, db, summary)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rec_store, rec_id = candidate_run(recorded.db)
    rep_store, rep_id = candidate_run(db)
    with rec_store, rep_store:
        assert rep_store.run(rep_id).provenance["kind"] == "replay"
        rec = {k: v[0] for k, v in rec_store.metrics(rec_id).items()}
        rep = {k: v[0] for k, v in rep_store.metrics(rep_id).items()}
    assert set(BELL_METRICS + RATE_METRICS) <= set(rec)
    assert rep == rec


@pytest.mark.slow
def test_replay_out_of_order_names_expected_and_actual(recorded: Recorded) -> None:
    """A replayed session that integrates for another time stops at once, naming both commands and the line."""
    loaded = load_profile(recorded.replay_profile)
    build = loaded.default_build
    quick = loaded.effective(build).measurement.integration_time_s * 0.25
    device = ReplayDevice(loaded.effective(build), build)
    try:
        device.open()
        device.identify()  # the session identifies before it measures, so the cassette does too
        with pytest.raises(ReplayMismatchError) as err:
            device.bell_tomography(4 * quick)
    finally:
        device.close()
    message = str(err.value)
    assert f"expected counter 'COUN:TIME {quick:.9g}'" in message, message
    assert f"counter issued 'COUN:TIME {4 * quick:.9g}'" in message, message
    assert re.search(r"line \d+:", message), message


@pytest.mark.slow
def test_an_unchanged_build_passes_every_metric_with_the_example_margins(emulators: dict, tmp_path: Path) -> None:
    """The example's baseline build is stored, then its build is gated against it: physics unchanged, all PASS.

    aer-reference's physics is the same for both builds, so this is an unchanged build at --budget quick on the
    emulators (independent seeds); with the example's margins of ~6 SE it PASSes every metric in ~95% of runs.
    """
    example = yaml.safe_load(example_profile_text())
    baseline, build = example["firmware"]["baseline"], example["firmware"]["build"]
    physics = load_profile(PHYSICS)
    assert physics.effective(baseline).model_dump(exclude={"firmware"}) == physics.effective(build).model_dump(
        exclude={"firmware"}
    )
    profile, db = tmp_path / "bench-lab-3.yaml", tmp_path / "unchanged.db"
    with serving(baseline, SEED + 1, tmp_path / "live-baseline.yaml") as bench:
        profile.write_text(with_addresses(example_profile_text(), addresses(bench)), encoding="utf-8")
        first = run_suites(profile, tmp_path, db, tmp_path / "baseline.json", "--firmware-build", baseline, select=None)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    profile.write_text(with_addresses(example_profile_text(), addresses(emulators)), encoding="utf-8")
    proc = run_suites(profile, tmp_path, db, tmp_path / "candidate.json", select=None)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads((tmp_path / "candidate.json").read_text())
    verdicts = {m["name"]: m["verdict"] for m in summary["metrics"]}
    # No decoder block in the example, so the decoder metrics are skipped; everything else but Holevo chi
    # (informational) is gated.
    assert set(verdicts) == {*BELL_METRICS, *LINK_METRICS, *RATE_METRICS}
    assert verdicts.pop("capacity_chi_bits") == "NOT_GATED"
    assert set(verdicts.values()) == {"PASS"}, verdicts
    assert summary["baseline_build"] == baseline and summary["verdict"] == "PASS"
