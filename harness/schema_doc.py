"""The profile schema reference in Markdown, rendered from the pydantic model so the docs never drift."""

from __future__ import annotations

from harness.profiles import profile_json_schema

_CONSTRAINTS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("pattern", "matches `{}`"),
)


def _type(prop: dict) -> str:
    if "$ref" in prop:
        return f"[{prop['$ref'].rsplit('/', 1)[-1]}](#{prop['$ref'].rsplit('/', 1)[-1].lower()})"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map of name to {_type(prop['additionalProperties'])}"
    return str(kind)


def _constraints(prop: dict) -> str:
    found = [fmt.format(prop[key]) for key, fmt in _CONSTRAINTS if key in prop]
    for sub in prop.get("anyOf", ()):
        found += [fmt.format(sub[key]) for key, fmt in _CONSTRAINTS if key in sub]
    return ", ".join(found)


def _table(obj: dict, required: set[str]) -> list[str]:
    rows = ["| key | type | allowed | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for key, prop in obj.get("properties", {}).items():
        default = "required" if key in required else f"`{prop['default']}`" if "default" in prop else ""
        meaning = prop.get("description", "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type(prop)} | {_constraints(prop)} | {default} | {meaning} |")
    return rows


def schema_markdown() -> str:
    """The profile schema as Markdown tables: the top level, then one section per block."""
    schema = profile_json_schema()
    lines = [
        "# Device profile schema",
        "",
        "Generated from the profile model by `qharness profiles schema --format markdown`; do not edit by hand.",
        "Unknown keys are errors. `builds.<name>` holds per-build overrides of any block below, deep-merged.",
        "",
        "## Profile",
        "",
        *_table(schema, set(schema.get("required", ()))),
    ]
    for name, block in sorted(schema.get("$defs", {}).items()):
        lines += ["", f"## {name}", ""]
        if block.get("description"):
            lines += [block["description"], ""]
        lines += _table(block, set(block.get("required", ())))
    return "\n".join(lines) + "\n"
