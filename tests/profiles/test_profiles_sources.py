"""The profile schema takes its metric names, code names and tolerance type from harness.metrics, not its own copies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import harness.profiles
from harness.metrics import LOGICAL_PREFIXES, REGISTRY, Tolerance, parse_code
from harness.profiles import Qec, ToleranceSpec, load_profile

# Every name `harness.profiles` exported before it became a package, except the renamed tolerance model.
PUBLIC = (
    "BUDGETS",
    "BUDGET_CAPS",
    "AerOptions",
    "Bench",
    "Detectors",
    "Firmware",
    "Instrument",
    "Link",
    "LoadedProfile",
    "Measurement",
    "Memory",
    "Problem",
    "Profile",
    "ProfileError",
    "Qec",
    "Replay",
    "Source",
    "deep_merge",
    "find_profile",
    "format_key_path",
    "list_profiles",
    "load_profile",
    "load_yaml",
    "profile_json_schema",
)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_are_still_exported(name: str) -> None:
    assert name in harness.profiles.__all__
    assert getattr(harness.profiles, name) is not None


@pytest.mark.parametrize("code", ["surface", "surface_d", "surface_d4", "surface_d1", "Surface_d3", "surface_d3x"])
def test_a_bad_code_is_rejected_with_the_code_parsers_words(code: str) -> None:
    with pytest.raises(ValueError) as parsed:
        parse_code(code)
    with pytest.raises(ValidationError) as validated:
        Qec(codes=[code])
    assert str(parsed.value) in str(validated.value)


def test_every_registered_metric_and_logical_prefix_is_a_tolerance_key() -> None:
    base = load_profile("aer-reference").base.model_dump()
    names = [*REGISTRY, *(p + "surface_d3" for p in LOGICAL_PREFIXES)]
    base["tolerances"] = {name: {"absolute": 0.01} for name in names}
    profile = harness.profiles.Profile.model_validate(base)
    assert list(profile.tolerances) == names
    for prefix in LOGICAL_PREFIXES:
        base["tolerances"] = {prefix: {"absolute": 0.01}}
        with pytest.raises(ValidationError, match="unknown metric"):
            harness.profiles.Profile.model_validate(base)


def test_gate_tolerances_is_the_one_conversion_to_the_gates_type() -> None:
    profile = load_profile("aer-reference").effective()
    gate = profile.gate_tolerances()
    assert set(gate) == set(profile.tolerances)
    for name, spec in profile.tolerances.items():
        assert isinstance(spec, ToleranceSpec)
        assert gate[name] == Tolerance(absolute=spec.absolute or 0.0, relative=spec.relative or 0.0)
