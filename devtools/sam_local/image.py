"""A Lambda-like python3.13 image built on this machine (no image registry is reachable here).

Debian trixie's minbase (its python3 is 3.13) from debootstrap, awslambdaric and a boto3 standing
in for the runtime's from PyPI, a /var/runtime/bootstrap that execs `python3.13 -m awslambdaric`.
The root file system is cached as a tarball under .cache/sam-local/ (gitignored) and keyed by this
recipe, so only the first run pays for debootstrap (about 70 s); `docker import` takes seconds.
SAM adds its Runtime Interface Emulator (shipped in the aws-sam-cli wheel) on top by itself.
"""

# ruff: noqa: S603, S607 - fixed commands: ip, nsenter, dockerd, docker, apt-get, debootstrap, tar, pip, sam
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "sam-local"
SUITE, MIRROR = "trixie", "http://deb.debian.org/debian"
# awslambdaric 4.2.2 has cp313 manylinux wheels; boto3 is the one SAM CLI pins (a runtime's boto3).
PACKAGES = ("awslambdaric==4.2.2", "boto3==1.43.108")
PLATFORMS = {"x86_64": ("amd64", "manylinux2014_x86_64"), "arm64": ("arm64", "manylinux2014_aarch64")}
# LOCAL_FORWARD (baked into a test image): relay the container's loopback ports to the local stack,
# so the sandbox is reached at http://127.0.0.1:PORT as the settings require of a plain-http URL.
BOOTSTRAP = """#!/bin/sh
if [ -n "$LOCAL_FORWARD" ]; then
  /var/lang/bin/python3.13 /var/runtime/local_forward.py &
  i=0
  while [ ! -e /tmp/.local-forward-ready ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
fi
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec /var/lang/bin/python3.13 -m awslambdaric "$_HANDLER"
"""
LOCAL_FORWARD = """import os, socket, threading

def pipe(source, target):
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    try:
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass

def serve(listener, remote):
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(remote, timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

for spec in os.environ["LOCAL_FORWARD"].split():
    local, remote = spec.split("=")
    listener = socket.create_server(("127.0.0.1", int(local)))
    host, port = remote.rsplit(":", 1)
    threading.Thread(target=serve, args=(listener, (host, int(port))), daemon=True).start()
open("/tmp/.local-forward-ready", "w").close()
threading.Event().wait()
"""
IMAGE_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "PYTHONPATH": "/var/runtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TZ": ":/etc/localtime",
}


def recipe_key(arch: str) -> str:
    recipe = repr((SUITE, PACKAGES, PLATFORMS[arch], BOOTSTRAP, LOCAL_FORWARD, sorted(IMAGE_ENV.items())))
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def rootfs_tarball(arch: str = "x86_64", *, log: Path | None = None) -> Path:
    """The cached root file system for `arch`, built first when missing (needs root and debootstrap;
    arm64 also needs qemu-user-static for debootstrap's second stage)."""
    tarball = CACHE / f"python3.13-{arch}-{recipe_key(arch)}.tar"
    if tarball.is_file():
        return tarball
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is needed to build the Lambda image (apt-get install debootstrap)")
    CACHE.mkdir(parents=True, exist_ok=True)
    debian_arch, pip_platform = PLATFORMS[arch]
    out = log.open("ab") if log else subprocess.DEVNULL
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        subprocess.run(
            [
                *("debootstrap", "--variant=minbase", f"--arch={debian_arch}", "--include=python3,ca-certificates"),
                *(SUITE, str(rootfs), MIRROR),
            ],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"),
                *("--target", str(rootfs / "var/runtime"), "--platform", pip_platform),
                *("--python-version", "3.13", "--implementation", "cp", "--only-binary=:all:", *PACKAGES),
            ],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        (rootfs / "var/lang/bin").mkdir(parents=True, exist_ok=True)
        (rootfs / "var/lang/bin/python3.13").symlink_to("/usr/bin/python3.13")
        (rootfs / "var/task").mkdir(parents=True, exist_ok=True)
        bootstrap = rootfs / "var/runtime/bootstrap"
        bootstrap.write_text(BOOTSTRAP)
        bootstrap.chmod(0o755)
        (rootfs / "var/runtime/local_forward.py").write_text(LOCAL_FORWARD)
        for doc in ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / doc, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
    return tarball


def import_image(tarball: Path, repository: str, *, env: dict[str, str] | None = None) -> str:
    """`docker import` the root file system as `repository:latest` with the runtime's entry point
    and environment (plus `env`, e.g. AWS_ENDPOINT_URL, which SAM would not pass to a function)."""
    changes = ['ENTRYPOINT ["/var/runtime/bootstrap"]', "WORKDIR /var/task"]
    changes += [f"ENV {name}={value}" for name, value in {**IMAGE_ENV, **(env or {})}.items()]
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    image = f"{repository}:latest"
    subprocess.run([*command, str(tarball), image], check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))
    return image


if __name__ == "__main__":
    print(rootfs_tarball(sys.argv[1] if len(sys.argv) > 1 else "x86_64", log=Path("/dev/stderr")))
