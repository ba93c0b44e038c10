"""The Lambda artifacts `make bench` measures, built by `sam build` into a scratch directory.

- after, arm64: template.yaml as it is (src/Makefile); zipped for the size that is deployed.
- after, x86_64: the same build for this machine (arm64 wheels cannot be imported on x86_64): a
  copy of the template with `Architectures: [x86_64]` and LAMBDA_ARCH=x86_64 for src/Makefile.
- before, arm64 / x86_64: the same template without `BuildMethod: makefile`, i.e. SAM's default
  python_pip build (all of src/requirements*.txt and src/ in both functions, no bytecode).

Each x86_64 artifact is then copied as Lambda sees it once SAM has zipped it: every file dated
1980-01-01 (SAM's zip entries carry no date), so timestamp-based .pyc no longer match.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import PROJECT_ROOT, SRC
from devtools.template import load_template

FUNCTIONS = ("OAuthFunction", "EventsFunction", "SweepFunction")
HANDLER_MODULE = {fn: fn.removesuffix("Function").lower() + ".handler" for fn in FUNCTIONS}
SAM = PROJECT_ROOT / ".venv-sam" / "bin" / "sam"
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
ZIP_EPOCH = 315_532_800  # 1980-01-01T00:00:00Z: the date of every file in a zip SAM makes
# What Lambda's python3.13 runtime provides next to the function (boto3 and what it imports).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3")


@dataclass(frozen=True)
class Build:
    name: str  # "after" or "before"
    arch: str  # "arm64" or "x86_64"
    directory: Path

    def function(self, logical_id: str) -> Path:
        return self.directory / logical_id


def work_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"bwp-bench-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _template_copy(target: Path, *, arch: str, makefile: bool) -> Path:
    """template.yaml as JSON (SAM reads both), CodeUri absolute, architecture and build method set."""
    template: dict[str, Any] = load_template()
    template.setdefault("Globals", {}).setdefault("Function", {})["Architectures"] = [arch]
    for logical_id in FUNCTIONS:
        resource = template["Resources"][logical_id]
        properties = resource["Properties"]
        properties["CodeUri"] = str((PROJECT_ROOT / properties["CodeUri"]).resolve())
        if not makefile:  # SAM's default build reads CodeUri/requirements.txt: give it all of them
            properties["CodeUri"] = str(_default_build_source(target.parent))
        properties.pop("Architectures", None)
        metadata = resource.get("Metadata") or {}
        if not makefile:
            metadata.pop("BuildMethod", None)
        elif metadata.get("BuildMethod") != "makefile":
            raise RuntimeError(f"template.yaml: {logical_id} no longer has Metadata BuildMethod: makefile")
        if metadata:
            resource["Metadata"] = metadata
        else:
            resource.pop("Metadata", None)
    target.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return target


def _default_build_source(scratch: Path) -> Path:
    """A copy of src/ whose requirements.txt is OAuthFunction's (everything, as one file)."""
    source = scratch / "default-build-src"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(PROJECT_ROOT / "src", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    everything = [
        line
        for path in ("requirements.txt", "requirements-oauth.txt")
        for line in (PROJECT_ROOT / "src" / path).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "-r"))
    ]
    (source / "requirements.txt").write_text("\n".join(everything) + "\n", encoding="utf-8")
    return source


def _sam_build(template: Path, build_dir: Path, arch: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # sam checks python3.13 on PATH
        "LAMBDA_ARCH": arch,  # read by src/Makefile
        "SAM_CLI_TELEMETRY": "0",
    }
    shutil.rmtree(build_dir, ignore_errors=True)
    command = [str(SAM), "build", "--template-file", str(template), "--build-dir", str(build_dir), "--parallel"]
    return subprocess.Popen(  # noqa: S603 - our own SAM CLI, fixed arguments
        command, cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def _fingerprint(template: Path) -> str:
    """What a build depends on: its template copy and every file under src/ but bytecode."""
    digest = hashlib.sha256(template.read_bytes())
    for path in sorted(SRC.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_all(root: Path, *, force: bool = False) -> tuple[dict[tuple[str, str], Build], list[str]]:
    """The four builds (after/before x arm64/x86_64); a build whose template and src/ are unchanged
    since the last run is reused. Returns the builds and which were built."""
    builds = {
        (name, arch): Build(name, arch, root / f"build-{name}-{arch}")
        for name in ("after", "before")
        for arch in ("arm64", "x86_64")
    }
    rebuilt = []
    for (name, arch), build in builds.items():  # one at a time: each already builds both functions at once
        template = _template_copy(root / f"template-{name}-{arch}.json", arch=arch, makefile=name == "after")
        stamp = build.directory / ".bench-fingerprint"
        fingerprint = _fingerprint(template)
        if not force and stamp.is_file() and stamp.read_text() == fingerprint:
            continue
        log = root / f"build-{name}-{arch}.log"
        if _sam_build(template, build.directory, arch, log).wait() != 0:
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"sam build ({name}, {arch}) failed:\n" + "\n".join(tail))
        stamp.write_text(fingerprint)
        rebuilt.append(f"{name}/{arch}")
    return builds, rebuilt


def zipped_size(directory: Path) -> int:
    """Bytes of the zip SAM would upload (deflate, one entry per file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, _, files in os.walk(directory):
            for name in sorted(files):
                path = Path(folder) / name
                entry = zipfile.ZipInfo(str(path.relative_to(directory)))  # dated 1980, as SAM's
                archive.writestr(entry, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return len(buffer.getvalue())


def zipped_sizes(directories: dict[str, Path]) -> dict[str, int]:
    with ThreadPoolExecutor(max_workers=4) as pool:  # zlib releases the GIL
        return dict(zip(directories, pool.map(zipped_size, directories.values()), strict=True))


def as_deployed(source: Path, target: Path, *, pyc: str = "shipped") -> Path:
    """A copy of an artifact as Lambda unpacks it (files dated 1980). `pyc`: "shipped" keeps the
    build's bytecode, "none" removes it, "timestamp" replaces it with plain `compileall` output."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)
    if pyc in {"none", "timestamp"}:
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache)
    if pyc == "timestamp":
        subprocess.run(  # noqa: S603 - the project's interpreter, fixed arguments
            [str(VENV_BIN / "python"), "-m", "compileall", "-q", "-j", "0", str(target)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    for folder, _, files in os.walk(target):
        for name in files:
            os.utime(Path(folder) / name, (ZIP_EPOCH, ZIP_EPOCH), follow_symlinks=False)
    return target


def runtime_dir(root: Path) -> Path:
    """What Lambda's python3.13 runtime puts after the function on sys.path: boto3 and its
    dependencies (here: links to .venv's, with the bytecode pip compiled for them)."""
    site = next((PROJECT_ROOT / ".venv" / "lib").glob("python3.13/site-packages"))
    target = root / "runtime"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for entry in site.iterdir():
        distribution = entry.name.split("-")[0] if entry.name.endswith(".dist-info") else None
        if entry.name in RUNTIME_PACKAGES or distribution in RUNTIME_DISTRIBUTIONS:
            (target / entry.name).symlink_to(entry)
    if not (target / "boto3").exists():
        raise RuntimeError(f"boto3 not found in {site}")
    return target


def interpreter() -> Path:
    """The python3.13 behind .venv (a fresh process without .venv's site-packages)."""
    out = subprocess.run(  # noqa: S603 - the project's interpreter, fixed arguments
        [str(VENV_BIN / "python"), "-c", "import sys; print(sys._base_executable)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


__all__ = ["FUNCTIONS", "HANDLER_MODULE", "SRC", "Build", "as_deployed", "build_all", "zipped_sizes"]
