"""Driver plugins named by a profile (`transport: python`): finding the class, checking the methods it implements.

A python instrument's driver is `package.module:Class` or a name registered under the entry-point group
`qharness.drivers`. Its methods are the bench commands of its role (harness.profiles.checks.BENCH_COMMANDS), called
with the template placeholders as keyword arguments. The profile checks all of this when it is loaded, so a driver
that cannot be imported or lacks a method is a profile error (exit 4), never a measurement fault.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from harness.profiles.checks import BENCH_COMMANDS, OPTIONAL_COMMANDS

ENTRY_POINT_GROUP = "qharness.drivers"
# Commands a python instrument answers itself when its driver has no such method (faults arrive as exceptions).
ANSWERED_BY_TRANSPORT = frozenset({"errors"})
# The optional class method through which an adapter says which commands its options provide (and rejects bad ones).
METHODS_HOOK = "driver_methods"


class DriverError(ValueError):
    """A driver reference or its options cannot work; `key` is the instrument key to fix ('driver' or 'options')."""

    def __init__(self, message: str, key: str = "driver") -> None:
        super().__init__(message)
        self.key = key


def one_line(exc: BaseException) -> str:
    """`Type: message` of an exception on one line, cut to 200 characters."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _from_path(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the plugin's import is the user's to fix
        raise DriverError(
            f"cannot import driver module {module_name!r} ({one_line(exc)}); install the package that provides it "
            "or correct the path 'package.module:Class'"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DriverError(f"module {module_name!r} has no attribute {attr!r}; correct the class name in {ref!r}")
        obj = getattr(obj, part)
    return obj


def _from_entry_point(name: str) -> Any:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
        raise DriverError(
            f"no driver {name!r} is registered under the entry-point group {ENTRY_POINT_GROUP!r} "
            f"(registered: {', '.join(known) or 'none'}); give 'package.module:Class' or install the plugin"
        )
    ep = next(iter(found))
    try:
        return ep.load()
    except Exception as exc:  # a plugin that fails to load is the user's to fix
        raise DriverError(f"driver {name!r} ({ep.value}) cannot be loaded: {one_line(exc)}") from None


@functools.cache
def load_driver(ref: str) -> type:
    """The driver class named by `ref` ('package.module:Class' or an entry-point name); DriverError saying why not."""
    obj = _from_path(ref) if ":" in ref else _from_entry_point(ref)
    if not inspect.isclass(obj):
        raise DriverError(f"driver {ref!r} is a {type(obj).__name__}, not a class; name the driver class")
    return obj


def role_commands(role: str | None) -> dict[str, set[str]]:
    """Command name -> placeholders for a bench role (every role's commands when `role` is None)."""
    roles = [role] if role in BENCH_COMMANDS else list(BENCH_COMMANDS)
    out: dict[str, set[str]] = {}
    for r in roles:
        out.update(BENCH_COMMANDS[r])
        out.update(OPTIONAL_COMMANDS.get(r, {}))
    return out


def _signature_problem(cls: type, name: str, fields: set[str]) -> str | None:
    """Why `cls.<name>` cannot be called with `fields` as keyword arguments, or None (also when it cannot tell)."""
    raw = inspect.getattr_static(cls, name)
    method: Callable[..., Any] = getattr(cls, name)
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return None  # a builtin or extension method without a signature: it is checked at the first call
    bound = isinstance(raw, (staticmethod, classmethod)) or not inspect.isfunction(raw)
    try:
        sig.bind(*(() if bound else (None,)), **dict.fromkeys(fields))
    except TypeError:
        args = ", ".join(sorted(fields))
        return f"method {name}{sig} cannot be called as {name}({args}); a driver's {name} takes ({args})"
    return None


def implemented(cls: type, options: Mapping[str, Any], commands: Mapping[str, set[str]]) -> set[str]:
    """The commands among `commands` that the driver class implements with these options; DriverError if unusable."""
    hook = getattr(cls, METHODS_HOOK, None)
    if hook is not None:
        try:
            provided = set(hook(dict(options)))
        except (TypeError, ValueError, KeyError) as exc:
            raise DriverError(f"{one_line(exc)}", key="options") from None
        return provided & set(commands)
    found = {name for name in commands if callable(getattr(cls, name, None))}
    for name in sorted(found):
        problem = _signature_problem(cls, name, commands[name])
        if problem is not None:
            raise DriverError(f"driver {cls.__module__}:{cls.__qualname__}: {problem}")
    return found


def template(name: str, fields: set[str]) -> str:
    """The command line of a python instrument: the method name, then `field={field}` per keyword argument."""
    return " ".join([name, *(f"{f}={{{f}}}" for f in sorted(fields))])


def driver_commands(ref: str, options: Mapping[str, Any], role: str | None) -> dict[str, str]:
    """Command templates of a python instrument in `role` (None: any role); DriverError for an unusable driver."""
    cls = load_driver(ref)
    commands = role_commands(role)
    found = implemented(cls, options, commands)
    if role in BENCH_COMMANDS:
        missing = sorted(set(BENCH_COMMANDS[role]) - found - ANSWERED_BY_TRANSPORT)
        if missing:
            needs = ", ".join(sorted(set(BENCH_COMMANDS[role]) - ANSWERED_BY_TRANSPORT))
            if hasattr(cls, METHODS_HOOK):
                raise DriverError(
                    f"the options of driver {ref!r} provide no {missing[0]!r}; bench.{role} needs {needs} "
                    "(see docs/drivers.md)",
                    key="options",
                )
            where = "" if ":" in ref else f" ({cls.__module__}:{cls.__qualname__})"
            raise DriverError(
                f"driver {ref!r}{where} has no method {missing[0]!r}; a driver of bench.{role} implements {needs} "
                "(see docs/drivers.md)"
            )
    found |= ANSWERED_BY_TRANSPORT & set(commands)
    return {name: template(name, commands[name]) for name in sorted(found)}
