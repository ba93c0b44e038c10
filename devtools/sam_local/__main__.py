"""`make invoke-NAME`: events/NAME.json through the real `sam local invoke`, against moto and the
sandbox started here, with an env file generated per invoke (real table name, secret ARN, local
endpoints). With a running Docker engine (`docker info`), that engine and its bridge; else, as root
with Debian's dockerd installed, a private dockerd inside a network namespace made for this run.
Exit 3 (and nothing run) when neither is available: the Makefile then invokes in-process.

    python -m devtools.sam_local events/health.json [...]
"""

# ruff: noqa: S603, S607 - fixed commands: ip, nsenter, dockerd, docker, apt-get, debootstrap, tar, pip, sam
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devtools.sam_local.image import ROOT, rootfs_tarball
from devtools.sam_local.invoke import sam_build

PYTHON = ROOT / ".venv" / "bin" / "python"
NO_RUNTIME = 3


def _driver(samples: list[str], bind: str, template: Path, output: Path) -> list[str]:
    command = [str(PYTHON), "-m", "devtools.sam_local.invoke", "--logs", "--bind", bind]
    return [*command, "--template", str(template), "--output", str(output), *samples]


def main(samples: list[str]) -> int:
    if not samples:
        print(__doc__, file=sys.stderr)
        return 2
    running = subprocess.run(["docker", "info"], check=False, capture_output=True).returncode == 0
    if not running and (os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("debootstrap") is None):
        return NO_RUNTIME
    template = sam_build()
    rootfs_tarball("x86_64")
    with tempfile.TemporaryDirectory(prefix="bwp-sam-invoke-") as scratch:
        output = Path(scratch) / "answers.json"
        if running:
            gateway = subprocess.run(
                ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            code = subprocess.run(_driver(samples, gateway, template, output), check=False, cwd=ROOT).returncode
        else:
            from devtools.sam_local.engine import private_engine

            with private_engine() as engine:
                code = engine.run(_driver(samples, engine.gateway, template, output), cwd=ROOT).returncode
        if code != 0:
            return code
        answers = json.loads(output.read_text(encoding="utf-8"))
    print(json.dumps(answers[Path(samples[0]).stem] if len(samples) == 1 else answers, indent=2))
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    sys.exit(main(sys.argv[1:]))
