"""Loading, merging, hashing and finding device profiles (the library API)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from harness.metrics import REGISTRY, metric_spec
from harness.physics.link import rates
from harness.profiles import (
    BUDGET_CAPS,
    BUDGETS,
    Instrument,
    Profile,
    ProfileError,
    ToleranceSpec,
    find_profile,
    format_key_path,
    list_profiles,
    load_profile,
    load_yaml,
    profile_json_schema,
)

SHIPPED = ("aer-reference", "aer-long-haul", "aer-metro-extends")

MINIMAL = """\
name: {name}
kind: aer
firmware:
  build: "2.4.0"
  baseline: "2.3.0"
source:
  pair_rate_hz: 2.0e6
  visibility: 0.97
link:
  loss_db: 3.0
  dephasing: 0.01
detectors:
  efficiency_a: 0.8
  efficiency_b: 0.8
  coincidence_window_s: 1e-9
qec:
  codes: [surface_d3, surface_d5]
builds:
  "2.3.0": {{}}
  "2.4.0": {{link: {{dephasing: 0.02}}}}
  "2.5.0-rc1": {{source: {{visibility: 0.955}}, qec: {{codes: [surface_d3]}}}}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_and_every_build_validates(name: str) -> None:
    loaded = load_profile(name)
    assert loaded.name == name
    assert loaded.builds == ["2.3.0", "2.4.0", "2.5.0-rc1"]
    assert loaded.default_build == "2.4.0" and loaded.default_baseline == "2.3.0"
    for build in loaded.builds:
        profile = loaded.effective(build)
        assert isinstance(profile, Profile)
        assert profile.firmware.build == build
    assert loaded.effective() == loaded.effective("2.4.0")


def test_aer_reference_builds_physics() -> None:
    loaded = load_profile("aer-reference")
    old, new, rc = (loaded.effective(b) for b in ("2.3.0", "2.4.0", "2.5.0-rc1"))
    strip = {"firmware"}
    assert old.model_dump(exclude=strip) == new.model_dump(exclude=strip)
    assert rc.source.visibility == 0.955
    assert rc.model_dump(exclude={"firmware", "source"}) == new.model_dump(exclude={"firmware", "source"})


def test_aer_reference_standard_budget_gives_about_30k_coincidences_per_setting() -> None:
    p = load_profile("aer-reference").effective()
    r = rates(
        p.source.pair_rate_hz,
        p.detectors.efficiency_a,
        p.detectors.efficiency_b,
        p.link.loss_db,
        p.detectors.dark_count_hz_a,
        p.detectors.dark_count_hz_b,
        p.detectors.coincidence_window_s,
    )
    per_setting = r.coincidence_hz * p.measurement.integration_time_s * BUDGETS["standard"]
    assert 25_000 <= per_setting <= 35_000


def test_aer_long_haul_has_noticeable_accidentals() -> None:
    p = load_profile("aer-long-haul").effective()
    assert p.link.loss_db == 25.0
    r = rates(
        p.source.pair_rate_hz,
        p.detectors.efficiency_a,
        p.detectors.efficiency_b,
        p.link.loss_db,
        p.detectors.dark_count_hz_a,
        p.detectors.dark_count_hz_b,
        p.detectors.coincidence_window_s,
    )
    car = r.true_coincidence_hz / r.accidental_hz
    assert 10 <= car <= 100
    # enough coincidences per setting at the standard budget for a meaningful tomography
    assert r.coincidence_hz * p.measurement.integration_time_s >= 10_000


@pytest.mark.parametrize("name", ["aer-reference", "aer-long-haul"])
def test_tolerances_cover_every_reported_metric(name: str) -> None:
    p = load_profile(name).effective()
    expected = {m for m in REGISTRY if not metric_spec(m).informational}
    for code in p.qec.codes:
        expected |= {f"logical_success_{code}", f"logical_error_per_round_{code}"}
    assert expected <= set(p.tolerances)
    # Host wall-clock times are never gated: a tolerance for them would be dead configuration.
    assert not {f"decode_time_us_{code}" for code in p.qec.codes} & set(p.tolerances)
    assert "capacity_chi_bits" not in p.tolerances  # informational (a biased estimator), never gated
    for metric in ("pair_rate_hz", "ebit_rate_hz", "secret_key_rate_bps", "car"):
        assert p.tolerances[metric].relative is not None and p.tolerances[metric].absolute is None
    if name == "aer-reference":
        assert p.tolerances["bell_fidelity"] == ToleranceSpec(absolute=0.0036)  # from `qharness plan`


def test_extends_inherits_and_overrides() -> None:
    child = load_profile("aer-metro-extends")
    parent = load_profile("aer-reference")
    assert child.parents == [find_profile("aer-reference")]
    assert "extends" not in child.raw
    c, p = child.effective(), parent.effective()
    assert (c.link.loss_db, c.link.dephasing) == (5.0, 0.02)
    assert c.link.depolarizing == p.link.depolarizing  # deep merge keeps the parent's untouched keys
    assert c.detectors == p.detectors and c.tolerances == p.tolerances
    assert child.effective("2.5.0-rc1").source.visibility == 0.955
    assert child.content_hash != parent.content_hash


def test_per_build_override_deep_merges(tmp_path: Path) -> None:
    loaded = load_profile(write(tmp_path / "merge.yaml", MINIMAL.format(name="merge")))
    base = loaded.effective("2.3.0")
    b24 = loaded.effective("2.4.0")
    rc = loaded.effective("2.5.0-rc1")
    assert base.link.dephasing == 0.01 and b24.link.dephasing == 0.02
    assert b24.link.loss_db == 3.0  # sibling key of the override survives
    assert rc.source.visibility == 0.955 and rc.source.pair_rate_hz == 2.0e6
    assert rc.qec.codes == ["surface_d3"]  # lists are replaced, not merged
    assert base.qec.codes == ["surface_d3", "surface_d5"]
    assert base.detectors.coincidence_window_s == 1e-9  # YAML 1.2 float without a dot
    assert loaded.raw["builds"]["2.4.0"] == {"link": {"dephasing": 0.02}}  # raw is before builds


def test_unknown_build_lists_known_ones_for_aer(tmp_path: Path) -> None:
    loaded = load_profile(write(tmp_path / "b.yaml", MINIMAL.format(name="b")))
    with pytest.raises(ProfileError) as info:
        loaded.effective("2.6.0")
    message = str(info.value)
    assert "'2.6.0'" in message and "2.3.0, 2.4.0, 2.5.0-rc1" in message


def test_bench_accepts_any_build_and_applies_listed_overrides(tmp_path: Path) -> None:
    text = """\
name: bench-x
kind: bench
firmware: {build: "2.4.0"}
bench:
  source: {transport: serial, url: "loop://", commands: {identify: "*IDN?", firmware_build: "FW?", enable: "ON",
           disable: "OFF"}}
  counter: {transport: visa, resource: "TCPIP0::127.0.0.1::5025::SOCKET", commands: {set_integration: "T {seconds}",
            coincidences: "C?", singles: "S? {channel}", errors: "E?"}}
  analyzers: {transport: visa, resource: "TCPIP0::127.0.0.1::5025::SOCKET", commands: {set_basis: "B {arm},{basis}"}}
builds:
  "2.4.0": {bench: {timeout_s: 5.0}}
"""
    loaded = load_profile(write(tmp_path / "bench-x.yaml", text))
    assert loaded.effective("9.9.9-dev").firmware.build == "9.9.9-dev"
    assert loaded.effective("9.9.9-dev").bench.timeout_s == 2.0
    assert loaded.effective("2.4.0").bench.timeout_s == 5.0
    assert loaded.effective().bench.counter.backend == "@py"
    assert loaded.effective().bench.source.baudrate == 115200


def test_extends_cycle_is_named(tmp_path: Path) -> None:
    a = MINIMAL.format(name="a").replace("kind: aer", "kind: aer\nextends: b.yaml")
    b = MINIMAL.format(name="b").replace("kind: aer", "kind: aer\nextends: a.yaml")
    write(tmp_path / "b.yaml", b)
    with pytest.raises(ProfileError, match=r"extends cycle: a -> b -> a"):
        load_profile(write(tmp_path / "a.yaml", a))


def test_extends_by_name_uses_lookup_and_child_must_name_itself(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "device_profiles" / "parent.yaml", MINIMAL.format(name="parent"))
    child = write(tmp_path / "child.yaml", "name: child\nextends: parent\nsource: {visibility: 0.9}\n")
    loaded = load_profile(child)
    assert loaded.name == "child" and loaded.effective().source.visibility == 0.9
    assert loaded.effective().source.pair_rate_hz == 2.0e6
    nameless = write(tmp_path / "nameless.yaml", "extends: parent\n")
    with pytest.raises(ProfileError, match=r"name: required key is missing"):
        load_profile(nameless)


def test_content_hash_stable_under_reordering_and_whitespace(tmp_path: Path) -> None:
    text = MINIMAL.format(name="h")
    data = load_yaml(write(tmp_path / "h.yaml", text))
    reordered = dict(reversed(list(data.items())))
    reordered["source"] = dict(reversed(list(data["source"].items())))
    one = load_profile(write(tmp_path / "one" / "h.yaml", text))
    two = load_profile(write(tmp_path / "two" / "h.yaml", "# a comment\n\n" + yaml.safe_dump(reordered, indent=4)))
    assert one.content_hash == two.content_hash
    canonical = json.dumps(one.raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert one.content_hash == hashlib.sha256(canonical.encode()).hexdigest()
    changed = load_profile(write(tmp_path / "three" / "h.yaml", text.replace("visibility: 0.97", "visibility: 0.96")))
    assert changed.content_hash != one.content_hash


def test_lookup_prefers_cwd_device_profiles(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    packaged = find_profile("aer-reference")
    assert packaged.parent.name == "device_profiles" and packaged.is_file()
    local = write(
        tmp_path / "device_profiles" / "aer-reference.yaml",
        MINIMAL.format(name="aer-reference").replace("kind: aer", 'kind: aer\ndescription: "local copy"'),
    )
    assert find_profile("aer-reference") == local
    assert load_profile("aer-reference").path == local
    listed = {name: (path, desc) for name, path, desc in list_profiles()}
    assert listed["aer-reference"] == (local, "local copy")
    assert [n for n, _, _ in list_profiles()].count("aer-reference") == 1
    assert listed["aer-long-haul"][0].parent == packaged.parent


def test_local_profile_can_refine_the_shipped_one_of_the_same_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = find_profile("aer-reference")
    text = "name: aer-reference\nextends: aer-reference\nlink: {loss_db: 4.0}\n"
    local = write(tmp_path / "device_profiles" / "aer-reference.yaml", text)
    loaded = load_profile("aer-reference")
    assert loaded.path == local and loaded.parents == [shipped]
    assert loaded.effective().link.loss_db == 4.0 and loaded.effective().source.visibility == 0.97


def test_find_profile_paths_and_unknown_names(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nowhere.yaml"
    assert find_profile(str(missing)) == missing
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(missing)
    with pytest.raises(ProfileError, match="did you mean 'aer-reference'"):
        find_profile("aer-refrence")


def test_replay_cassette_is_relative_to_the_profile_file(tmp_path: Path) -> None:
    text = 'name: rp\nkind: replay\nfirmware: {build: "2.4.0"}\nreplay: {cassette: tapes/run.jsonl}\n'
    loaded = load_profile(write(tmp_path / "sub" / "rp.yaml", text))
    assert Path(loaded.effective().replay.cassette) == (tmp_path / "sub" / "tapes" / "run.jsonl").resolve()


def test_errors_name_file_key_value_and_allowed_range(tmp_path: Path) -> None:
    bad = MINIMAL.format(name="e").replace(
        '"2.5.0-rc1": {source: {visibility: 0.955}', '"2.5.0-rc1": {source: {visibility: 1.5}'
    )
    path = write(tmp_path / "e.yaml", bad)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    (problem,) = info.value.problems
    assert problem.file == str(path)
    assert problem.key == 'builds."2.5.0-rc1".source.visibility'
    assert "1.5" in problem.message and "[0, 1]" in problem.message
    assert problem.line == 21


def _problems_of(path: Path) -> list[tuple[str, str]]:
    """The (key, message) of every problem load_profile reports for a file, checking each reads file: key: message."""
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    for problem in info.value.problems:
        assert str(problem).startswith(f"{path}: {problem.key}: {problem.message}"), str(problem)
    return [(p.key, p.message) for p in info.value.problems]


def test_a_missing_block_and_a_bad_key_are_both_reported_in_their_own_words(tmp_path: Path) -> None:
    """pydantic skips a model's cross-key checks when a field fails; the loader reports both, each once.

    Each message is the one the problem gets when it is the only one in the file.
    """
    good = MINIMAL.format(name="x")
    no_detectors = good.split("detectors:")[0] + "qec:" + good.split("qec:", 1)[1]
    typo = "measurement:\n  integration_tim_s: 0.05\n"
    block_alone = _problems_of(write(tmp_path / "block.yaml", no_detectors))
    typo_alone = _problems_of(write(tmp_path / "typo.yaml", good + typo))
    both = _problems_of(write(tmp_path / "both.yaml", no_detectors + typo))
    assert block_alone == [("detectors", "kind aer requires a 'detectors' block")]
    assert [k for k, _ in typo_alone] == ["measurement.integration_tim_s"]
    assert both == typo_alone + block_alone
    # Two missing blocks are two problems, though the model alone names only the first.
    no_source = no_detectors.replace("source:\n  pair_rate_hz: 2.0e6\n  visibility: 0.97\n", "")
    no_source = no_source.replace('"2.5.0-rc1": {source: {visibility: 0.955}, ', '"2.5.0-rc1": {')
    assert _problems_of(write(tmp_path / "two.yaml", no_source + typo)) == [
        *typo_alone,
        ("source", "kind aer requires a 'source' block"),
        ("detectors", "kind aer requires a 'detectors' block"),
    ]
    with pytest.raises(ValueError, match="kind aer requires a 'source' block"):
        Profile.model_validate(yaml.safe_load(no_source))


def test_a_bad_bench_field_does_not_hide_the_bench_command_problems(tmp_path: Path) -> None:
    bench = {
        "name": "b",
        "kind": "bench",
        "firmware": {"build": "1.0"},
        "bench": {
            "timeout_s": 0,
            "source": {"transport": "serial", "url": "socket://127.0.0.1:1", "commands": {"identify": "*IDN?"}},
            "counter": {"transport": "visa", "resource": "TCPIP0::h::1::SOCKET", "commands": {"errors": "E {x}"}},
            "analyzers": {"transport": "serial", "commands": {"set_basis": "B {arm},{basis"}},
        },
    }
    got = dict(_problems_of(write(tmp_path / "b.yaml", yaml.safe_dump(bench))))
    assert list(got) == [
        "bench.timeout_s",
        "bench.analyzers.url",
        "bench.analyzers.commands.set_basis",
        "bench.source.commands",
        "bench.counter.commands",
        "bench.counter.commands.errors",
    ]
    assert got["bench.analyzers.url"] == "a serial instrument needs 'url' (a pyserial URL or device path)"
    assert got["bench.source.commands"].startswith("missing command 'firmware_build'; the source needs: ")
    assert got["bench.counter.commands"].startswith("missing command 'set_integration'; the counter needs: ")
    assert got["bench.counter.commands.errors"] == "template 'E {x}' uses x; allowed placeholders: none"


def test_key_path_formatting() -> None:
    assert format_key_path(("builds", "2.5.0-rc1", "source", "visibility")) == 'builds."2.5.0-rc1".source.visibility'
    assert format_key_path(("qec", "codes", 2)) == "qec.codes[2]"


def test_models_forbid_extra_keys_and_check_addresses() -> None:
    with pytest.raises(ValueError, match="url"):
        Instrument(transport="serial")
    with pytest.raises(ValueError, match="Extra inputs"):
        Instrument(transport="visa", resource="TCPIP0::h::1::SOCKET", port=1)
    with pytest.raises(ValueError, match="absolute"):
        ToleranceSpec()


def test_json_schema_accepts_shipped_profiles_and_rejects_a_typo() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = profile_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    for name in SHIPPED:
        jsonschema.validate(load_yaml(find_profile(name)), schema)
    data = load_yaml(find_profile("aer-reference"))
    data["source"]["visibilty"] = data["source"].pop("visibility")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)
    # Only a profile without `extends` must carry kind and firmware itself.
    with pytest.raises(jsonschema.ValidationError, match="firmware"):
        jsonschema.validate({"name": "x", "kind": "aer"}, schema)
    jsonschema.validate({"name": "x", "extends": "aer-reference", "source": {"visibility": 0.9}}, schema)


def test_budget_constants() -> None:
    assert BUDGETS == {"quick": 0.25, "standard": 1.0, "release": 4.0}
    assert BUDGET_CAPS == {"quick": 4.0, "standard": 4.0, "release": 8.0}  # quick reaches the standard base
