"""The world the event and OAuth benchmarks run in: moto in server mode (DynamoDB one request at a
time, as devtools' local stack does), the Buy with Prime sandbox, and boto3 clients that count
and time their calls.

Counting uses botocore's own event hooks: `before-send` fires once per HTTP request actually sent
(retries included). Timing wraps each client call and keeps the intervals, so the time during
which at least one DynamoDB call was in flight can be taken out of a batch's wall time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
import requests

from devtools.local_stack.moto_server import SerialisedMotoServer
from devtools.template import table_create_arguments
from sandbox.handler import SandboxHandler
from sandbox.server import BuyWithPrimeSandbox

TABLE_NAME = "bwp-bench"
CLIENT_ID = "amzn1.application-oa2-client.bench"
CLIENT_SECRET = "bench-client-secret"  # noqa: S105 - a local sandbox's throw-away value
API_ORIGIN = "https://bench.execute-api.us-east-1.amazonaws.com"
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "buy-with-prime-integration",
    "POWERTOOLS_METRICS_NAMESPACE": "BuyWithPrimeIntegration",
    "POWERTOOLS_LOG_LEVEL": "INFO",  # the template's default; the bench sends the logs nowhere
}


class Calls:
    """AWS requests sent (per operation) and the [start, end] of every client call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.intervals: list[tuple[float, float]] = []
        self.clients_created_s = 0.0  # boto3.client(...) itself: loading the service's model

    def count(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.requests[event_name.split(".", 1)[1]] += 1  # before-send.<service>.<Operation>

    def add(self, start: float, end: float) -> None:
        with self._lock:
            self.intervals.append((start, end))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.intervals.clear()

    def total(self) -> int:
        return sum(self.requests.values())

    def busy(self, start: float, end: float) -> float:
        """Seconds within [start, end] during which at least one call was in flight."""
        spans = sorted((max(a, start), min(b, end)) for a, b in self.intervals if b > start and a < end)
        busy, reach = 0.0, start
        for a, b in spans:
            if b > reach:
                busy += b - max(a, reach)
                reach = b
        return busy


class TimedClient:
    """A boto3 client whose calls are counted (HTTP requests) and timed (whole calls)."""

    def __init__(self, service: str, calls: Calls) -> None:
        start = time.perf_counter()
        self._client = boto3.client(service)
        calls.clients_created_s += time.perf_counter() - start
        self._client.meta.events.register("before-send", calls.count)
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_"):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._calls.add(start, time.perf_counter())

        return timed


def instrumented[T](dependencies: type[T], environ: dict[str, str], calls: Calls) -> T:
    """The function's own Dependencies, with AWS clients that count and time, still created on
    first use (so a fresh container pays for them where it really does)."""

    class Instrumented(dependencies):  # type: ignore[valid-type,misc]
        @cached_property
        def dynamodb(self) -> Any:
            return TimedClient("dynamodb", calls)

        @cached_property
        def secretsmanager(self) -> Any:
            return TimedClient("secretsmanager", calls)

    deps: T = Instrumented(environ)
    return deps


class SandboxTimer:
    """Time spent waiting on HTTP requests (the Buy with Prime client's, to the sandbox): wraps
    `requests.Session.send` while active. botocore does not use requests, so AWS is not counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.intervals: list[tuple[float, float]] = []
        self._original: Any = None

    def __enter__(self) -> SandboxTimer:
        self._original = original = requests.Session.send
        timer = self

        def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(session, request, **kwargs)
            finally:
                with timer._lock:
                    timer.intervals.append((start, time.perf_counter()))

        requests.Session.send = send  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: object) -> None:
        requests.Session.send = self._original  # type: ignore[method-assign]

    def spent(self) -> float:
        with self._lock:
            return sum(b - a for a, b in self.intervals)

    def reset(self) -> None:
        with self._lock:
            self.intervals.clear()


@dataclass
class World:
    sandbox: BuyWithPrimeSandbox
    environ: dict[str, str]
    endpoint_url: str


@contextmanager
def local_world() -> Iterator[World]:
    saved = dict(os.environ)
    server = SerialisedMotoServer()
    server.start()
    os.environ.update({**AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": server.endpoint_url})
    os.environ.pop("AWS_PROFILE", None)
    try:
        requests.post(f"{server.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()  # moto's state is global
        setup = boto3.session.Session()  # its own model cache: the functions' first clients load theirs
        setup.client("dynamodb").create_table(**table_create_arguments(name=TABLE_NAME))
        secret = setup.client("secretsmanager").create_secret(
            Name="bwp-bench-client-credentials",
            SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        )
        # The sandbox answers with two writes (headers, body); with Nagle's algorithm on, the client's
        # delayed ACK holds the second for ~40 ms on every reused connection: not Buy with Prime's
        # behaviour, so off (for this process only).
        SandboxHandler.disable_nagle_algorithm = True
        with BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET, redirect_uri=f"{API_ORIGIN}/install") as sandbox:
            environ = {
                "TABLE_NAME": TABLE_NAME,
                "CLIENT_CREDENTIALS_SECRET_ARN": secret["ARN"],
                "BWP_AUTHORIZE_URL": sandbox.authorize_url,
                "BWP_TOKEN_URL": sandbox.token_url,
                "BWP_GRAPHQL_URL": sandbox.graphql_url,
                "BWP_VERIFICATION_PUBLIC_KEY": sandbox.signer.public_key_pem,
                "HYDRATION_MAX_WORKERS": "10",  # the template's value
            }
            yield World(sandbox, environ, server.endpoint_url)
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
