"""The regression suites over a bench of Python driver plugins (tests/instruments/test_drivers_plugin.py).

The plugin's counter draws its counts from the emulators' link model, so the suites must give the Aer verdicts on
it; its faults must end as ERROR with one cause, and a driver that cannot serve its role must stop the run at once
as a usage error (exit 4) naming the profile key.
"""

import json
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml
from test_suites_bench import _verdicts, assert_aer_verdicts, assert_one_cause, run_suites

pytestmark = pytest.mark.slow

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "instruments"
CLASSES = {"source": "PhysicsSource", "counter": "PhysicsCounter", "analyzers": "PhysicsAnalyzers"}


@pytest.fixture(autouse=True)
def plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child pytest imports the plugin as `test_drivers_plugin`, as a lab imports its vendor package."""
    monkeypatch.setenv("PYTHONPATH", str(PLUGIN_DIR))


def python_bench(build: str, seed: int, *, faults: dict | None = None, classes: dict | None = None, **bench) -> dict:
    """A bench block of plugin instruments with the physics of `build`; `faults` maps a role to its fault plan."""
    out: dict = {**bench, "decoder": None}
    for role, cls in {**CLASSES, **(classes or {})}.items():
        options = {"bench": f"{build}-{seed}", "physics": "aer-reference", "build": build, "seed": seed}
        if faults and role in faults:
            options["fault"] = faults[role]
        out[role] = {"transport": "python", "driver": f"test_drivers_plugin:{cls}", "options": options}
    return out


def profile_file(tmp: Path, bench: dict) -> Path:
    """A lab's profile that swaps the emulated bench's instruments for the plugin's (physics of aer-reference)."""
    path = tmp / "device_profiles" / "python-bench.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "python-bench", "extends": "bench-emulated", "bench": bench}))
    return path


def test_python_bench_gives_the_aer_verdicts(tmp_path: Path):
    runs = {}
    for seed, build in enumerate(("2.3.0", "2.4.0", "2.5.0-rc1")):
        profile = profile_file(tmp_path, python_bench(build, seed))
        extra = ("--budget", "release") if build == "2.3.0" else ("--baseline-build", "2.3.0")
        runs[build] = run_suites(tmp_path, profile, build, *extra)
    assert_aer_verdicts(runs)
    assert "link_process_fidelity" in _verdicts(runs["2.4.0"][1])  # link tomography ran through prepare_state


# Faults of the pair source, which is opened first: each ends the run at once with one cause.
SOURCE_FAULTS = {
    "refused": (
        "__init__",
        "cannot connect to python driver test_drivers_plugin:PhysicsSource: "
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ),
    "timeout": ("identify", "identify failed after 1 retries: no answer within 0.3 s"),
    "exception": (
        "identify",
        "identify failed after 1 retries: driver raised RuntimeError: vendor API error 0x1F in identify",
    ),
    "garbage": ("identify", "identify failed after 1 retries: expected a non-empty printable reply, got '\\x07\\x00'"),
    "none-value": (
        "firmware_build",
        "firmware_build failed after 1 retries: expected a firmware build like 2.4.0, got ''",
    ),
}


@pytest.mark.parametrize("kind", list(SOURCE_FAULTS))
def test_a_driver_fault_is_one_error(tmp_path: Path, kind: str):
    method, cause = SOURCE_FAULTS[kind]
    fault = {"method": method, "kind": kind}
    bench = python_bench("2.4.0", 0, faults={"source": fault}, timeout_s=0.3, retries=1, backoff_s=0.0)
    # pytest's short summary is kept to failures and errors: it would list every skipped test's reason (-ra).
    code, summary, out = run_suites(tmp_path, profile_file(tmp_path, bench), "2.4.0", "-r", "fE")
    assert_one_cause(code, summary, out, f"source: {cause}")


def test_faults_during_measurement_are_retried_or_errors_never_regressions(tmp_path: Path):
    # Garbage counts now and then (a negative count) are retried away: the verdicts stand, the retries are recorded.
    noisy = python_bench("2.4.0", 3, faults={"counter": {"method": "coincidences", "kind": "negative", "rate": 0.1}})
    code, summary, out = run_suites(tmp_path, profile_file(tmp_path, noisy), "2.4.0", "-k", "bell_state")
    assert code == 0 and "REGRESSION" not in out, out
    with sqlite3.connect(tmp_path / "q.db") as db:
        prov = json.loads(db.execute("SELECT provenance FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert prov["instruments"]["counter"]["faults"].get("InstrumentProtocolError", 0) > 0, prov["instruments"]
    # A vendor API that keeps failing: ERROR with the driver's reason, never REGRESSION.
    broken = python_bench("2.4.0", 4, faults={"counter": {"method": "coincidences", "kind": "oserror"}}, retries=1)
    code, summary, out = run_suites(tmp_path, profile_file(tmp_path, broken), "2.4.0", "-k", "bell_state")
    assert code == 1 and "REGRESSION" not in out and "Traceback" not in out, out
    assert {m["verdict"] for m in summary["metrics"]} == {"ERROR"}
    assert (
        "counter: coincidences failed after 1 retries: ConnectionResetError: [Errno 104] Connection reset by peer"
        in out
    )


@pytest.mark.parametrize(
    ("classes", "key", "message"),
    [
        (
            {"counter": "NoSinglesCounter"},
            "bench.counter.driver",
            "has no method 'singles'; a driver of bench.counter implements coincidences, set_integration, singles",
        ),
        (
            {"analyzers": "WrongSignatureAnalyzers"},
            "bench.analyzers.driver",
            "cannot be called as set_basis(arm, basis)",
        ),
        (
            {"counter": "NoSuchClass"},
            "bench.counter.driver",
            "module 'test_drivers_plugin' has no attribute 'NoSuchClass'",
        ),
    ],
    ids=["missing-method", "wrong-signature", "no-such-class"],
)
def test_a_driver_that_cannot_serve_its_role_is_a_usage_error(tmp_path: Path, classes: dict, key: str, message: str):
    code, summary, out = run_suites(
        tmp_path, profile_file(tmp_path, python_bench("2.4.0", 0, classes=classes)), "2.4.0"
    )
    assert code == 4 and not summary, out
    named = [line for line in out.splitlines() if key in line]
    assert len(named) == 1 and message in named[0], out
    assert "Traceback" not in out


def test_a_driver_module_that_cannot_be_imported_is_a_usage_error(tmp_path: Path):
    bench = python_bench("2.4.0", 0)
    bench["counter"]["driver"] = "vendor_tagger_sdk.api:TimeTagger"
    code, summary, out = run_suites(tmp_path, profile_file(tmp_path, bench), "2.4.0")
    assert code == 4 and not summary, out
    named = [line for line in out.splitlines() if "bench.counter.driver" in line]
    assert len(named) == 1, out
    assert "cannot import driver module 'vendor_tagger_sdk.api' (ModuleNotFoundError: No module named " in named[0]
    assert "install the package that provides it" in named[0] and "Traceback" not in out


def qcodes_profile(tmp: Path, **counter_parameters) -> Path:
    """A profile whose instruments are QCoDeS's simulated ones (tests/instruments/test_drivers_qcodes.py)."""
    pytest.importorskip("qcodes", reason="QCoDeS is not installed (pip install 'qharness[qcodes]')")
    pytest.importorskip("pyvisa_sim", reason="pyvisa-sim is not installed (pip install 'qharness[qcodes]')")
    sys.path.insert(0, str(PLUGIN_DIR))
    from test_drivers_qcodes import STATION, qcodes_bench

    station = tmp / "station.yaml"
    station.write_text(yaml.safe_dump(STATION))
    # The Lakeshore sim's temperature readings (100.0 each) stand for the four coincidence counts.
    counts = [f"ls336.{ch}.temperature" for ch in "ABCD"]
    return profile_file(tmp, qcodes_bench(station, coincidences=counts, **counter_parameters))


def test_the_suites_run_on_qcodes_simulated_instruments(tmp_path: Path):
    code, summary, out = run_suites(tmp_path, qcodes_profile(tmp_path), "MOCKFW", "-k", "bell_state")
    assert code == 0 and "Traceback" not in out, out
    metrics = {m["name"]: m for m in summary["metrics"]}
    assert {m["verdict"] for m in metrics.values()} == {"NO_BASELINE"}, out
    # Four equal counts in every setting: the maximally mixed state, fidelity 1/4 with Phi+.
    assert metrics["bell_fidelity"]["value"] == pytest.approx(0.25, abs=1e-9)


def test_a_qcodes_option_that_cannot_work_is_a_usage_error(tmp_path: Path):
    profile = qcodes_profile(tmp_path, singles=["ls336.A.sensor_raw", "tagger.singles_b"])
    code, summary, out = run_suites(tmp_path, profile, "MOCKFW")
    named = [line for line in out.splitlines() if "bench.counter.options" in line]
    assert code == 4 and not summary and len(named) == 1, out
    assert "qcodes options: instrument 'tagger' is not in station" in named[0]


def test_a_recorded_python_session_replays_to_identical_metrics(tmp_path: Path):
    cassette = tmp_path / "session.jsonl"
    bench = python_bench("2.4.0", 5)
    selection = ("-k", "bell_state or entanglement_rate")
    code, live, out = run_suites(
        tmp_path, profile_file(tmp_path, bench), "2.4.0", *selection, "--record-session", str(cassette)
    )
    assert code == 0, out
    assert '"command": "set_basis arm=A basis=X"' in cassette.read_text()
    replay = tmp_path / "replay" / "python-bench.yaml"
    replay.parent.mkdir()
    body = {"name": "python-bench", "extends": "bench-emulated", "kind": "replay", "bench": bench}
    replay.write_text(yaml.safe_dump({**body, "replay": {"cassette": str(cassette)}}))
    code, replayed, out = run_suites(tmp_path, replay, "2.4.0", *selection)
    assert code == 0, out
    values = {m["name"]: (m["value"], m["ci_low"], m["ci_high"]) for m in live["metrics"]}
    assert values == {m["name"]: (m["value"], m["ci_low"], m["ci_high"]) for m in replayed["metrics"]}
