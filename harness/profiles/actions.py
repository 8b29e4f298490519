"""Actions a profile asks of a bench by command: flashing a build, re-aligning between baseline sessions.

Each is a source-controller command template or a shell command on this machine (exactly one), with a timeout.
A source command may use {build}; a shell command {build} and {profile}. The `sessions` block says how
`qharness baseline measure` separates the sessions of a baseline on a bench: a pause and a re-alignment.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.profiles.checks import placeholders, template_problem
from harness.profiles.messages import custom_error


class StrictModel(BaseModel):
    """A profile block: unknown keys are errors, no coercion, no NaN or infinity."""

    # strict: YAML `yes` must not become 1.0, and `2.4` must not silently become the build "2.4".
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
# Placeholders each form of a command action may use.
PLACEHOLDERS: dict[str, set[str]] = {"command": {"build"}, "shell": {"build", "profile"}}


def template_fields(template: str, *path: str) -> set[str]:
    """The placeholders of a command template; a malformed template is a profile error at `path`."""
    problem = template_problem(template)
    if problem is not None:
        raise custom_error(problem, *path)
    return placeholders(template) or set()


class CommandAction(StrictModel):
    """A source-controller command or a shell command (exactly one), each with its placeholders, and a timeout."""

    # Examples for the error message: (a source command, a shell command).
    examples: ClassVar[tuple[str, str]] = ("FW:LOAD? {build}", "flash.sh {build} {profile}")

    command: str | None = None
    shell: str | None = None
    timeout_s: Positive = 30.0

    @model_validator(mode="after")
    def _one_form(self) -> CommandAction:
        given = [key for key in PLACEHOLDERS if getattr(self, key) is not None]
        if len(given) != 1:
            source, shell = self.examples
            raise custom_error(
                f"needs exactly one of 'command' (a source-controller template, e.g. '{source}') or 'shell' "
                f"(e.g. '{shell}')" + (f"; got both {' and '.join(given)}" if given else "")
            )
        key = given[0]
        extra = template_fields(getattr(self, key), key) - PLACEHOLDERS[key]
        if extra:
            allowed = ", ".join("{" + f + "}" for f in sorted(PLACEHOLDERS[key]))
            raise custom_error(
                f"template {getattr(self, key)!r} uses {', '.join('{' + f + '}' for f in sorted(extra))}; "
                f"allowed placeholders: {allowed}",
                key,
            )
        return self


def _command_field(example: str) -> Any:
    """The `command` field of an action: a source-controller template such as `example`."""
    return Field(
        default=None,
        min_length=1,
        description=f"template sent to the source controller, e.g. '{example}' (a header ending in '?' "
        "is a query whose reply must not start with ERR); placeholder {build}",
    )


def _shell_field(example: str, done: str) -> Any:
    """The `shell` field of an action: a shell command such as `example`, exit 0 meaning `done`."""
    return Field(
        default=None,
        min_length=1,
        description=f"shell command run on this machine, e.g. '{example}' (exit 0 = {done}); "
        "placeholders {build} and {profile} (the profile name); write literal braces as '{{'",
    )


class Flash(CommandAction):
    """How to put a build on the device: a source-controller command or a shell command (exactly one)."""

    command: str | None = _command_field("FW:LOAD? {build}")
    shell: str | None = _shell_field("flash.sh {build} {profile}", "flashed")
    timeout_s: Positive = Field(default=30.0, description="longest a flash may take, s")


class Realign(CommandAction):
    """How to re-align between two baseline sessions: a source-controller command (kind bench) or a shell command."""

    examples: ClassVar[tuple[str, str]] = ("ALIGN:AUTO? {build}", "align.sh {profile}")

    command: str | None = _command_field("ALIGN:AUTO?")
    shell: str | None = _shell_field("align.sh {profile}", "re-aligned")
    timeout_s: Positive = Field(default=600.0, description="longest a re-alignment may take, s")


class Sessions(StrictModel):
    """How `qharness baseline measure` separates a baseline's sessions (its --pause and --realign override these)."""

    pause_s: NonNegative = Field(
        default=0.0, description="wait between two sessions, s (a warm-up, the drift between real runs)"
    )
    realign: Realign | None = Field(default=None, description="re-alignment run between two sessions, before the pause")
