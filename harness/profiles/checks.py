"""Checks across a profile's keys, on plain mappings, so that every problem of a file is reported at once.

pydantic runs a model's own (`after`) validator only when all of the model's fields are valid, so a missing block
would hide behind a typo elsewhere. The models call these functions on their own data (raising the first issue), and
the loader calls `model_issues` on the merged file as well, whatever its fields.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from harness.profiles.messages import custom_error
from harness.profiles.tomography import tomography_issues

# One problem: the key path below the mapping checked, and the message.
Issue = tuple[tuple[str | int, ...], str]

# Commands each bench role must define, with the placeholders its template may use.
BENCH_COMMANDS: dict[str, dict[str, set[str]]] = {
    "source": {"identify": set(), "firmware_build": set(), "enable": set(), "disable": set()},
    "counter": {
        "set_integration": {"seconds"},
        "coincidences": set(),
        "singles": {"channel"},
        "errors": set(),
    },
    "analyzers": {"set_basis": {"arm", "basis"}},
    "decoder": {"decode": {"code", "syndrome"}},
}
OPTIONAL_COMMANDS: dict[str, dict[str, set[str]]] = {
    "analyzers": {
        "prepare_state": {"state"},
        "set_waveplates": {"arm", "hwp_deg", "qwp_deg"},
        "prepare_waveplates": {"hwp_deg", "qwp_deg"},
    }
}
# A required command another one stands in for: analysers driven by waveplate angles need no set_basis.
STANDS_IN = {"set_basis": "set_waveplates"}


def raise_first(issues: list[Issue]) -> None:
    """Raise the first issue as a validation error at its key path (a model reports one problem per validator)."""
    if issues:
        path, message = issues[0]
        raise custom_error(message, *path)


def _templates(inst: Mapping[str, Any]) -> dict[str, str]:
    """Return an instrument's command templates that are strings (other values are the field checks' business)."""
    commands = inst.get("commands")
    if not isinstance(commands, Mapping):
        return {}
    return {str(k): v for k, v in commands.items() if isinstance(v, str)}


def instrument_issues(inst: Mapping[str, Any]) -> list[Issue]:
    """Return the problems of one instrument: an address for its transport, templates that parse."""
    out: list[Issue] = []
    if inst.get("transport") == "serial" and not inst.get("url"):
        out.append((("url",), "a serial instrument needs 'url' (a pyserial URL or device path)"))
    if inst.get("transport") == "visa" and not inst.get("resource"):
        out.append((("resource",), "a visa instrument needs 'resource' (a VISA resource string)"))
    for name, template in _templates(inst).items():
        problem = template_problem(template)
        if problem is not None:
            out.append((("commands", name), problem))
    return out


def template_problem(template: str) -> str | None:
    """Return why a command template does not parse (with how to fix it), or None when it parses."""
    try:
        list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"bad template {template!r}: {exc}; escape literal braces as '{{{{'"
    return None


def placeholders(template: str) -> set[str] | None:
    """Return the placeholder names of a template, or None when it does not parse (an instrument issue)."""
    if template_problem(template) is not None:
        return None
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def bench_issues(bench: Mapping[str, Any]) -> list[Issue]:
    """Return the problems of a bench block's commands: required commands missing, placeholders not allowed."""
    out: list[Issue] = []
    for role, required in BENCH_COMMANDS.items():
        inst = bench.get(role)
        if not isinstance(inst, Mapping) or not isinstance(inst.get("commands", {}), Mapping):
            continue
        if inst.get("transport") == "python":
            continue  # a driver's methods are the commands, checked when the driver is imported
        commands = inst.get("commands", {})
        allowed = {**required, **OPTIONAL_COMMANDS.get(role, {})}
        missing = [name for name in required if name not in commands and STANDS_IN.get(name) not in commands]
        if missing:  # one problem per role: its message lists every command the role needs
            needs = ", ".join(sorted(required))
            out.append(((role, "commands"), f"missing command {missing[0]!r}; the {role} needs: {needs}"))
        for name, template in _templates(inst).items():
            fields = placeholders(template)
            extra = (fields or set()) - allowed.get(name, fields or set())
            if extra:
                allowed_text = ", ".join("{" + f + "}" for f in sorted(allowed[name])) or "none"
                message = f"template {template!r} uses {', '.join(sorted(extra))}; allowed placeholders: {allowed_text}"
                out.append(((role, "commands", name), message))
    return out


def kind_issues(profile: Mapping[str, Any]) -> list[Issue]:
    """Return the problems of a profile's blocks for its kind, and of firmware builds missing from `builds`."""
    kind = profile.get("kind")
    out: list[Issue] = []
    if kind == "aer":
        out += [
            ((b,), f"kind aer requires a {b!r} block")
            for b in ("source", "link", "detectors")
            if profile.get(b) is None
        ]
    if kind == "bench" and profile.get("bench") is None:
        out.append((("bench",), "kind bench requires a 'bench' block (source, counter, analyzers)"))
    if kind == "replay" and profile.get("replay") is None:
        out.append((("replay",), "kind replay requires a 'replay' block, e.g. {cassette: run.cassette.json}"))
    sessions = profile.get("sessions")
    realign = sessions.get("realign") if isinstance(sessions, Mapping) else None
    if isinstance(realign, Mapping) and realign.get("command") is not None and kind != "bench":
        message = f"a source-controller command needs kind bench (this profile is kind {kind!r}); use 'shell'"
        out.append((("sessions", "realign", "command"), message))
    if profile.get("aer") is not None and kind in ("bench", "replay"):
        out.append((("aer",), f"the 'aer' block is for kind aer only (this profile is kind {kind!r})"))
    builds, firmware = profile.get("builds"), profile.get("firmware")
    if kind == "aer" and isinstance(builds, Mapping) and builds and isinstance(firmware, Mapping):
        known = ", ".join(str(b) for b in builds)
        for key in ("build", "baseline"):
            build = firmware.get(key)
            if isinstance(build, str) and build not in builds:
                message = f"build {build!r} is not listed under 'builds' (known builds: {known})"
                out.append((("firmware", key), message))
    return out + tomography_issues(profile)


def model_issues(profile: Mapping[str, Any]) -> list[Issue]:
    """Return every cross-key problem of a merged profile mapping, key paths from its top."""
    out = kind_issues(profile)
    bench = profile.get("bench")
    if isinstance(bench, Mapping):
        for role in BENCH_COMMANDS:
            inst = bench.get(role)
            if isinstance(inst, Mapping):
                out += [(("bench", role, *path), message) for path, message in instrument_issues(inst)]
        out += [(("bench", *path), message) for path, message in bench_issues(bench)]
    return out
