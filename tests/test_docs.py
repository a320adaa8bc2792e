"""The documentation holds together: every relative link and #anchor in README.md and docs/
resolves, the README stays short and links every page, and its Python example still parses.

Pure Python and fast: no model, no torch. Anchors follow GitHub's rule (see ``slugify``)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


# --- reading Markdown --------------------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
HTML_ID = re.compile(r"<[a-zA-Z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']")


def mask_fences(text: str) -> str:
    """The text with fenced code blocks blanked out (newlines kept, so that offsets and line
    numbers stay those of the file)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append(_blank(line))
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip().lstrip(fence[0]):
                fence = None
            out.append(_blank(line))
        else:
            out.append(line)
    return "".join(out)


def mask_code(text: str) -> str:
    """The text with fenced code blocks and inline code spans blanked out."""
    return CODE_SPAN.sub(lambda m: _blank(m.group(0)), mask_fences(text))


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def _heading_text(raw: str) -> str:
    """What GitHub renders of a heading: code spans keep their text, links their link text,
    emphasis markers and HTML tags go."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    text = re.sub(r"<[^>]+>", "", text)
    parts = re.split(r"(`+[^`]*`+)", text)
    return "".join(p.strip("`") if p.startswith("`") else re.sub(r"[*~]", "", p) for p in parts)


def slugify(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case; every character but letters, marks,
    digits, connector punctuation (``_``), hyphens and spaces removed; spaces become hyphens."""
    kept = (c for c in _heading_text(heading).strip().lower()
            if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc")
    return "".join(kept).replace(" ", "-")


def headings(text: str) -> list[str]:
    """The text of every heading (ATX and setext) outside fenced code, in order."""
    found: list[str] = []
    lines = mask_fences(text).splitlines()
    for i, line in enumerate(lines):
        m = ATX.match(line)
        prev = lines[i - 1] if i else ""
        if m:
            found.append(m.group(2) or "")
        elif SETEXT.match(line) and prev.strip() and not ATX.match(prev) \
                and not prev.lstrip().startswith(("|", "-", "*", "+", ">")):
            found.append(prev.strip())
    return found


def anchors(text: str) -> set[str]:
    """Every anchor a page defines: its headings' slugs, a repeated slug numbered -1, -2, ...
    as GitHub does, and explicit ``<a id=...>`` / ``name=...`` targets."""
    seen: Counter[str] = Counter()
    result: set[str] = set()
    for heading in headings(text):
        base = slugify(heading)
        result.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    result.update(HTML_ID.findall(mask_code(text)))
    return result


INLINE = re.compile(
    r"(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]"                 # [text] (one level of nested [])
    r"\(\s*(<[^>\n]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"  # (target
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")      #  "title")
REF_USE = re.compile(r"(?<![\]\\])\[((?:[^\[\]]|\[[^\[\]]*\])+)\]\[([^\[\]]*)\]")
REF_DEF = re.compile(r"^ {0,3}\[([^\]]+)\]:[ \t]*(<[^>\n]*>|\S+)", re.MULTILINE)
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']")


def _label(s: str) -> str:
    return " ".join(s.split()).lower()


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every link outside code: inline links and images, reference
    definitions and HTML href/src. A reference link whose label has no definition comes back
    as the target ``[label]``."""
    masked = mask_code(text)

    def line(pos: int) -> int:
        return masked.count("\n", 0, pos) + 1

    found = [(line(m.start(3)), m.group(3).strip("<>")) for m in INLINE.finditer(masked)]
    defined = {}
    for m in REF_DEF.finditer(masked):
        defined[_label(m.group(1))] = m.group(2).strip("<>")
        found.append((line(m.start(2)), m.group(2).strip("<>")))
    for m in REF_USE.finditer(masked):
        label = _label(m.group(2) or m.group(1))
        if label not in defined:
            found.append((line(m.start()), f"[{label}]"))
    found += [(line(m.start(1)), m.group(1)) for m in HTML_LINK.finditer(masked)]
    return sorted(found)


EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def broken_links(page: Path) -> list[str]:
    """One line per link of ``page`` that does not resolve: 'file:line: target (why)'."""
    text = page.read_text(encoding="utf-8")
    problems = []
    for lineno, target in links(text):
        why = _why_broken(page, text, target)
        if why:
            problems.append(f"{page.relative_to(ROOT)}:{lineno}: {target} ({why})")
    return problems


def _why_broken(page: Path, text: str, target: str) -> str | None:
    if target.startswith("[") and target.endswith("]"):
        return "reference link with no definition"
    if not target:
        return "empty link"
    if EXTERNAL.match(target):
        return None
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    if not path_part:
        dest, dest_text = page, text
    else:
        base = ROOT if path_part.startswith("/") else page.parent
        dest = (base / path_part.lstrip("/")).resolve()
        if not dest.is_relative_to(ROOT.resolve()):
            return "points outside the repository"
        if not dest.exists():
            return "no such file"
        dest_text = dest.read_text(encoding="utf-8") if dest.suffix == ".md" and dest.is_file() \
            else None
    if anchor and dest_text is not None and unquote(anchor) not in anchors(dest_text):
        return f"no heading or anchor #{anchor} in {dest.relative_to(ROOT.resolve())}"
    return None


# --- the tests -------------------------------------------------------------------------------


def test_slugs_follow_githubs_rule() -> None:
    assert slugify("`culturetune survey`") == "culturetune-survey"
    assert slugify("The default grid: 4 countries × 3 seeds") == (
        "the-default-grid-4-countries--3-seeds")
    assert slugify("Objectives side by side, read by what the model says") == (
        "objectives-side-by-side-read-by-what-the-model-says")
    assert slugify("Llama-3-8B-Instruct on a GPU") == "llama-3-8b-instruct-on-a-gpu"
    assert slugify("The default `tune`, four countries") == "the-default-tune-four-countries"
    assert slugify("snake_case **bold** [a link](x.md) Über") == "snake_case-bold-a-link-über"
    page = ("# Results\n\n## Setup\n\n```sh\n# not a heading\n```\n\n### Setup\n\n## Setup ##\n"
            "Plain title\n---\n<a id=\"custom\"></a>\n")
    assert anchors(page) == {"results", "setup", "setup-1", "setup-2", "plain-title", "custom"}


def test_links_are_found_outside_code_only() -> None:
    text = ("See [a](a.md#x) and ![img](fig.png \"title\"), and [text\nover two lines](b.md).\n"
            "`[not](code.md)` and\n```md\n[nor](fenced.md)\n```\n"
            "[ref][r] and [missing][nope]\n\n[r]: c.md#y\n")
    assert links(text) == [(1, "a.md#x"), (1, "fig.png"), (2, "b.md"), (7, "[nope]"),
                           (9, "c.md#y")]


def test_every_relative_link_and_anchor_resolves() -> None:
    pages = markdown_files()
    assert README in pages and len(pages) > 2
    broken = [problem for page in pages for problem in broken_links(page)]
    assert not broken, f"{len(broken)} broken link(s):\n" + "\n".join(broken)


def test_readme_is_short_and_links_every_docs_page() -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.count("\n") + (not text.endswith("\n"))
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in links(text)
              if not EXTERNAL.match(t) and t.partition("#")[0]}
    pages = [p for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not pages, "docs pages the README does not link: " + ", ".join(
        str(p.relative_to(ROOT)) for p in pages)


def test_readme_python_example_is_where_test_api_reads_it() -> None:
    """tests/test_api.py runs the first ``python`` block of the "Python API" section; here it
    only has to be there and parse (running it needs the model)."""
    text = README.read_text(encoding="utf-8")
    assert "\n## Python API\n" in text
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    assert "```python\n" in section
    example = section.split("```python\n", 1)[1].split("\n```", 1)[0]
    compile(example, "README.md (Python API)", "exec")
    assert "import culturetune as ct" in example
