"""`qharness run`: run the regression suites on one or more device profiles."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import DEFAULT_DB, DbOption, app, fail
from harness.cli.child import GRACE_S, ChildResult, run_child
from harness.errors import ExitCode
from harness.profiles import Profile, ProfileError, load_profile
from harness.store import RunStatus, Store, StoreError, StoreURL, check_store, default_store_url, utc_now

InterleaveOption = Annotated[
    bool | None,
    typer.Option(
        "--interleave/--no-interleave",
        help="alternate candidate and baseline in ABBA blocks on one device, flashing between runs "
        "(default: on for a bench profile with firmware.flash)",
        show_default=False,
    ),
]
BlocksOption = Annotated[
    int | None, typer.Option(metavar="N", min=2, help="ABBA blocks of an interleaved run (default 6)")
]


def suites_dir() -> Path:
    """The suites to run: ./test_suites when present, else the copy packaged with harness."""
    local = Path("test_suites")
    if local.is_dir():
        return local
    return Path(str(files("harness") / "test_suites"))


def pytest_command(
    profiles: list[str],
    *,
    build: str | None,
    baseline: str | None,
    db: str | None,
    seed: int,
    budget: str,
    alpha: float,
    summary: str | None,
    strict: bool,
    extra: list[str],
    interleave: bool | None = None,
    interleave_blocks: int | None = None,
) -> list[str]:
    """The pytest command line that `qharness run` executes (interleave None: each profile's default)."""
    cmd = [sys.executable, "-m", "pytest", str(suites_dir()), "-p", "no:cacheprovider", "-q", "--strict-markers"]
    for p in profiles:
        cmd += ["--device-profile", p]
    if build:
        cmd += ["--firmware-build", build]
    if baseline:
        cmd += ["--baseline-build", baseline]
    if db is not None:
        cmd += ["--results-db", db]
    cmd += ["--harness-seed", str(seed), "--budget", budget, "--alpha", str(alpha)]
    if summary:
        cmd += ["--harness-summary", summary]
    if strict:
        cmd.append("--strict")
    if interleave is not None:
        cmd.append("--interleave" if interleave else "--no-interleave")
    if interleave_blocks is not None:
        cmd += ["--interleave-blocks", str(interleave_blocks)]
    return cmd + list(extra)


def _check_profiles(profiles: list[str], build: str | None, interleave: bool | None = None) -> list[str]:
    """Return the profiles' names, or exit 4 on one line if one cannot be loaded, does not know `build`, or cannot
    flash builds when `interleave` is asked for."""
    names = []
    for ref in profiles:
        try:
            loaded = load_profile(ref)
            effective = loaded.effective(build)
        except ProfileError as exc:
            first = exc.problems[0]
            text = str(first) if first.file != "<profile>" else first.message
            named = "" if text.startswith(ref) else f"--profile {ref}: "
            more = len(exc.problems) - 1
            hint = f" (and {more} more; see 'qharness profiles validate {ref}')" if more else ""
            fail("run", f"{named}{text}{hint}")
        problem = _flash_problem(effective) if interleave else None
        if problem is not None:
            fail("run", problem)
        names.append(loaded.name)
    return names


def _flash_problem(profile: Profile) -> str | None:
    """Why --interleave cannot measure `profile` (it cannot flash builds), else None."""
    from harness.interleave import flash_problem  # numpy and the protocols load only when interleaving is asked

    return flash_problem(profile, "--interleave")


def _check_store(db: str) -> StoreURL:
    """Return the results store's location, or exit 4 on one line if it cannot be used (nothing is written)."""
    try:
        return check_store(db)
    except StoreError as exc:
        fail("run", str(exc))


def _runs_outcome(url: StoreURL, since: str) -> str:
    """Mark 'aborted' the runs the ended child left 'running', and say what became of the runs it started."""
    if not url.exists():
        return "nothing was stored"
    try:
        with Store(url) as store:  # opening the store marks the runs of dead processes aborted
            runs = [r for r in store.runs() if r.started_at >= since]
    except (StoreError, sqlite3.Error) as exc:
        return f"the store could not be updated ({exc}); its runs are marked aborted when it is next opened"
    if not runs:
        return "no run was started"
    aborted = [str(r.id) for r in runs if r.status == RunStatus.ABORTED]
    parts = [f"run {r.id} ended {r.status}" for r in runs if r.status != RunStatus.ABORTED]
    if aborted:
        parts.insert(0, f"run{'s' * (len(aborted) > 1)} {', '.join(aborted)} marked aborted, raw records kept")
    return "; ".join(parts)


def _exit_code(result: ChildResult) -> int:
    """The exit status of `qharness run` for the child's end: pytest's own codes pass through."""
    if result.returncode >= 0:
        return result.returncode
    if -result.returncode in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL_ERROR  # killed by another signal (a crash): a bug, not a verdict


def _signal_name(signum: int) -> str:
    """SIGINT for 2, and so on ('signal 40' for a number without a name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _stopped_line(result: ChildResult, outcome: str, report: str | None) -> str:
    """The one line that says why the suites stopped early and what became of the run."""
    if result.signum is not None:
        how = f"interrupted by {_signal_name(result.signum)}"
    else:
        how = f"pytest was ended by {_signal_name(-result.returncode)}"
    killed = f" (pytest did not stop within {GRACE_S:g} s and was killed)" if result.killed else ""
    skipped = "; no report written" if report else ""
    return f"qharness run: {how}{killed}; {outcome}{skipped}"


def _write_report(db: StoreURL, build: str | None, names: list[str], out_dir: str) -> None:
    """Write the report of the run just finished into `out_dir` (a failure is one line, not an exit status)."""
    from harness.report import ReportError, build_report, open_store

    try:
        with open_store(db) as store:
            result = build_report(store, release=build or "latest", out_dir=out_dir, profiles=names)
        typer.echo(f"report: {result.index_html} ({result.verdict})", err=True)
    except ReportError as exc:
        typer.echo(f"qharness run: no report written: {exc}", err=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    profile: Annotated[
        list[str],
        typer.Option("--profile", "-p", metavar="NAME|PATH", help="device profile name or path (repeatable)"),
    ],
    build: Annotated[
        str | None, typer.Option("--build", "--firmware-build", metavar="BUILD", help="build under test")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", "--baseline-build", metavar="BUILD", help="baseline build")
    ] = None,
    db: DbOption = DEFAULT_DB,
    seed: Annotated[
        int, typer.Option("--seed", "--harness-seed", metavar="N", help="seed of the simulated streams")
    ] = 1,
    budget: Annotated[str, typer.Option(metavar="quick|standard|release", help="measurement budget")] = "standard",
    alpha: Annotated[float, typer.Option(metavar="A", help="family-wise false-alarm rate per profile")] = 0.05,
    summary: Annotated[
        str | None, typer.Option("--summary", "--harness-summary", metavar="PATH", help="JSON summary path")
    ] = "reports/summary.json",
    strict: Annotated[bool, typer.Option(help="INCONCLUSIVE fails the run")] = False,
    report: Annotated[
        str | None,
        typer.Option(metavar="DIR", help="after the run, write the HTML/Markdown/JSON report into this directory"),
    ] = None,
    interleave: InterleaveOption = None,
    interleave_blocks: BlocksOption = None,
) -> None:
    """Run the regression suites (./test_suites, else the packaged ones); exit codes follow pytest.

    Options qharness does not know (e.g. -k bell, -x) are passed to pytest.

    The profiles and the results store are checked before any device is touched. SIGINT or SIGTERM stops the
    suites: the run is marked aborted, its raw records are kept, and qharness exits 2.
    """
    names = _check_profiles(profile, build, interleave)
    target = db or default_store_url()
    url = _check_store(target)
    # A server URL (which may hold a password) reaches pytest through the environment, not its command line.
    env = None if url.is_sqlite else {**os.environ, "QHARNESS_DB": target}
    cmd = pytest_command(
        profile,
        build=build,
        baseline=baseline,
        db=str(url.path) if url.is_sqlite else None,
        seed=seed,
        budget=budget,
        alpha=alpha,
        summary=summary,
        strict=strict,
        extra=ctx.args,
        interleave=interleave,
        interleave_blocks=interleave_blocks,
    )
    typer.echo("$ " + " ".join(cmd[2:]), err=True)
    started = utc_now()
    raise typer.Exit(_finish(run_child(cmd, env=env), url, started, build, names, report))


def _finish(
    result: ChildResult, url: StoreURL, started: str, build: str | None, names: list[str], report: str | None
) -> int:
    """Say how an early stop left the runs, or write the report of a finished run; return the exit status."""
    code = _exit_code(result)
    if code in (ExitCode.INTERRUPTED, ExitCode.INTERNAL_ERROR):
        outcome = _runs_outcome(url, started)  # a child that did not finish leaves no run 'running'
        # A stop that pytest reported itself (exit 2 on a collection error) needs no second line; no report of it.
        if result.interrupted or result.returncode < 0:
            typer.echo(_stopped_line(result, outcome, report), err=True)
    elif report and url.exists() and code in (ExitCode.OK, ExitCode.REGRESSION):
        # A usage error (a bench still leased, a bad option) measured nothing: a report would show older runs.
        _write_report(url, build, names, report)
    return code
