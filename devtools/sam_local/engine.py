"""A private Docker engine inside a network namespace this run creates.

Lambda containers cannot use the host network, so dockerd, its bridge and every server they talk
to (moto, the sandbox) run inside one namespace (`ip netns add`): nothing outside it or loopback
is ever addressed. dockerd listens on a socket of its own with its own data and exec roots, so it
never meets another engine on the machine. Needs root and Debian's docker.io (installed with
apt-get when missing).
"""

# ruff: noqa: S603, S607 - fixed commands: ip, nsenter, dockerd, docker, apt-get, debootstrap, tar, pip, sam
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.sam_local.image import CACHE

BRIDGE_CIDR = "172.29.93.1/24"  # the namespace's own Docker bridge; its gateway is where servers bind
GATEWAY = BRIDGE_CIDR.split("/", maxsplit=1)[0]


@dataclass(frozen=True)
class Engine:
    namespace: str
    socket: Path
    gateway: str = GATEWAY

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}

    def run(
        self, command: list[str], *, cwd: Path | None = None, capture_output: bool = False, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`command` inside the namespace, talking to this engine."""
        return subprocess.run(
            [*enter(self.namespace), *command],
            check=False,
            env=self.env,
            text=True,
            cwd=cwd,
            capture_output=capture_output,
            timeout=timeout,
        )


def enter(namespace: str) -> list[str]:
    """Into the namespace's network only: `ip netns exec` would also remount /sys, hiding the
    cgroup hierarchies dockerd needs ("Devices cgroup isn't mounted")."""
    return ["nsenter", f"--net=/run/netns/{namespace}"]


def ensure_installed(commands: dict[str, str]) -> None:
    """apt-get install the Debian package of each missing command ({command: package})."""
    missing = sorted({package for command, package in commands.items() if shutil.which(command) is None})
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_docker_installed() -> None:
    ensure_installed({"dockerd": "docker.io", "debootstrap": "debootstrap"})


@contextmanager
def private_engine(name: str | None = None, *, startup_timeout: float = 60.0) -> Iterator[Engine]:
    """Create the namespace, start dockerd in it, yield; then stop dockerd and delete the namespace."""
    if os.geteuid() != 0:
        raise PermissionError("a private Docker engine needs root (network namespace, dockerd)")
    ensure_docker_installed()
    namespace = name or f"bwp-invoke-{os.getpid()}"
    run_dir = Path(f"/run/{namespace}")
    data_root = CACHE / "docker-data"  # kept between runs: imported images and SAM's derived ones
    for path in (run_dir, data_root):
        path.mkdir(parents=True, exist_ok=True)
    socket = run_dir / "docker.sock"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    dockerd: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([*enter(namespace), "ip", "link", "set", "lo", "up"], check=True)
        log = (run_dir / "dockerd.log").open("wb")
        dockerd = subprocess.Popen(
            [
                *enter(namespace),
                *("dockerd", "-H", f"unix://{socket}", "--bip", BRIDGE_CIDR, "--log-level", "warn"),
                *("--data-root", str(data_root), "--exec-root", str(run_dir / "exec")),
                *("--pidfile", str(run_dir / "docker.pid"), "--storage-driver", "overlay2"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        engine = Engine(namespace, socket)
        deadline = time.monotonic() + startup_timeout
        while engine.run(["docker", "info"], capture_output=True).returncode != 0:
            if dockerd.poll() is not None or time.monotonic() > deadline:
                tail = (run_dir / "dockerd.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dockerd did not start in namespace {namespace}:\n{tail}")
            time.sleep(0.5)
        yield engine
    finally:
        if dockerd is not None:
            _remove_containers(namespace, socket)
            dockerd.terminate()
            try:
                dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait()
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)


def _remove_containers(namespace: str, socket: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}"}
    ids = subprocess.run(["docker", "ps", "-aq"], check=False, env=env, capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], check=False, env=env, capture_output=True)
