"""`qharness profiles` commands: list, validate, schema, show."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from rich.table import Table

from harness.cli.app import command_group, console, usage_exit
from harness.profiles import ProfileError, list_profiles, load_profile, profile_json_schema

profiles_app = command_group("profiles", "List, validate, show and describe device profiles.")


@profiles_app.command("list")
def list_command() -> None:
    """Table of the profiles in ./device_profiles and the shipped ones: name, kind, builds, path."""
    table = Table(title="device profiles")
    for column in ("name", "kind", "builds", "description", "path"):
        table.add_column(column, overflow="fold")
    for name, path, description in list_profiles():
        try:
            loaded = load_profile(path)
            kind, builds = loaded.kind, ", ".join(loaded.builds)
        except ProfileError as exc:
            kind, builds = "[red]invalid[/red]", f"{len(exc.problems)} problem(s): run 'qharness profiles validate'"
        table.add_row(name, kind, builds, description, str(path))
    console().print(table)


@profiles_app.command("validate")
def validate_command(
    paths: list[str] = typer.Argument(..., help="profile files (or names) to check"),
) -> None:
    """Check profiles: exit 0 if all are valid, else 4 with one 'PATH: key.path: message' line per problem."""
    problems: list[str] = []
    for target in paths:
        try:
            loaded = load_profile(target)
        except ProfileError as exc:
            # A name lookup failure names the argument, not a file, so print it as given.
            problems += [str(p) if p.file != "<profile>" else f"{target}: {p.message}" for p in exc.problems]
            continue
        except Exception as exc:  # never a traceback for a profile, whatever is wrong with it
            problems.append(f"{target}: cannot be checked: {type(exc).__name__}: {exc}")
            continue
        print(f"{target}: ok ({loaded.kind}, builds {', '.join(loaded.builds)}, sha256 {loaded.content_hash[:12]})")
    if problems:
        usage_exit(*problems)


@profiles_app.command("schema")
def schema_command(
    fmt: str = typer.Option("json", "--format", help="json (for editors) or markdown (the reference docs)"),
) -> None:
    """Print the JSON Schema of a profile file on stdout (for editors and check-jsonschema)."""
    if fmt == "markdown":
        from harness.schema_doc import schema_markdown

        print(schema_markdown(), end="")
    elif fmt == "json":
        print(json.dumps(profile_json_schema(), indent=2))
    else:
        usage_exit(f"--format must be json or markdown, got {fmt!r}")


@profiles_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="profile name or path"),
    build: str | None = typer.Option(None, "--build", "-b", help="firmware build (default: the profile's build)"),
) -> None:
    """Print the merged, effective profile of one build as YAML, with its content hash."""
    try:
        loaded = load_profile(name)
        profile = loaded.effective(build)
    except ProfileError as exc:
        usage_exit(*(str(p) for p in exc.problems))
    data = profile.model_dump(mode="json", exclude={"builds", "extends"})
    print(f"# profile: {loaded.name} ({Path(loaded.path)})")
    for parent in loaded.parents:
        print(f"# extends: {parent}")
    print(f"# build: {profile.firmware.build}")
    print(f"# content_hash: sha256:{loaded.content_hash}")
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True), end="")
