"""Compile the bytecode a Lambda artifact's handler can import (src/Makefile's `finish` step).

    python pyc_closure.py ARTIFACTS_DIR HANDLER_MODULE OWN_PACKAGE...

Every module of the artifact the handler can import is compiled to an unchecked-hash .pyc (paths as
/var/task/...): imports anywhere in our own packages (routes import lazily), module-level imports
outside `if TYPE_CHECKING:` in libraries, and all of WHOLE: packages that import by name at run time
(pydantic's lazy attributes, requests' `__import__("idna")`) or inside the functions we call
(cryptography's OpenSSL backend, on the verifier's first key load). `make bench` reports any module
a cold start imports that has no .pyc. Why unchecked-hash and why a closure rather than compileall:
src/Makefile's header (measured: +1.6 MB for the closure, +3.1 MB for every module).

It lives in src/ because `sam build` copies only the function's CodeUri (src/) to build it; it is
never copied into an artifact.
"""

from __future__ import annotations

import ast
import os
import py_compile
import sys
from collections.abc import Iterable

# packages that import by name at run time, or lazily on every request (the verifier's key load)
WHOLE = ("pydantic", "idna", "cryptography.hazmat.backends", "cryptography.hazmat.bindings")
SKIP = {"v1", "deprecated", "experimental", "__pycache__"}


def path_of(root: str, name: str) -> str | None:
    base = os.path.join(root, *name.split("."))
    return next((p for p in (base + ".py", os.path.join(base, "__init__.py")) if os.path.isfile(p)), None)


def imported_by(name: str, path: str, own: set[str]) -> list[str]:
    """The modules `name` (at `path`) can import: all of them in our packages, else module level."""
    deep = name.split(".", maxsplit=1)[0] in own
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found: list[str] = []

    def visit(nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
                visit(node.orelse)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not deep:
                continue
            elif isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                found.append(base)
                found.extend(f"{base}.{alias.name}" for alias in node.names)
            else:
                visit(ast.iter_child_nodes(node))

    with open(path, "rb") as source:
        visit(ast.parse(source.read()).body)
    return found


def closure(root: str, seed: str, own: set[str]) -> dict[str, str]:
    """Module name -> file of everything the handler `seed` can import inside `root`."""
    todo = [seed]
    for top in WHOLE:
        for folder, dirs, files in os.walk(os.path.join(root, *top.split("."))):
            dirs[:] = [d for d in dirs if d not in SKIP]
            todo += [
                os.path.relpath(os.path.join(folder, f[:-3]), root).replace(os.sep, ".")
                for f in files
                if f.endswith(".py")
            ]
    modules: dict[str, str] = {}
    while todo:
        parts = todo.pop().removesuffix(".__init__").split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name not in modules and (path := path_of(root, name)):
                modules[name] = path
                todo.extend(imported_by(name, path, own))
    return modules


def compile_closure(root: str, seed: str, own: set[str]) -> int:
    modules = closure(root, seed, own)
    for path in sorted(set(modules.values())):
        py_compile.compile(
            path,
            dfile="/var/task/" + os.path.relpath(path, root),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    return len(modules)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root, seed, own = argv[0], argv[1], set(argv[2:])
    print(f"compiled {compile_closure(root, seed, own)} modules the handler {seed} can import")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
