"""LocalStack community on 127.0.0.1, run from .venv-localstack (`make localstack`) without Docker:
a real CloudFormation engine for tests/e2e/test_cloudformation_deploy.py.

Everything it writes goes under one temporary directory (FILESYSTEM_ROOT, TMPDIR, HOME); its DNS
server is off; DynamoDB is its bundled moto and no Lambda runtime is ever started
(localstack-offline/). It is started in its own process group and stopped with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from devtools.template import PROJECT_ROOT

LOCALSTACK_PYTHON = PROJECT_ROOT / ".venv-localstack" / "bin" / "python"
REGION = "us-east-1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "localstack.log"
        self._process: subprocess.Popen[bytes] | None = None

    def client_environment(self) -> dict[str, str]:
        """The environment for a client of this LocalStack (sam, boto3): fake credentials, this
        endpoint, no profile or config file of the person running the tests."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        home = self.root / "client-home"
        home.mkdir(exist_ok=True)
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_CONFIG_FILE=str(home / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            SAM_CLI_TELEMETRY="0",
            HOME=str(home),
        )
        return env

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def start(self) -> None:
        if not LOCALSTACK_PYTHON.exists():
            raise RuntimeError(f"{LOCALSTACK_PYTHON} is missing: run `make localstack`")
        for name in ("fs", "tmp", "home"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_"))}
        env.update(
            GATEWAY_LISTEN=f"127.0.0.1:{self.port}",
            OVERRIDE_IN_DOCKER="0",  # this VM looks like a container to it
            FILESYSTEM_ROOT=str(self.root / "fs"),
            TMPDIR=str(self.root / "tmp"),
            HOME=str(self.root / "home"),
            DNS_ADDRESS="0",  # no DNS server (it would bind port 53)
            DISABLE_EVENTS="1",  # no analytics
            PROVIDER_OVERRIDE_DYNAMODB="moto",
            PROVIDER_OVERRIDE_DYNAMODBSTREAMS="moto",
            LAMBDA_RUNTIME_EXECUTOR="offline",
        )
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"LocalStack exited ({self._process.returncode}):\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"LocalStack not ready after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_localstack/init/ready", timeout=2) as answer:  # noqa: S310
                return bool(json.load(answer).get("completed"))
        except (OSError, ValueError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
