"""The documentation cannot drift: generated reference, links, metric glossary and plugin options."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import pytest_plugin
from harness.metrics import REGISTRY

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MARKDOWN = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """Markdown without fenced code blocks and code spans, where a bracket is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def relative_links(path: Path) -> list[str]:
    """Targets of the relative links in a Markdown file (no URLs, no in-page anchors), without '#fragment'."""
    out = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section of a Markdown text, up to the next heading of level 1 or 2."""
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert m is not None, f"no '## {heading}' section"
    return m.group(1)


def mentions(text: str, word: str) -> bool:
    """Whether `word` occurs in `text` as a whole identifier or option (not as part of a longer one)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


class _Group:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def addoption(self, *opts: str, **kw: object) -> None:
        self.names.extend(o for o in opts if o.startswith("--"))


class _Parser:
    """Stands in for pytest's parser to list exactly the options the plugin registers."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def getgroup(self, *args: object, **kw: object) -> _Group:
        return _Group(self.names)

    def addoption(self, *opts: str, **kw: object) -> None:
        self.names.extend(o for o in opts if o.startswith("--"))

    def addini(self, *args: object, **kw: object) -> None:
        pass


def plugin_options() -> list[str]:
    """The long options the qharness pytest plugin adds."""
    parser = _Parser()
    pytest_plugin.pytest_addoption(parser)  # type: ignore[arg-type]
    return parser.names


def test_profile_schema_reference_is_the_generated_one() -> None:
    """docs/profile-schema.md is byte for byte what `qharness profiles schema --format markdown` prints."""
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "profiles", "schema", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert out.strip(), "the schema command printed nothing"
    doc = (DOCS / "profile-schema.md").read_text(encoding="utf-8")
    assert doc == out, (
        "docs/profile-schema.md differs from the model; regenerate it with "
        "`qharness profiles schema --format markdown > docs/profile-schema.md`"
    )


@pytest.mark.parametrize("path", MARKDOWN, ids=[p.relative_to(REPO).as_posix() for p in MARKDOWN])
def test_relative_links_point_to_existing_files(path: Path) -> None:
    """Every relative link of README.md and docs/*.md resolves to a file or directory of the repository."""
    broken = [t for t in relative_links(path) if t and not (path.parent / t).exists()]
    assert not broken, f"{path.relative_to(REPO)}: broken relative links: {broken}"


def test_link_checker_sees_links_and_ignores_code() -> None:
    """The checker finds links with fragments and titles, and skips URLs, anchors, code spans and fences."""
    text = 'See [a](docs/a.md#x), [b](b.md "t"), [c](https://x.org/c.md), [d](#d), `[e](e.md)`.\n```\n[f](f.md)\n```\n'
    assert LINK.findall(prose(text)) == ["docs/a.md#x", "b.md", "https://x.org/c.md", "#d"]


def test_every_metric_is_in_the_glossary() -> None:
    """Each metric of harness.metrics.REGISTRY is named, in full, in docs/reference.md's metrics glossary."""
    glossary = section((DOCS / "reference.md").read_text(encoding="utf-8"), "Metrics glossary")
    missing = [name for name in REGISTRY if not mentions(glossary, name)]
    assert not missing, f"docs/reference.md's glossary does not name: {', '.join(missing)}"


def test_every_plugin_option_is_in_the_reference() -> None:
    """Each pytest option the qharness plugin registers is documented in docs/reference.md."""
    options = plugin_options()
    assert "--device-profile" in options and "--record-session" in options, options
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    missing = [o for o in options if not mentions(reference, o)]
    assert not missing, f"docs/reference.md does not document: {', '.join(missing)}"
