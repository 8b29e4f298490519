"""A newcomer's first minutes: the README's two commands, run verbatim in a fresh virtual environment.

The project is installed non-editable from a clean copy of the repository (the files a commit of the working tree
would carry), so a file missing from the package data, a dependency missing from pyproject.toml or a README command
that drifted from the CLI fails here rather than on a newcomer's machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VERDICTS = {"PASS", "REGRESSION", "IMPROVED", "INCONCLUSIVE", "NO_BASELINE", "ERROR"}
# Whole install and main run; a warm pip cache makes it about a minute, a cold one about two.
MAIN_TIMEOUT_S = 420
COLLECT_TIMEOUT_S = 180
MIN_TESTS = 100
# pip's words for a registry it cannot reach (as opposed to a requirement that does not resolve).
UNREACHABLE = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "NewConnectionError",
    "ConnectTimeoutError",
    "ProxyError",
    "connection broken by",
)


def readme_command(marker: str) -> str:
    """The first command line between <!-- marker --> and <!-- /marker --> in README.md, as .ci/run reads it."""
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", text, re.S)
    assert m is not None, f"README.md has no <!-- {marker} --> ... <!-- /{marker} --> block"
    lines = [ln for ln in m.group(1).splitlines() if ln.strip() and not ln.startswith(("<!--", "```"))]
    assert lines, f"README.md's {marker} block holds no command"
    return lines[0].strip()


def repo_files() -> list[str]:
    """Paths (relative to the repository) of the tracked and the new, not ignored files of the working tree."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({p.decode() for p in out.split(b"\0") if p})


def clean_copy(dest: Path) -> Path:
    """Copy the working tree's committable files (symlinks kept as links) to `dest`; return `dest`."""
    for rel in repo_files():
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree: a commit would not carry it
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
    return dest


def venv_env(env_dir: Path) -> dict[str, str]:
    """The environment of a shell in the activated venv: its bin first on PATH, no outer Python or pytest state."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PYTHON", "COV_")) and k not in ("VIRTUAL_ENV", "CONDA_PREFIX")
    }
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_shell(command: str, cwd: Path, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run one command line with bash in `cwd`; stdout and stderr together in `.stdout`."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.splitlines()[-lines:])


@pytest.mark.slow
def test_readme_commands_work_in_a_fresh_venv(tmp_path: Path) -> None:
    """The main command installs, runs and reports from a clean copy; the test command collects the tests."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the repository to know which files a clean copy holds")
    main_cmd = readme_command("main-command")
    test_cmd = readme_command("test-command")
    assert main_cmd.startswith("pip install "), f"unexpected main command: {main_cmd}"

    project = clean_copy(tmp_path / "qharness")
    assert (project / "pyproject.toml").is_file() and not (project / "reports" / "qharness.db").exists()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    env = venv_env(env_dir)
    python = env_dir / "bin" / "python"

    t0 = time.monotonic()
    main = run_shell(main_cmd, project, env, MAIN_TIMEOUT_S)
    main_s = time.monotonic() - t0
    if main.returncode not in (0, 1) and any(s in main.stdout for s in UNREACHABLE):
        pytest.skip(f"the package registry is unreachable, so nothing can be installed:\n{tail(main.stdout, 10)}")
    assert main.returncode in (0, 1), (
        f"{main_cmd!r} exited {main.returncode} after {main_s:.0f} s (0 or 1 is a verdict; anything else is a "
        f"crash):\n{tail(main.stdout)}"
    )

    # Installed as a package (not a path into the copy), and without the system's site-packages.
    where = subprocess.run(
        [str(python), "-c", "import harness; print(harness.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert Path(where[0]).resolve().is_relative_to(env_dir.resolve()), f"harness imported from {where[0]}"
    assert (env_dir / "pyvenv.cfg").read_text().count("include-system-site-packages = false") == 1

    summary_path = project / "reports" / "summary.json"
    assert summary_path.is_file(), f"no reports/summary.json after {main_cmd!r}:\n{tail(main.stdout)}"
    summary = json.loads(summary_path.read_text())
    runs = summary if isinstance(summary, list) else [summary]
    verdicts = {run["verdict"] for run in runs}
    assert verdicts <= VERDICTS, verdicts
    # Exit status and verdict agree: 1 exactly when something regressed or errored.
    assert (main.returncode == 1) == bool(verdicts & {"REGRESSION", "ERROR"}), (main.returncode, verdicts)
    assert any(v in main.stdout for v in verdicts), "the verdict is not printed"
    index = project / "reports" / "latest" / "index.html"
    assert index.is_file() and index.stat().st_size > 1000, f"no report at {index}:\n{tail(main.stdout)}"
    assert "<html" in index.read_text(encoding="utf-8").lower()

    collect_cmd = f"{test_cmd} --collect-only -q"
    collect = run_shell(collect_cmd, project, env, COLLECT_TIMEOUT_S)
    assert collect.returncode == 0, f"{collect_cmd!r} exited {collect.returncode}:\n{tail(collect.stdout)}"
    m = re.search(r"(\d+) tests? collected", collect.stdout)
    assert m is not None, f"no 'N tests collected' line:\n{tail(collect.stdout)}"
    assert int(m.group(1)) > MIN_TESTS, f"only {m.group(1)} tests collected:\n{tail(collect.stdout)}"
    print(f"main command {main_s:.0f} s, exit {main.returncode}, verdicts {sorted(verdicts)}; {m.group(1)} tests")
