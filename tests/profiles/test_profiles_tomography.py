"""The profile's tomography block: schemes, projections in three forms, detectors, offsets, estimator; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.profiles import ProfileError, find_profile, load_profile, load_yaml
from harness.profiles.tomography import Tomography

WAVEPLATE_ANALYZERS = {
    "transport": "visa",
    "resource": "TCPIP0::127.0.0.1::5025::SOCKET",
    "commands": {"set_waveplates": "WP {arm},{hwp_deg},{qwp_deg}", "prepare_waveplates": "PREP:WP {hwp_deg},{qwp_deg}"},
}
OFFSETS, INPUTS, ANALYSIS = "tomography.waveplate_offsets", "tomography.link.inputs", "tomography.link.analysis"


def _write(tmp: Path, tomography: object, analyzers: dict | None = None) -> Path:
    """A bench profile with the emulated bench's instruments, its analysers' commands replaced by `analyzers`'."""
    shipped = load_yaml(find_profile("bench-emulated"))
    bench = {**shipped["bench"], "analyzers": analyzers or shipped["bench"]["analyzers"]}
    data = {"name": "t", "kind": "bench", "extends": "aer-reference", "aer": None, "bench": bench}
    data["tomography"] = tomography
    path = tmp / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _bench(tmp: Path, tomography: object) -> Path:
    return _write(tmp, tomography, WAVEPLATE_ANALYZERS)


def _problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ProfileError) as info:
        load_profile(path).effective("2.4.0")
    return [(p.key, p.message) for p in info.value.problems]


def test_defaults_follow_the_scheme(tmp_path: Path) -> None:
    assert Tomography().detectors == 2 and Tomography().method == "linear"
    found = load_profile(_bench(tmp_path, {"scheme": "james16"})).effective("2.4.0").tomography
    assert (found.scheme, found.detectors, found.method) == ("james16", 1, "mle")
    assert found.link_analysis == ["H", "V", "D", "A", "R", "L"] and found.offsets() == [(0.0, 0.0), (0.0, 0.0)]
    assert Tomography(scheme="pauli", estimator="mle").method == "mle"
    assert Tomography(scheme="pauli").link_analysis == ["D", "R", "H"]


def test_custom_scheme_takes_labels_angles_and_jones_vectors(tmp_path: Path) -> None:
    settings = ["".join(p) for p in zip("HHVVRRDDDDRHVVHR", "HVVHHVVHRDDDDLLL", strict=True)]
    settings[0] = [{"hwp": 0.0, "qwp": 0}, "H"]
    settings[1] = ["H", {"jones": [0, 1]}]
    settings[2] = [{"jones": ["0.7071", "-0.7071j"]}, "V"]
    block = {
        "scheme": "custom",
        "projections": settings,
        "waveplate_offsets": {"A": {"hwp": 1.5, "qwp": -0.5}, "B": {"qwp": 2}},
        "link": {"inputs": ["H", {"hwp": 22.5, "qwp": 0}, {"jones": [1, "1j"]}], "input_offset": {"hwp": 0.3}},
    }
    found = load_profile(_bench(tmp_path, block)).effective("2.4.0").tomography
    assert found.projections[0] == [{"hwp": 0.0, "qwp": 0}, "H"] and found.projections[3] == "VH"
    assert found.offsets() == [(1.5, -0.5), (0.0, 2.0)] and found.link.input_offset.pair() == (0.3, 0.0)
    assert found.detectors == 1 and found.method == "mle"


@pytest.mark.parametrize(
    ("block", "key", "words"),
    [
        ({"scheme": "jams16"}, "tomography.scheme", "did you mean 'james16'"),
        ({"scheme": "james16", "detectors_per_arm": 2}, "tomography.detectors_per_arm", "1 detector(s) per arm"),
        ({"scheme": "pauli", "detectors_per_arm": 3}, "tomography.detectors_per_arm", "allowed: 1, 2"),
        ({"scheme": "custom"}, "tomography", "needs 'projections'"),
        ({"scheme": "james16", "projections": ["HH"]}, "tomography.projections", "fixes its projections"),
        ({"scheme": "custom", "projections": ["HH", "HV"]}, "tomography.projections", "at least 16"),
        ({"scheme": "custom", "projections": ["HX"] * 16}, "tomography.projections[0]", "unknown projection label 'X'"),
        ({"scheme": "custom", "projections": ["HHV"] * 16}, "tomography.projections[0]", "one label per arm"),
        ({"scheme": "custom", "projections": [["H"]] * 16}, "tomography.projections[0]", "two projections"),
        ({"scheme": "james16", "estimator": "linear"}, "tomography.estimator", "needs scheme pauli"),
        ({"scheme": "james16", "estimator": "ml"}, "tomography.estimator", "allowed: mle, linear"),
        ({"scheme": "james16", "bogus": 1}, "tomography.bogus", "unknown key 'bogus'"),
        ({"scheme": "james16", "waveplate_offsets": {"A": {"hwp": 50}}}, f"{OFFSETS}.A.hwp", "[-45, 45]"),
        ({"scheme": "james16", "waveplate_offsets": {"A": {"hwq": 1}}}, f"{OFFSETS}.A.hwq", "unknown key"),
        ({"scheme": "james16", "link": {"inputs": []}}, "tomography.link.inputs", "at least 1"),
        ({"scheme": "james16", "link": {"inputs": [{"hwp": 400, "qwp": 0}]}}, f"{INPUTS}[0]", "[-360, 360]"),
        ({"scheme": "james16", "link": {"inputs": [{"hwp": "a", "qwp": 0}]}}, f"{INPUTS}[0]", "number of degrees"),
        ({"scheme": "james16", "link": {"inputs": [{"hwp": 1}]}}, f"{INPUTS}[0]", "neither a label"),
        ({"scheme": "james16", "link": {"analysis": [{"jones": [0, 0]}]}}, f"{ANALYSIS}[0]", "not zero"),
        ({"scheme": "james16", "link": {"analysis": [{"jones": [1]}]}}, f"{ANALYSIS}[0]", "two components"),
        ({"scheme": "james16", "link": {"analysis": [{"jones": [1, "x"]}]}}, f"{ANALYSIS}[0]", "'x'"),
    ],
)
def test_bad_blocks_name_the_key_and_the_fix(tmp_path: Path, block: dict, key: str, words: str) -> None:
    problems = _problems(_bench(tmp_path, block))
    assert any(k == key and words in m for k, m in problems), problems


def test_a_waveplate_scheme_needs_set_waveplates_and_a_bench(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, {"scheme": "james16"}))
    assert problems == [("bench.analyzers.commands", problems[0][1])] and "set_waveplates" in problems[0][1]
    aer = tmp_path / "a.yaml"
    aer.write_text(yaml.safe_dump({"name": "a", "extends": "aer-reference", "tomography": {"scheme": "james16"}}))
    assert _problems(aer) == [("tomography.scheme", "kind aer measures scheme pauli only, not 'james16'")]
    aer.write_text(yaml.safe_dump({"name": "a", "extends": "aer-reference", "tomography": {"estimator": "mle"}}))
    assert load_profile(aer).effective("2.4.0").tomography.method == "mle"


def test_set_waveplates_stands_in_for_set_basis_and_its_placeholders_are_checked(tmp_path: Path) -> None:
    load_profile(_bench(tmp_path, {"scheme": "james16"})).effective("2.4.0")  # no set_basis needed
    bad = {**WAVEPLATE_ANALYZERS, "commands": {"set_waveplates": "WP {arm},{angle}"}}
    problems = _problems(_write(tmp_path, {"scheme": "james16"}, bad))
    assert any(k == "bench.analyzers.commands.set_waveplates" and "allowed placeholders" in m for k, m in problems)
    problems = _problems(_write(tmp_path, None, WAVEPLATE_ANALYZERS))
    assert problems == [("bench.analyzers.commands", problems[0][1])] and "scheme: james16" in problems[0][1]
    neither = {**WAVEPLATE_ANALYZERS, "commands": {"prepare_state": "PREP {state}"}}
    problems = _problems(_write(tmp_path, None, neither))
    assert any("missing command 'set_basis'" in m for _, m in problems), problems
