"""Device profiles: the YAML files that say which device to test, its physics per firmware build, and its budgets.

A profile is loaded in three steps: parse the YAML (syntax errors name the line), resolve `extends` by deep-merging
the parent under the child (cycles are named), then validate the merged profile and every build's effective profile
(the `builds."<b>"` override deep-merged over it). Every problem is reported as `file: key.path: message`.

One module per job: `schema` (the pydantic models and the JSON Schema), `yaml_io` (reading YAML with line numbers,
merging), `discovery` (finding a profile by name), `messages` (problems and pydantic errors in the user's words),
`checks` (the cross-key checks, also run on the merged file so every problem is reported), `actions` (command
actions: firmware.flash, the sessions block's re-alignment) and
`loading` (the `extends` chain and per-build validation).
"""

from harness.profiles.actions import Realign, Sessions
from harness.profiles.discovery import find_profile, list_profiles
from harness.profiles.loading import LoadedProfile, load_profile
from harness.profiles.messages import Problem, ProfileError, format_key_path
from harness.profiles.schema import (
    BUDGET_CAPS,
    BUDGETS,
    AerOptions,
    Bench,
    Detectors,
    Firmware,
    Instrument,
    Link,
    Measurement,
    Memory,
    Profile,
    Qec,
    Replay,
    Source,
    ToleranceSpec,
    profile_json_schema,
)
from harness.profiles.yaml_io import deep_merge, load_yaml

__all__ = [
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
    "Realign",
    "Replay",
    "Sessions",
    "Source",
    "ToleranceSpec",
    "deep_merge",
    "find_profile",
    "format_key_path",
    "list_profiles",
    "load_profile",
    "load_yaml",
    "profile_json_schema",
]
