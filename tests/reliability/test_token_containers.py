"""The token store with Lambda containers as separate OS processes (tests/reliability/
token_container.py): each has only its own memory, shares the moto server and the sandbox, and is
killed with SIGKILL to be recycled. Every test ends asserting that no refresh token was presented
twice (the sandbox counts every presentation of an already-redeemed one)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import IO, Any

import boto3
import pytest
import requests

from devtools.template import PROJECT_ROOT, table_create_arguments
from sandbox.server import BuyWithPrimeSandbox
from shared.models import TokenSet
from shared.store.installations import InstallationStore
from shared.store.keys import rescued_tokens_key
from tests.conftest import CLIENT_ID, CLIENT_SECRET, TABLE_NAME
from tests.reliability.test_token_time import SCALED
from tests.reliability.token_container import ANSWER

pytestmark = pytest.mark.slow
INSTALLATION = "amzn1.bwp.installation.processes"


class ContainerProcess:
    def __init__(self, environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.token_container"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.logs: list[str] = []
        assert self._read() == {"ready": True}

    def send(self, **command: Any) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()

    def _read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        while True:
            line = stdout.readline()
            assert line, f"the container exited ({self.process.poll()})"
            if line.startswith(ANSWER):
                return dict(json.loads(line[len(ANSWER) :]))
            self.logs.append(line)

    def ask(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self._read()

    def result(self) -> dict[str, Any]:
        return self._read()

    def kill(self) -> None:
        """SIGKILL; its log lines join the session's scan for leaked tokens and secrets."""
        from tests.security.log_scan import BUFFER

        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        BUFFER.add("".join(self.logs))


@pytest.fixture
def world(moto_server: str, sandbox: BuyWithPrimeSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_create_arguments(name=TABLE_NAME))
    secret = boto3.client("secretsmanager").create_secret(
        Name="bwp-credentials", SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BWP_", "BUDGET", "CLOCK_OFFSET")) and k != "PYTHONPATH"
    }
    base.update(
        {
            "AWS_ENDPOINT_URL": moto_server,
            "TABLE_NAME": TABLE_NAME,
            "CLIENT_CREDENTIALS_SECRET_ARN": secret["ARN"],
            "BWP_TOKEN_URL": sandbox.token_url,
            "BWP_GRAPHQL_URL": sandbox.graphql_url,
            "BUDGET": json.dumps(asdict(SCALED)),
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]),
        }
    )
    started: list[ContainerProcess] = []

    def container(**extra: str) -> ContainerProcess:
        process = ContainerProcess({**base, **extra})
        started.append(process)
        return process

    pair = sandbox.issue_tokens(INSTALLATION)
    tokens = TokenSet.model_validate(pair)
    InstallationStore(dynamodb, TABLE_NAME).save_installation(INSTALLATION, tokens, int(time.time()) - 899)
    try:
        yield container, dynamodb
    finally:
        for process in started:
            process.kill()
    assert sandbox.replayed_refresh_tokens == 0, "a refresh token was presented after it had been redeemed"


def _sha(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def test_case_1_two_processes_and_a_slow_failing_endpoint_refresh_once(
    world: Any, sandbox: BuyWithPrimeSandbox
) -> None:
    container, dynamodb = world
    a, b = container(), container()
    sandbox.latency("token", 0.8)
    sandbox.fail_next("token", 503, times=3)
    a.send(op="token", installation_id=INSTALLATION, seconds=20)
    time.sleep(0.8)  # A is inside its retry loop, holding the lease
    answer_b = b.ask(op="token", installation_id=INSTALLATION, seconds=20)
    answer_a = a.result()
    assert "token_sha256" in answer_a and answer_a == answer_b
    assert sandbox.calls["token:refresh_token"] == 4
    stored = InstallationStore(dynamodb, TABLE_NAME).get(INSTALLATION)
    assert stored is not None and stored.status == "active" and _sha(stored.access_token) == answer_a["token_sha256"]


def test_case_2_a_killed_container_after_a_throttled_store_loses_nothing(
    world: Any, sandbox: BuyWithPrimeSandbox
) -> None:
    container, dynamodb = world
    a = container()
    assert a.ask(op="throttle", operation="UpdateItem", times=10_000, after=1) == {"ok": True}
    answer_a = a.ask(op="token", installation_id=INSTALLATION, seconds=3)
    assert "token_sha256" in answer_a
    a.kill()  # recycled: whatever it kept in memory is gone
    assert dynamodb.get_item(TableName=TABLE_NAME, Key=rescued_tokens_key(INSTALLATION)).get("Item") is not None
    b = container(CLOCK_OFFSET="120")  # later, after A's lease
    assert b.ask(op="token", installation_id=INSTALLATION, seconds=10) == answer_a
    assert sandbox.calls["token:refresh_token"] == 1
    stored = InstallationStore(dynamodb, TABLE_NAME).get(INSTALLATION)
    assert stored is not None and stored.status == "active" and _sha(stored.access_token) == answer_a["token_sha256"]


def test_a_container_with_no_time_left_neither_redeems_nor_blocks_the_next(
    world: Any, sandbox: BuyWithPrimeSandbox
) -> None:
    container, _ = world
    a = container()
    assert a.ask(op="token", installation_id=INSTALLATION, seconds=0.5) == {"error": "OutOfTimeError"}
    assert sandbox.calls["token:refresh_token"] == 0
    assert "token_sha256" in container().ask(op="token", installation_id=INSTALLATION, seconds=10)
    assert sandbox.calls["token:refresh_token"] == 1


def test_an_older_order_answer_arriving_last_never_replaces_the_newer_snapshot(world: Any, sandbox: Any) -> None:
    """Issue 9, case 2, with containers as separate processes: A's query is answered with the
    order's older state but slowly; meanwhile the order changes and B fetches and stores the newer
    state; A's answer lands last. The snapshot keeps the newer state (its server version)."""
    from sandbox.events import partner_event, resource_path
    from shared.store.event_records import EventStore

    container, dynamodb = world
    slow_enough = json.dumps({**asdict(SCALED), "graphql": {**asdict(SCALED.graphql), "read_timeout": 6.0}})
    a, b = container(BUDGET=slow_enough), container(BUDGET=slow_enough)
    order_id = "322-RACE-000001"

    def body(order: str) -> str:
        event = partner_event(
            "ORDER_CONFIRMED",
            [resource_path("amzn1.bp.race", order_id=order)],
            event_format="legacy",
            installation_id=INSTALLATION,
        )
        return json.dumps(event)

    for process, warm in ((a, "322-WARM-00000A"), (b, "322-WARM-00000B")):  # cold starts out of the race
        assert process.ask(op="events", bodies=[body(warm)], seconds=20.0) == {"failures": []}
    state = {"id": order_id, "lineItems": [{"id": "li-1", "state": "PENDING"}]}
    sandbox.put_order(INSTALLATION, order_id, {**state, "updatedAt": "2026-12-01T10:00:00Z"})
    sandbox.hold_next_graphql_answer(2.0)
    before = sandbox.calls["graphql:order"]
    a.send(op="events", bodies=[body(order_id)], seconds=20.0)
    deadline = time.monotonic() + 10
    while sandbox.calls["graphql:order"] == before and time.monotonic() < deadline:  # A's query is in
        time.sleep(0.02)
    newer = {"id": order_id, "updatedAt": "2026-12-01T10:05:00Z", "lineItems": [{"id": "li-1", "state": "SHIPPED"}]}
    sandbox.put_order(INSTALLATION, order_id, newer)
    assert b.ask(op="events", bodies=[body(order_id)], seconds=20.0) == {"failures": []}
    assert a.result() == {"failures": []}  # processed too: its event is recorded, its older answer is not
    snapshot = EventStore(dynamodb, TABLE_NAME).order_snapshot(INSTALLATION, order_id)
    assert snapshot is not None and snapshot["lineItems"][0]["state"] == "SHIPPED"
