"""The Lambda artifacts are built per function by src/Makefile (template.yaml: BuildMethod
makefile): the events function's artifact leaves out the requirements only the OAuth function
needs (pyjwt[crypto]: cryptography, cffi). Lambda would only find out on the first import, so the
code's imports are checked here: nothing under events/ or shared/ may import them, not even inside
a function. Timings and sizes are `make bench`'s business (bench/RESULTS.md), not the tests'.
"""

from __future__ import annotations

import ast
import re
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

from devtools.template import PROJECT_ROOT, load_template, resources_of_type

SRC = PROJECT_ROOT / "src"
MAKEFILE = SRC / "Makefile"


def _requirement_names() -> list[str]:
    lines = (SRC / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [Requirement(line).name for line in (raw.split("#")[0].strip() for raw in lines) if line]


def _excluded_for_events() -> list[str]:
    match = re.search(r"^EVENTS_EXCLUDED_REQUIREMENTS\s*:?=\s*(.+)$", MAKEFILE.read_text(encoding="utf-8"), re.M)
    assert match, "src/Makefile no longer defines EVENTS_EXCLUDED_REQUIREMENTS"
    pattern = re.compile(rf"^({match.group(1).strip()})$", re.I)
    return [name for name in _requirement_names() if pattern.match(name)]


def _closure(names: list[str]) -> set[str]:
    """The distributions these requirements install (as pinned in .venv), dependencies included."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for raw in distribution(name).requires or []:
            requirement = Requirement(raw)
            extras = ["", "crypto"] if name == "pyjwt" else [""]  # the requirement is pyjwt[crypto]
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in extras):
                todo.append(requirement.name)
    return seen


def _top_level_imports(package: Path) -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every import anywhere in the package."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(SRC)))
    return found


def test_events_function_code_imports_nothing_its_artifact_leaves_out() -> None:
    # given the distributions only the OAuth function's artifact contains
    excluded = _closure(_excluded_for_events()) - _closure(
        [name for name in _requirement_names() if name not in _excluded_for_events()]
    )
    assert "cryptography" in excluded, excluded  # the split still means what this test assumes
    modules = {m for m, dists in packages_distributions().items() if {d.lower() for d in dists} & excluded}
    modules.add("_cffi_backend")

    # when every import of the events function's code is listed
    imports: dict[str, set[str]] = {}
    for package in ("events", "sweep", "shared"):  # SweepFunction's artifact is cut the same way
        for module, files in _top_level_imports(SRC / package).items():
            imports.setdefault(module, set()).update(files)

    # then none of them is left out of its artifact
    offending = {module: sorted(files) for module, files in imports.items() if module in modules}
    assert not offending, f"events/, sweep/ or shared/ import what their artifacts do not ship: {offending}"


def test_every_function_is_built_by_the_makefile() -> None:
    targets = set(re.findall(r"^build-([A-Za-z0-9]+):", MAKEFILE.read_text(encoding="utf-8"), re.M))
    for logical_id, function in resources_of_type(load_template(), "AWS::Serverless::Function").items():
        assert (function.get("Metadata") or {}).get("BuildMethod") == "makefile", logical_id
        assert str(function["Properties"]["CodeUri"]).rstrip("/") == "src", logical_id
        assert logical_id in targets, f"src/Makefile has no build-{logical_id} target"
