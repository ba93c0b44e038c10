"""Lock the Lambda artifacts' dependencies with hashes: `make lock` (after editing a requirements file).

    src/requirements.txt        -> src/requirements.lock        (every function)
    src/requirements-oauth.txt  -> src/requirements-oauth.lock  (OAuthFunction: + pyjwt[crypto])

pip itself resolves each file for Lambda's python3.13 on both architectures (`pip install
--dry-run --report`, the platform tags src/Makefile builds for); the lock pins every distribution,
dependencies included, with the sha256 of each wheel either architecture installs. src/Makefile
installs a lock with `--require-hashes --no-deps`: a changed or substituted file fails the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LOCKS = {"requirements.txt": "requirements.lock", "requirements-oauth.txt": "requirements-oauth.lock"}
# src/Makefile's PLATFORMS_arm64 and PLATFORMS_x86_64 (Amazon Linux 2023, glibc 2.34).
PLATFORMS = {
    "arm64": ["manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64"],
    "x86_64": ["manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"],
}


def resolve(requirements: Path, platforms: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (version, sha256 of the wheel pip picks), as pip resolves it for these platforms."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"]
        command += [
            "--report",
            str(report),
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            "3.13",
        ]
        command += [arg for platform in platforms for arg in ("--platform", platform)]
        command += ["--target", str(Path(scratch) / "target"), "-r", str(requirements)]
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)  # noqa: S603 - pip, our arguments
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {
        item["metadata"]["name"].lower().replace("_", "-"): (
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    }


def lock_text(source: str, resolutions: dict[str, dict[str, tuple[str, str]]]) -> str:
    names = sorted(set().union(*resolutions.values()))
    lines = [f"# Generated from {source} by scripts/lock_requirements.py (make lock): do not edit.", ""]
    for name in names:
        versions = {arch: found[name][0] for arch, found in resolutions.items() if name in found}
        if len(set(versions.values())) != 1 or len(versions) != len(resolutions):
            raise SystemExit(f"{source}: {name} resolves differently per architecture: {versions}")
        hashes = sorted({found[name][1] for found in resolutions.values()})
        lines.append(f"{name}=={next(iter(versions.values()))} \\")
        lines += [
            f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else "") for i, digest in enumerate(hashes)
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    for source, lock in LOCKS.items():
        resolutions = {arch: resolve(SRC / source, platforms) for arch, platforms in PLATFORMS.items()}
        (SRC / lock).write_text(lock_text(source, resolutions), encoding="utf-8")
        print(f"src/{lock}: {len(set().union(*resolutions.values()))} distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
