"""Import smoke test of the arm64 artifacts (what is deployed) under qemu-user-static.

An arm64 invoke under qemu takes about 45 s here, past the functions' timeouts, so the arm64
artifacts are only imported: each function's handler module and the native modules of its
artifact (pydantic-core, cryptography, cffi) in an aarch64 python3.13 from Debian trixie. That
python comes from `debootstrap --foreign` (its first stage downloads the packages; they are
unpacked with dpkg-deb, no second stage, so no binfmt registration is needed: qemu runs it with
`-L` as the loader prefix). Cached under .cache/sam-local/ like the x86_64 image.
"""

# ruff: noqa: S603, S607 - fixed commands: debootstrap, dpkg-deb, pip, qemu-aarch64-static
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devtools.sam_local.image import CACHE, MIRROR, PACKAGES, SUITE
from devtools.sam_local.invoke import sam_build
from devtools.template import load_template

QEMU = "qemu-aarch64-static"
NATIVE = ("pydantic_core._pydantic_core", "cryptography.hazmat.bindings._rust", "_cffi_backend")
SMOKE = """
import importlib, importlib.util, json, platform, sys
handler, native = sys.argv[1], sys.argv[2:]
importlib.import_module(handler)
imported = [name for name in native if importlib.util.find_spec(name.split(".")[0]) and importlib.import_module(name)]
import awslambdaric.lambda_runtime_client, boto3
print(json.dumps({"machine": platform.machine(), "handler": handler, "native": imported}))
"""


def arm64_python() -> Path:
    """The root of an unpacked aarch64 Debian trixie with python3.13 (built once, then cached)."""
    root = CACHE / "arm64-python"
    if (root / "usr/bin/python3.13").is_file():
        return root
    if shutil.which("debootstrap") is None or shutil.which(QEMU) is None:
        raise RuntimeError("needs debootstrap and qemu-user-static (apt-get install debootstrap qemu-user-static)")
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="arm64-") as scratch:
        tree = Path(scratch) / "root"
        subprocess.run(
            [
                *("debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", "--include=python3"),
                *(SUITE, str(tree), MIRROR),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for deb in sorted((tree / "var/cache/apt/archives").glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        runtime = tree / "var/runtime"
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(runtime)),
                *("--platform", "manylinux2014_aarch64", "--python-version", "3.13", "--implementation", "cp"),
                *("--only-binary=:all:", *PACKAGES),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tree.rename(root)
    return root


def smoke() -> dict[str, dict[str, object]]:
    """Each function's handler and native modules imported from its arm64 artifact under qemu
    (two at a time: one per core)."""
    template = sam_build("arm64")
    root = arm64_python()
    handlers = {
        logical_id: resource["Properties"]["Handler"].rpartition(".")[0]
        for logical_id, resource in load_template()["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }

    def one(logical_id: str) -> dict[str, object]:
        artifact = template.parent / logical_id
        done = subprocess.run(
            [QEMU, "-L", str(root), str(root / "usr/bin/python3.13"), "-c", SMOKE, handlers[logical_id], *NATIVE],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env={"PYTHONPATH": f"{artifact}:{root / 'var/runtime'}", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{logical_id}: importing {handlers[logical_id]} under qemu failed:\n{done.stderr[-3000:]}"
            )
        result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
        return result

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(handlers, pool.map(one, handlers), strict=True))


if __name__ == "__main__":
    print(json.dumps(smoke(), indent=2))
