"""Profile problems as the user reads them (`file: key.path: message (line n)`), pydantic errors in those words."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Problem:
    """One problem in a profile: the file, the key path (a tuple of keys) and what is wrong."""

    file: str
    path: tuple[str | int, ...]
    message: str
    line: int | None = None

    @property
    def key(self) -> str:
        """The key path written as `builds."2.5.0-rc1".source.visibility` (empty for whole-file problems)."""
        return format_key_path(self.path)

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        key = f"{self.key}: " if self.key else ""
        return f"{self.file}: {key}{self.message}{where}"


class ProfileError(ValueError):
    """A profile cannot be found, parsed or validated; `problems` lists every issue, one line each."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("<profile>", (), problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_key_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """Join keys with dots, quoting keys that are not identifiers and writing list indices as [i]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        text = text if text.isidentifier() else json.dumps(text)
        out += f".{text}" if out else text
    return out


def suggest(word: str, options: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest of `options` to `word`, or "" when none is close."""
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def custom_error(message: str, *path: str | int) -> PydanticCustomError:
    """Return a validation error whose key path continues below the validator's own location by `path`."""
    return PydanticCustomError("profile", "{reason}", {"reason": message, "path": list(path)})


def short_repr(value: Any, limit: int = 60) -> str:
    """Return repr(value), cut to `limit` characters with "..." so one bad value cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------------------------------
# pydantic errors in the profile's own words


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated from a field annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _walk(root: type[BaseModel], path: tuple[str | int, ...]) -> tuple[type[BaseModel] | None, Any]:
    """The model class reached at `path` within `root` (None if not a model), and the FieldInfo of its last key."""
    current: Any = root
    info = None
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None, None
            current = _unwrap(info.annotation)
        elif typing.get_origin(current) in (dict, list):
            info = None
            current = _unwrap(typing.get_args(current)[-1])
        else:
            return None, None
    model = current if isinstance(current, type) and issubclass(current, BaseModel) else None
    return model, info


def _constraints(info: Any) -> list[Any]:
    """Every constraint object on a field, including those inside Optional[Annotated[...]] members."""
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            found += list(getattr(meta, "metadata", [meta]))
    return found


def _bounds(info: Any) -> str:
    """The allowed range of a numeric field, e.g. '[0, 1]' or '> 0' (empty when it has none)."""
    if info is None:
        return ""
    lo = hi = None
    lo_open = hi_open = False
    for meta in _constraints(info):
        for attr in ("ge", "gt", "le", "lt"):
            value = getattr(meta, attr, None)
            if value is None:
                continue
            if attr in ("ge", "gt"):
                lo, lo_open = value, attr == "gt"
            else:
                hi, hi_open = value, attr == "lt"
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


_TYPE_WORDS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "string_type": "a string (quote it in YAML)",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "list_type": "a list",
    "bool_type": "true or false",
}


def describe_error(error: dict, loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    """Return a readable message for one pydantic error under `root`: what was wrong, the bad value, what is allowed."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = f"got {short_repr(error.get('input'))}"
    if kind == "profile":
        return str(ctx["reason"])
    if kind == "extra_forbidden":
        owner, _ = _walk(root, loc[:-1])
        allowed = list(owner.model_fields) if owner is not None else []
        listed = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {loc[-1]!r}{suggest(str(loc[-1]), allowed)}{listed}"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"):
        _, info = _walk(root, loc)
        allowed = _bounds(info)
        return f"out of range, {got}; allowed: {allowed or error['msg']}"
    if kind == "literal_error":
        expected = [e.strip().strip("'") for e in re.split(r",| or ", str(ctx.get("expected", ""))) if e.strip()]
        hint = suggest(str(error.get("input")), expected) if isinstance(error.get("input"), str) else ""
        return f"{got}{hint} (allowed: {', '.join(expected)})"
    if kind == "string_pattern_mismatch":
        _, info = _walk(root, loc)
        what = f" ({info.description})" if info is not None and info.description else ""
        return f"{got}; must match {ctx.get('pattern')}{what}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, {got}"
    return f"{error['msg']}, {got}"
