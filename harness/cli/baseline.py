"""`qharness baseline set|show|measure`: mark the baseline or reference build, and measure sessions of a baseline."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from harness.cli.app import DEFAULT_DB, DbOption, command_group, console, fail, open_db
from harness.cli.exits import Interrupted
from harness.errors import ExitCode

baseline_app = command_group("baseline", "Set, show or measure the baseline (and reference) build of each profile.")


def check_profile(command: str, store: Any, profile: str) -> None:
    """Exit 4 unless the store knows `profile`."""
    known = store.profiles()
    if profile not in known:
        fail(command, f"--profile {profile!r} has no runs in {store.path} (known: {', '.join(known) or 'none'})")


def check_build(command: str, store: Any, profile: str, build: str, label: str) -> None:
    """Exit 4 unless the store holds a completed run of `build` of `profile` (`label` names the argument)."""
    if not store.has_build(profile, build):
        builds = sorted({r.build for r in store.runs(profile) if r.status in ("passed", "failed")})
        fail(command, f"{label} {build!r} has no completed run of {profile} (known: {', '.join(builds)})")


@baseline_app.command("set")
def baseline_set(
    profile: Annotated[str, typer.Option("--profile", "-p", help="device profile name as stored")],
    build: Annotated[str, typer.Option("--build", "-b", help="build with a completed run")],
    reference: Annotated[
        bool, typer.Option("--reference", help="pin BUILD as the reference every release is also compared with")
    ] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Make BUILD the baseline of PROFILE, or with --reference its pinned reference (it needs a completed run)."""
    command = "baseline set"
    store = open_db(command, db)
    with store:
        check_profile(command, store, profile)
        check_build(command, store, profile, build, "--build")
        previous = store.reference(profile) if reference else store.baseline(profile)
        (store.set_reference if reference else store.set_baseline)(profile, build)
    was = f" (was {previous})" if previous and previous != build else ""
    print(f"{'reference' if reference else 'baseline'} of {profile}: {build}{was}")


@baseline_app.command("show")
def baseline_show(db: DbOption = DEFAULT_DB) -> None:
    """Table of every profile's baseline build and pinned reference build."""
    store = open_db("baseline show", db)
    with store:
        baselines, references = store.baselines(), store.references()
    table = Table(title="baselines")
    # The reference column only when a reference is pinned: the two-column table stays as scripts know it.
    columns = ("profile", "baseline build", "reference build")[: 3 if references else 2]
    for col in columns:
        table.add_column(col)
    for p in sorted(set(baselines) | set(references)):
        table.add_row(p, baselines.get(p, "-"), *([references.get(p, "-")] if references else []))
    console().print(table if baselines or references else "no baselines set; use `qharness baseline set`")


# -- measure ----------------------------------------------------------------------------------------------


def session_seeds(used: set[int], first: int, k: int) -> list[int]:
    """The first k seeds >= `first` that no stored session of the build has used (a repeat draws the same numbers)."""
    seeds, seed = [], first
    while len(seeds) < k:
        if seed not in used:
            seeds.append(seed)
        seed += 1
    return seeds


def _used_seeds(url: Any, profile: str, build: str, budget: str) -> set[int]:
    """The seeds of the build's completed runs at this budget in the store (none when the store is new)."""
    from harness.store import Store

    if not url.exists():
        return set()
    with Store(url) as store:
        return {r.seed for r in store.runs(profile, build) if r.status.completed and r.budget == budget}


def _mark_session(url: Any, profile: str, build: str, since: str, index: int, total: int) -> None:
    """Record in the provenance of the runs this session started which session of `baseline measure` they are."""
    from harness.store import Store

    with Store(url) as store:
        for run in store.runs(profile, build):
            if run.started_at >= since:
                store.update_provenance(run.id, baseline_measure={"session": index, "sessions": total})


def realign_line(template: str, profile: str, build: str) -> str:
    """The re-alignment command with {build} and {profile} filled in, each quoted for the shell; exit 4 if unusable."""
    try:
        return template.format(build=shlex.quote(build), profile=shlex.quote(profile))
    except (KeyError, IndexError, ValueError) as exc:
        fail("baseline measure", f"--realign {template!r}: only {{build}} and {{profile}} may be filled in ({exc!r})")


def _between(pause_s: float, line: str | None, timeout_s: float) -> None:
    """Run the re-alignment command `line` (exit 1 on its failure) and wait `pause_s` before the next session."""
    if line:
        try:
            done = subprocess.run(line, shell=True, timeout=timeout_s, capture_output=True, text=True, check=False)
        except subprocess.TimeoutExpired:
            fail_measure(f"re-alignment command {line!r} did not finish within {timeout_s:g} s", ExitCode.REGRESSION)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [""])[-1]
            fail_measure(f"re-alignment command {line!r} exited {done.returncode} {why}".rstrip(), ExitCode.REGRESSION)
    if pause_s > 0:
        typer.echo(f"pausing {pause_s:g} s before the next session", err=True)
        time.sleep(pause_s)


def fail_measure(message: str, code: int) -> NoReturn:
    """Print 'qharness baseline measure: MESSAGE' on stderr and exit with `code`."""
    typer.echo(f"qharness baseline measure: {message}", err=True)
    raise typer.Exit(code)


def _run_session(
    ctx: typer.Context,
    url: Any,
    target: str,
    what: tuple[str, str, str],
    seed: int,
    budget: str,
    index: tuple[int, int],
) -> None:
    """Run one session (one `qharness run` of the build against itself) and mark its runs; exit on any failure."""
    from harness.cli.child import run_child
    from harness.cli.run import _exit_code, _runs_outcome, _stopped_line, pytest_command
    from harness.store import utc_now

    profile, name, build = what
    (i, k), stored = index, f"{index[0] - 1} session(s) stored before it"
    # A server URL (which may hold a password) reaches pytest through the environment, not its command line.
    env = None if url.is_sqlite else {**os.environ, "QHARNESS_DB": target}
    db = str(url.path) if url.is_sqlite else None
    cmd = pytest_command(
        [profile],
        build=build,
        baseline=build,
        db=db,
        seed=seed,
        budget=budget,
        alpha=0.05,
        summary=None,
        strict=False,
        extra=ctx.args,
    )
    typer.echo("$ " + " ".join(cmd[2:]), err=True)
    started = utc_now()
    result = run_child(cmd, env=env)
    code = _exit_code(result)
    if code in (ExitCode.INTERRUPTED, ExitCode.INTERNAL_ERROR) and (result.interrupted or result.returncode < 0):
        how = _stopped_line(result, _runs_outcome(url, started), None).removeprefix("qharness run: ")
        fail_measure(f"session {i} of {k}: {how}; {stored}", code)
    if code != ExitCode.OK:
        fail_measure(f"session {i} of {k} ended with exit status {code} (see above); {stored}", code)
    _mark_session(url, name, build, started, i, k)


@baseline_app.command("measure", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def baseline_measure(
    ctx: typer.Context,
    profile: Annotated[str, typer.Option("--profile", "-p", metavar="NAME|PATH", help="device profile")],
    build: Annotated[str, typer.Option("--build", "-b", metavar="BUILD", help="the baseline build to measure")],
    sessions: Annotated[int, typer.Option("--sessions", metavar="K", help="sessions to measure")] = 5,
    db: DbOption = DEFAULT_DB,
    seed: Annotated[int, typer.Option("--seed", "--harness-seed", metavar="N", help="first seed of the sessions")] = 1,
    budget: Annotated[str, typer.Option(metavar="quick|standard|release", help="measurement budget")] = "standard",
    pause: Annotated[float, typer.Option(metavar="S", help="wait S seconds between sessions")] = 0.0,
    realign: Annotated[
        str | None, typer.Option(metavar="CMD", help="shell command run between sessions ({build}, {profile})")
    ] = None,
    realign_timeout: Annotated[float, typer.Option(metavar="S", help="longest the command may take")] = 600.0,
) -> None:
    """Measure K sessions of BUILD and store each (the gate pools them: between-session variance).

    Each session is one `qharness run` of BUILD against itself (nothing is gated), with the next seed that no
    stored session of BUILD used (on a simulated profile the seed draws the session's drift and counts). On a
    bench, --realign and --pause let the source drift, re-align or warm up between sessions as between real runs.
    """
    from harness.cli.run import _check_profiles, _check_store
    from harness.store import default_store_url

    if sessions < 1:
        fail("baseline measure", f"--sessions must be >= 1, got {sessions}")
    if pause < 0 or realign_timeout <= 0:
        fail("baseline measure", "--pause must be >= 0 and --realign-timeout > 0")
    (name,) = _check_profiles([profile], build)
    target = db or default_store_url()
    url = _check_store(target)
    line = realign_line(realign, name, build) if realign else None
    seeds = session_seeds(_used_seeds(url, name, build, budget), seed, sessions)
    for i, s in enumerate(seeds, 1):
        typer.echo(f"session {i}/{sessions} of {build}: seed {s}", err=True)
        _run_session(ctx, url, target, (profile, name, build), s, budget, (i, sessions))
        if i < sessions:
            try:
                _between(pause, line, realign_timeout)
            except Interrupted as exc:
                fail_measure(f"interrupted by {exc.name} after session {i} of {sessions}", ExitCode.INTERRUPTED)
    typer.echo(f"stored {sessions} session(s) of {build} for {name}", err=True)
