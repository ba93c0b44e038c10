"""The bytecode step of the build (src/buildtools/pyc_closure.py): it compiles what a handler can
import, and nothing a handler never reaches."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from buildtools.pyc_closure import closure, main


def _tree(root: Path) -> None:
    files = {
        "app/__init__.py": "",
        "app/handler.py": "import lib_a\n\ndef route():\n    from app import lazy\n",
        "app/lazy.py": "",
        "app/unused.py": "",
        "lib_a/__init__.py": (
            "from typing import TYPE_CHECKING\nfrom . import part\nimport lib_b\n"
            "if TYPE_CHECKING:\n    import lib_d\n\ndef call():\n    import lib_c\n"
        ),
        "lib_a/part.py": "",
        "lib_b.py": "",
        "lib_c.py": "",
        "lib_d.py": "",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_closure_follows_our_lazy_imports_and_only_libraries_module_level_ones(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = set(closure(str(tmp_path), "app.handler", {"app"}))
    assert {"app", "app.handler", "app.lazy", "lib_a", "lib_a.part", "lib_b"} <= found
    assert not found & {"app.unused", "lib_c", "lib_d"}  # never imported, inside a library function, typing only


def test_main_writes_unchecked_hash_bytecode_that_names_the_lambda_path(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert main([str(tmp_path), "app.handler", "app"]) == 0
    pyc = Path(importlib.util.cache_from_source(str(tmp_path / "lib_b.py")))
    data = pyc.read_bytes()
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked (PEP 552)
    assert b"/var/task/lib_b.py" in data
    assert not Path(importlib.util.cache_from_source(str(tmp_path / "lib_c.py"))).exists()
    assert main([]) == 2


def test_every_artifact_ships_each_of_our_packages_its_handler_can_import() -> None:
    """src/Makefile's `finish` lists the code folders of each artifact: every package of ours the
    handler reaches (lazily too) must be among them, or the function fails to import on Lambda."""
    import re

    src = Path(__file__).resolve().parent.parent / "src"
    ours = {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    builds = re.findall(
        r"^build-(\w+):.*?\$\(call finish,([^,]+),([\w.]+)\)", (src / "Makefile").read_text(), re.M | re.S
    )
    assert len(builds) >= 6
    for function, folders, handler in builds:
        reached = {name.split(".")[0] for name in closure(str(src), handler, ours)} & ours
        shipped = set(folders.split())
        assert reached <= shipped, (
            f"{function} ships {sorted(shipped)} but its handler imports {sorted(reached - shipped)}"
        )
