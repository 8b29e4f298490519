"""`qharness profiles ...` run as real subprocesses: list, validate (good and malformed profiles), schema, show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.profiles import load_profile

BAD_DIR = Path(__file__).parent / "bad"
BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))
ENTRY = "from harness.cli import main; main()"


def qharness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the qharness command line in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def expectations(path: Path) -> list[str]:
    """The `# expect: FRAGMENT` lines at the top of a malformed profile; the first line must be one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# expect: "), f"{path.name}: first line must be '# expect: <key fragment>'"
    out = []
    for line in lines:
        if not line.startswith("# expect: "):
            break
        out.append(line.removeprefix("# expect: ").strip())
    return out


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:
    """One `profiles validate` over every malformed profile (outside the repo, so only shipped profiles resolve)."""
    cwd = tmp_path_factory.mktemp("validate")
    return qharness("profiles", "validate", *map(str, BAD_FILES), cwd=cwd)


def test_there_are_at_least_25_malformed_profiles() -> None:
    assert len(BAD_FILES) >= 25


def test_validate_rejects_all_malformed_profiles_without_traceback(bad_run: subprocess.CompletedProcess) -> None:
    assert bad_run.returncode == 4, bad_run.stderr
    assert "Traceback" not in bad_run.stderr + bad_run.stdout
    assert bad_run.stdout == ""  # nothing was valid


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_each_malformed_profile_names_the_offending_key(path: Path, bad_run: subprocess.CompletedProcess) -> None:
    lines = [line for line in bad_run.stderr.splitlines() if line.startswith(f"{path}: ")]
    assert lines, f"no problem reported for {path.name}; stderr:\n{bad_run.stderr}"
    text = "\n".join(lines)
    for fragment in expectations(path):
        assert fragment in text, f"{path.name}: expected {fragment!r} in:\n{text}"


def test_validate_accepts_shipped_profiles(tmp_path: Path) -> None:
    run = qharness("profiles", "validate", "aer-reference", "aer-long-haul", "aer-metro-extends", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(": ok (aer") == 3 and run.stderr == ""


def test_list_shows_local_and_shipped_profiles(tmp_path: Path) -> None:
    local = tmp_path / "device_profiles" / "lab-one.yaml"
    local.parent.mkdir()
    local.write_text((BAD_DIR / "negative-loss.yaml").read_text().replace("loss_db: -3.0", "loss_db: 3.0"))
    run = qharness("profiles", "list", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("aer-reference", "aer-long-haul", "aer-metro-extends", "lab-one"):
        assert name in run.stdout
    assert "2.3.0, 2.4.0, 2.5.0-rc1" in run.stdout


def test_schema_is_json_schema(tmp_path: Path) -> None:
    run = qharness("profiles", "schema", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    schema = json.loads(run.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"source", "link", "detectors", "builds", "bench"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_show_prints_effective_profile_and_hash(tmp_path: Path) -> None:
    run = qharness("profiles", "show", "aer-metro-extends", "--build", "2.5.0-rc1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    shown = yaml.safe_load(run.stdout)
    assert shown["firmware"]["build"] == "2.5.0-rc1"
    assert shown["source"]["visibility"] == 0.955
    assert shown["link"] == {"loss_db": 5.0, "depolarizing": 0.0, "dephasing": 0.02, "amplitude_damping": 0.0}
    assert f"# content_hash: sha256:{load_profile('aer-metro-extends').content_hash}" in run.stdout


def test_show_unknown_build_is_one_line_exit_4(tmp_path: Path) -> None:
    run = qharness("profiles", "show", "aer-reference", "--build", "2.6.0", cwd=tmp_path)
    assert run.returncode == 4
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "2.3.0, 2.4.0, 2.5.0-rc1" in lines[0]
