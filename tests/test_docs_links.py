"""Every relative link in README.md and docs/*.md resolves: the file (or folder) exists, and a
`#anchor` into a markdown page names one of its headings, slugged as GitHub does."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

from devtools.template import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", prose(page.read_text(encoding="utf-8")), re.M):
        base = slug(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(page: Path) -> list[str]:
    text = CODE_SPAN.sub("", prose(page.read_text(encoding="utf-8")))
    return [
        target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I)
    ]  # http:, https:, mailto: are not relative


def test_the_pages_have_links() -> None:
    assert len(PAGES) >= 6
    assert sum(len(links(page)) for page in PAGES) > 20  # the check is not vacuous


def test_slugs_are_githubs() -> None:
    assert slug("Data lifecycle: what the table keeps, and for how long") == (
        "data-lifecycle-what-the-table-keeps-and-for-how-long"
    )
    assert slug("The operator CLI, `bwpctl`") == "the-operator-cli-bwpctl"
    assert slug("Table item types (`pk` / `sk`, TTL attribute `expires_at`)") == (
        "table-item-types-pk--sk-ttl-attribute-expires_at"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / unquote(path)).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(PROJECT_ROOT)}")
    assert not broken, f"{page.relative_to(PROJECT_ROOT)}: {broken}"
