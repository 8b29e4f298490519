"""`qharness baseline set|show|measure`: mark the baseline or reference build, and measure sessions of a baseline."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from harness.cli.app import DEFAULT_DB, DbOption, command_group, console, fail, open_db
from harness.cli.exits import Interrupted
from harness.errors import ExitCode

DEFAULT_REALIGN_TIMEOUT_S = 600.0
# The re-alignment's name among the source's command templates (a dot keeps it clear of user names).
REALIGN_COMMAND = "sessions.realign"
# An error reply of a source controller: "ERR ...", "ERROR ..." or a negative SCPI code.
ERROR_REPLY = re.compile(r"^\s*(ERR|ERROR\b|-\d+\s*,)", re.IGNORECASE)

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


@dataclass(frozen=True)
class Separation:
    """What happens between two sessions: a re-alignment (a shell line or a source command) and then a pause."""

    pause_s: float = 0.0
    shell: str | None = None
    command: str | None = None  # a source-controller template ({build}), sent on the bench's source line
    timeout_s: float = DEFAULT_REALIGN_TIMEOUT_S
    bench: Any = None  # the Bench block the command goes to
    origin: str = "--realign"  # where the re-alignment came from, for its messages

    def what(self, line: str) -> str:
        """The re-alignment as messages name it: its line, and the profile key when the profile gave it."""
        return f"re-alignment command {line!r}" + ("" if self.origin == "--realign" else f" ({self.origin})")


def separation(
    profile: Any, name: str, build: str, pause: float | None, realign: str | None, timeout: float | None
) -> Separation:
    """The separation of sessions: the options where given, else the profile's `sessions` block, else none."""
    block = profile.sessions
    pause_s = pause if pause is not None else (block.pause_s if block is not None else 0.0)
    if realign is not None:
        line = realign_line(realign, name, build)
        return Separation(pause_s, shell=line, timeout_s=timeout or DEFAULT_REALIGN_TIMEOUT_S)
    action = block.realign if block is not None else None
    if action is None:
        return Separation(pause_s)
    origin, wait = "sessions.realign", timeout or action.timeout_s
    if action.shell is not None:
        return Separation(pause_s, shell=realign_line(action.shell, name, build), timeout_s=wait, origin=origin)
    return Separation(pause_s, command=action.command, timeout_s=wait, bench=profile.bench, origin=origin)


def _realign_shell(sep: Separation) -> None:
    """Run the re-alignment shell line; exit 1 with one line when it fails or outlives its timeout."""
    line, what = str(sep.shell), sep.what(str(sep.shell))
    try:
        done = subprocess.run(line, shell=True, timeout=sep.timeout_s, capture_output=True, text=True, check=False)
    except subprocess.TimeoutExpired:
        fail_measure(f"{what} did not finish within {sep.timeout_s:g} s", ExitCode.REGRESSION)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [""])[-1]
        fail_measure(f"{what} exited {done.returncode} {why}".rstrip(), ExitCode.REGRESSION)


def realign_source(sep: Separation, build: str) -> None:
    """Send the re-alignment command on the bench's source line (a query when its header ends in '?', whose reply
    must not be an error; a write is followed by `identify`); exit 1 on one line when the source is unreachable,
    silent or refuses."""
    from harness.devices.flash import patient
    from harness.instruments import Instrument, InstrumentError, InstrumentSpec

    spec = InstrumentSpec.from_bench(sep.bench, "source")
    block = spec.block.model_copy(update={"commands": {**spec.block.commands, REALIGN_COMMAND: sep.command}})
    source = Instrument("source", replace(spec, block=block))
    line = source.render(REALIGN_COMMAND, build=build)
    try:
        source.open()
        with patient(source, sep.timeout_s):
            if line.split(" ", 1)[0].endswith("?"):
                reply = source.query(REALIGN_COMMAND, build=build).strip()
                if ERROR_REPLY.match(reply):
                    fail_measure(f"{sep.what(line)} was refused: {reply!r}", ExitCode.REGRESSION)
            else:
                source.write(REALIGN_COMMAND, build=build)
                # A write has no reply: the identify reply that follows it on the line says it was read.
                source.query("identify")
    except InstrumentError as exc:
        fail_measure(f"{sep.what(line)} failed: {exc}", ExitCode.REGRESSION)
    finally:
        source.close()


def _between(sep: Separation, build: str) -> None:
    """Re-align as `sep` says (exit 1 on its failure), then wait its pause before the next session."""
    if sep.shell:
        _realign_shell(sep)
    elif sep.command:
        realign_source(sep, build)
    if sep.pause_s > 0:
        typer.echo(f"pausing {sep.pause_s:g} s before the next session", err=True)
        time.sleep(sep.pause_s)


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
    pause: Annotated[
        float | None, typer.Option(metavar="S", help="wait S seconds between sessions (default: sessions.pause_s)")
    ] = None,
    realign: Annotated[
        str | None,
        typer.Option(
            metavar="CMD", help="shell command run between sessions ({build}, {profile}; default: sessions.realign)"
        ),
    ] = None,
    realign_timeout: Annotated[
        float | None, typer.Option(metavar="S", help="longest the command may take (default: the profile's, or 600)")
    ] = None,
) -> None:
    """Measure K sessions of BUILD and store each (the gate pools them: between-session variance).

    Each session is one `qharness run` of BUILD against itself (nothing is gated), with the next seed that no
    stored session of BUILD used (on a simulated profile the seed draws the session's drift and counts). On a
    bench, --realign and --pause let the source drift, re-align or warm up between sessions as between real runs;
    without them the profile's `sessions` block says (pause_s, realign: a shell or source-controller command).
    """
    from harness.cli.run import _check_profiles, _check_store
    from harness.profiles import load_profile
    from harness.store import default_store_url

    if sessions < 1:
        fail("baseline measure", f"--sessions must be >= 1, got {sessions}")
    if (pause is not None and pause < 0) or (realign_timeout is not None and realign_timeout <= 0):
        fail("baseline measure", "--pause must be >= 0 and --realign-timeout > 0")
    (name,) = _check_profiles([profile], build)
    target = db or default_store_url()
    url = _check_store(target)
    effective = load_profile(profile).effective(build)  # loaded and checked just above
    sep = separation(effective, name, build, pause, realign, realign_timeout)
    seeds = session_seeds(_used_seeds(url, name, build, budget), seed, sessions)
    for i, s in enumerate(seeds, 1):
        typer.echo(f"session {i}/{sessions} of {build}: seed {s}", err=True)
        _run_session(ctx, url, target, (profile, name, build), s, budget, (i, sessions))
        if i < sessions:
            try:
                _between(sep, build)
            except Interrupted as exc:
                fail_measure(f"interrupted by {exc.name} after session {i} of {sessions}", ExitCode.INTERRUPTED)
    typer.echo(f"stored {sessions} session(s) of {build} for {name}", err=True)
