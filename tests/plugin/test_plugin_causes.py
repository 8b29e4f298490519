"""One line per cause: the first test that meets a device failure errors with it, later tests skip naming that test."""

from __future__ import annotations

import json

import pytest
from suite_facts import SUITES

CAUSE = "analyzers: PREP H timed out after 3 retries"
# Only the link tomography of the Aer stand-in fails: a protocol-level device fault, the Bell tomography still works.
FAULT_PLUGIN = f"""
from harness.devices.aer import AerDevice
from harness.errors import DeviceError


def _timed_out(self, *args, **kwargs):
    raise DeviceError({CAUSE!r})


AerDevice.link_tomography = _timed_out
"""
LINK_TESTS = 4  # link_process_fidelity and the three capacities


def test_a_protocol_fault_errors_its_first_test_once_and_skips_the_rest(pytester: pytest.Pytester):
    # A plugin module, not a conftest: the suites live outside this directory (`python -m` puts it on the path).
    pytester.makepyfile(fault_plugin=FAULT_PLUGIN)
    summary = pytester.path / "summary.json"
    result = pytester.runpytest_subprocess(
        SUITES,
        "-p",
        "no:cacheprovider",
        "-p",
        "fault_plugin",
        "-rs",
        "-k",
        "capacity or link_process or bell_state",
        "--device-profile",
        "aer-reference",
        "--budget",
        "quick",
        "--results-db",
        str(pytester.path / "q.db"),
        "--harness-summary",
        str(summary),
    )
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out  # an ERROR is not a pass
    result.assert_outcomes(passed=5, errors=1, skipped=LINK_TESTS - 1)
    assert "Traceback" not in out
    # The cause is printed by the erroring test and by the table's cause line, never per test.
    assert [line for line in out.splitlines() if CAUSE in line] == [CAUSE, f"ERROR ({LINK_TESTS} metrics): {CAUSE}"]
    (first,) = (line.split("ERROR at setup of ")[1].strip(" _") for line in out.splitlines() if "at setup of" in line)
    # pytest folds the skips of one test function into one line: "SKIPPED [2] file.py:13: same cause as ...".
    skips = [line for line in out.splitlines() if "same cause as" in line]
    assert all(line.startswith("SKIPPED [") and line.endswith(f"::{first}") for line in skips), skips
    assert sum(int(line.split("[")[1].split("]")[0]) for line in skips) == LINK_TESTS - 1
    data = json.loads(summary.read_text())
    link = [m for m in data["metrics"] if m["verdict"] == "ERROR"]
    assert len(link) == LINK_TESTS and {m["error"] for m in link} == {CAUSE}
    assert all(m["value"] is None and m["n"] == 0 and m["unit"] for m in link if m["name"].startswith("capacity"))
    assert data["verdict"] == "ERROR" and data["headline"] == "build 2.4.0 vs 2.3.0: ERROR"


def test_a_cause_is_met_once_per_profile(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest
        from harness.pytest_plugin.verdict import meet_cause

        CAUSES = {}

        @pytest.mark.parametrize("profile", ["lab-1", "lab-1", "lab-2"], ids=["first", "second", "other-bench"])
        def test_instrument(request, profile):
            meet_cause(CAUSES, profile, "counter: COUN:COIN? timed out", request.node.nodeid)
        """
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["*SKIPPED*same cause as test_a_cause_is_met_once_per_profile.py::test_instrument[[]first[]]"]
    )
    assert result.stdout.str().count("Traceback") == 0
