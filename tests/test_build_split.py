"""The Lambda artifacts are built per function by src/Makefile (template.yaml: BuildMethod
makefile): every artifact but OAuthFunction's installs src/requirements.lock, without what only
the OAuth function needs (pyjwt[crypto]: cryptography, cffi). Lambda would only find out on the
first import, so the code's imports are checked here: nothing those functions ship may import
them, not even inside a function. Timings and sizes are `make bench`'s business (bench/RESULTS.md), not the tests'.
"""

from __future__ import annotations

import ast
import re
from importlib.metadata import packages_distributions
from pathlib import Path

from devtools.template import PROJECT_ROOT, load_template, resources_of_type

SRC = PROJECT_ROOT / "src"
MAKEFILE = SRC / "Makefile"


def _locked_names(lock: str) -> set[str]:
    """The distributions a lock installs (src/requirements*.lock, every dependency pinned)."""
    text = (SRC / lock).read_text(encoding="utf-8")
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def _top_level_imports(package: Path) -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every import anywhere in the package."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py") if package.is_dir() else [package]:
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
    excluded = _locked_names("requirements-oauth.lock") - _locked_names("requirements.lock")
    assert "cryptography" in excluded, excluded  # the split still means what this test assumes
    modules = {m for m, dists in packages_distributions().items() if {d.lower() for d in dists} & excluded}
    modules.add("_cffi_backend")

    # when every import of the other functions' code is listed (they install requirements.lock)
    imports: dict[str, set[str]] = {}
    # (clients/session_token.py is for the partner's app; the example consumer's build removes it)
    for package in ("events", "sweep", "broker", "outbox", "example_consumer", "clients/token_broker.py", "shared"):
        for module, files in _top_level_imports(SRC / package).items():
            imports.setdefault(module, set()).update(files)

    # then none of them is left out of its artifact
    offending = {module: sorted(files) for module, files in imports.items() if module in modules}
    assert not offending, f"code outside oauth/ imports what its artifact does not ship: {offending}"


def test_every_function_is_built_by_the_makefile() -> None:
    targets = set(re.findall(r"^build-([A-Za-z0-9]+):", MAKEFILE.read_text(encoding="utf-8"), re.M))
    for logical_id, function in resources_of_type(load_template(), "AWS::Serverless::Function").items():
        assert (function.get("Metadata") or {}).get("BuildMethod") == "makefile", logical_id
        assert str(function["Properties"]["CodeUri"]).rstrip("/") == "src", logical_id
        assert logical_id in targets, f"src/Makefile has no build-{logical_id} target"
