"""The CI workflows are valid GitHub workflows and do what the release process relies on."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_workflows_match_the_github_schema():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 3
    result = subprocess.run(
        [exe, "--builtin-schema", "vendor.github-workflows", *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_when_available():
    exe = shutil.which("actionlint")
    if exe is None:
        pytest.skip("actionlint is not installed (no registry package ships its binary for offline install)")
    result = subprocess.run([exe, *map(str, WORKFLOWS.glob("*.yml"))], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


def test_canary_matrix_budget_and_summary():
    wf = _load("canary.yml")
    assert {"push", "pull_request"} <= set(wf[True])  # YAML 1.1 reads the key `on` as True
    job = wf["jobs"]["canary"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "qharness run" in runs and "--budget quick" in runs and "aer-reference" in runs
    assert "GITHUB_STEP_SUMMARY" in runs and "summary.md" in runs
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in job["steps"])


def test_release_runs_on_tags_with_release_budget_and_allure():
    wf = _load("release.yml")
    assert wf[True]["push"]["tags"] == ["v*"]
    runs = "\n".join(step.get("run", "") for step in wf["jobs"]["release-report"]["steps"])
    assert "--budget release" in runs and "qharness report" in runs and "allure@3 generate" in runs


def test_bench_runs_on_self_hosted_bench_with_inputs():
    wf = _load("bench.yml")
    job = wf["jobs"]["bench"]
    assert job["runs-on"] == ["self-hosted", "quantum-bench"]
    assert set(wf[True]["workflow_dispatch"]["inputs"]) == {"profile", "build"}
    assert not job["env"]["QHARNESS_DB"].startswith(("reports", "./"))
