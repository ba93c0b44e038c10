"""docs/disaster-recovery.md names only what exists: every `bwpctl` line parses with bwpctl's own
parser, every parameter a `sam deploy` line overrides is one of the template's, every name in
backticks is in template.yaml or src/ (or is an AWS API field, listed below), and the page is
linked from README.md and docs/operations.md."""

from __future__ import annotations

import re
import shlex

import pytest

from bwpctl.__main__ import parser
from devtools.template import PROJECT_ROOT, load_template

DOC_PATH = PROJECT_ROOT / "docs" / "disaster-recovery.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
# Names the page takes from AWS's own APIs and CLI, not from this project.
AWS_NAMES = {"EarliestRestorableDateTime", "LatestRestorableDateTime", "AWSCURRENT"}


def commands() -> list[str]:
    """The shell commands of the page's code blocks, continuation lines joined, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC, re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [line.split("  #", 1)[0].strip() for line in joined.splitlines() if line.strip()]


def project_text() -> str:
    sources = [PROJECT_ROOT / "template.yaml", *(PROJECT_ROOT / "src").rglob("*.py")]
    return "\n".join(path.read_text(encoding="utf-8") for path in sources)


def test_the_page_has_runbooks_and_is_linked() -> None:
    headings = re.findall(r"^## (.+)$", DOC, re.M)
    assert len(headings) == 4, headings  # table restore, client secret, verification key, region loss
    for page in ("README.md", "docs/operations.md"):
        assert "disaster-recovery.md" in (PROJECT_ROOT / page).read_text(encoding="utf-8"), page


@pytest.mark.parametrize("line", [c for c in commands() if "-m bwpctl" in c])
def test_every_bwpctl_line_parses(line: str) -> None:
    words = shlex.split(line)
    arguments = words[words.index("bwpctl") + 1 :]
    parser().parse_args(arguments)  # exits (a test failure) on an unknown command or option


def test_every_overridden_parameter_is_the_templates() -> None:
    parameters = load_template()["Parameters"]
    deploys = [shlex.split(c) for c in commands() if c.startswith("sam deploy")]
    assert deploys
    for words in deploys:
        overrides = words[words.index("--parameter-overrides") + 1 :]
        names = {word.split("=", 1)[0] for word in overrides if "=" in word}
        assert names and names <= set(parameters), names - set(parameters)


def test_every_name_in_backticks_exists() -> None:
    text = project_text()
    names = set(re.findall(r"`([A-Za-z][A-Za-z0-9_]+)`", DOC))
    identifiers = {n for n in names if re.fullmatch(r"[A-Z][a-z]+[A-Z][A-Za-z0-9]*|[A-Z][A-Z0-9_]{3,}", n)}
    assert len(identifiers) > 30  # the check is not vacuous
    unknown = {n for n in identifiers - AWS_NAMES if n not in text}
    assert not unknown, f"docs/disaster-recovery.md names what template.yaml and src/ do not: {sorted(unknown)}"
