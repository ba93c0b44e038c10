"""The idle sweep (issue 8, item 6): installations nobody refreshed for a day are refreshed through
the same token service and lease, found through the sparse sweep index (no Scan), within the
invocation's time; the re-authorisation gauge is counted from the same index."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from devtools.atomic_dynamodb import AtomicDynamoDB
from devtools.template import load_template, resolve_conditions
from sandbox.server import BuyWithPrimeSandbox
from shared.budget import DEFAULT_BUDGET, Deadline, TimeBudget
from shared.buy_with_prime import BuyWithPrimeClient
from shared.models import InstallationStatus, TokenSet
from shared.store.installations import SWEEP_SHARDS, InstallationStore
from shared.store.keys import SWEEP_INDEX, SWEEP_SHARD
from shared.tokens import TokenCache, TokenService
from sweep.idle import MAX_CONSECUTIVE_FAILURES, SweepReport, sweep_idle
from tests.conftest import TABLE_NAME
from tests.reliability.test_token_time import SCALED, StaticCredentials  # production's shape, a tenth of the time

DAY = 24 * 3600


class Fleet:
    """Installations in the table (moto) with tokens the sandbox really issued."""

    def __init__(self, sandbox: BuyWithPrimeSandbox, dynamodb: Any) -> None:
        self.sandbox = sandbox
        self.client = AtomicDynamoDB(dynamodb)
        self.store = InstallationStore(self.client, TABLE_NAME)

    def install(self, installation_id: str, *, ago: float) -> TokenSet:
        tokens = TokenSet.model_validate(self.sandbox.issue_tokens(installation_id))
        self.store.save_installation(installation_id, tokens, time.time() - ago)
        return tokens

    def token_service(self, budget: TimeBudget = DEFAULT_BUDGET) -> TokenService:
        client = BuyWithPrimeClient(
            self.sandbox.token_url,
            self.sandbox.graphql_url,
            session=requests.Session(),
            token_budget=budget.token,
            graphql_budget=budget.graphql,
        )
        return TokenService(self.store, client, StaticCredentials(), TokenCache(), budget=budget)

    def sweep(self, *, budget: TimeBudget = DEFAULT_BUDGET, seconds: float = 60.0, **options: Any) -> SweepReport:
        return sweep_idle(
            self.store,
            self.token_service(budget),
            idle_seconds=DAY,
            now=time.time(),
            deadline=Deadline.after(seconds),
            budget=budget,
            **options,
        )

    def refreshes(self) -> int:
        return self.sandbox.calls["token:refresh_token"]

    def indexed(self) -> dict[str, str]:
        """installation ID -> its sweep partition, read from the index itself."""
        found: dict[str, str] = {}
        for status in ("ACTIVE", "NEEDS_REAUTHORIZATION"):
            for shard in range(SWEEP_SHARDS):
                answer = self.client.query(
                    TableName=TABLE_NAME,
                    IndexName=SWEEP_INDEX,
                    KeyConditionExpression="#s = :s",
                    ExpressionAttributeNames={"#s": SWEEP_SHARD},
                    ExpressionAttributeValues={":s": {"S": f"{status}#{shard}"}},
                )
                for item in answer["Items"]:
                    found[item["pk"]["S"].removeprefix("INSTALLATION#")] = status
        return found


@pytest.fixture
def fleet(sandbox: BuyWithPrimeSandbox, dynamodb: Any) -> Any:
    yield Fleet(sandbox, dynamodb)
    assert sandbox.replayed_refresh_tokens == 0, "a refresh token was presented after it had been redeemed"


def test_the_index_follows_an_installation_through_its_lifecycle(fleet: Fleet) -> None:
    # given three installations: one stays, one is refused at refresh, one is uninstalled
    for name in ("stays", "refused", "leaves"):
        fleet.install(name, ago=0)
    assert fleet.indexed() == {"stays": "ACTIVE", "refused": "ACTIVE", "leaves": "ACTIVE"}
    # when one's refresh token is refused and another uninstalls
    refused = fleet.store.get("refused")
    assert refused is not None and refused.refresh_token
    assert fleet.store.acquire_refresh_lease("refused", "me", refused.refresh_token, int(time.time()), 30)
    assert fleet.store.mark_needs_reauthorization("refused", "me", refused.refresh_token, "invalid_grant", 1)
    fleet.store.uninstall("leaves", requested_at_ms=int(time.time() * 1000) + 1000, now=int(time.time()))
    # then the index shows exactly the live installations, each under its status
    assert fleet.indexed() == {"stays": "ACTIVE", "refused": "NEEDS_REAUTHORIZATION"}
    assert fleet.store.count_with_status(InstallationStatus.NEEDS_REAUTHORIZATION) == 1
    assert fleet.store.count_with_status(InstallationStatus.ACTIVE) == 1


def test_only_idle_installations_are_refreshed_and_nothing_is_scanned(fleet: Fleet) -> None:
    # given 12 installations idle for 25 h, 20 refreshed an hour ago and 4 idle ones needing re-authorisation
    idle = [f"idle-{i}" for i in range(12)]
    for name in idle:
        fleet.install(name, ago=DAY + 3600)
    recent = {name: fleet.install(name, ago=3600) for name in (f"recent-{i}" for i in range(20))}
    for i in range(4):
        fleet.install(f"refused-{i}", ago=DAY + 3600)
        fleet.sandbox.revoke_refresh_tokens(f"refused-{i}")
    fleet.sweep()  # the refused ones are found out by this first sweep (and the idle ones refreshed)
    fleet.sandbox.reset_observations()
    for name in idle:  # make them idle again
        fleet.client.update_item(
            TableName=TABLE_NAME,
            Key={"pk": {"S": f"INSTALLATION#{name}"}, "sk": {"S": "INSTALLATION"}},
            UpdateExpression="SET tokens_refreshed_at = :t, refreshed_hour = :h",
            ExpressionAttributeValues={":t": {"N": str(int(time.time()) - DAY - 3600)}, ":h": {"N": "0"}},
        )
    fleet.client.calls.clear()
    # when the sweep runs
    report = fleet.sweep()
    # then exactly the idle active ones were refreshed, once each, and are fresh now
    assert (report.candidates, report.refreshed, report.failed, report.deferred) == (12, 12, 0, False)
    assert fleet.refreshes() == 12
    for name in idle:
        installation = fleet.store.get(name)
        assert installation is not None
        assert installation.status is InstallationStatus.ACTIVE
        assert installation.tokens_refreshed_at >= time.time() - 60
    for name, tokens in recent.items():  # untouched
        installation = fleet.store.get(name)
        assert installation is not None
        assert installation.refresh_token == tokens.refresh_token.get_secret_value()
    # and the gauges come from the index
    assert (report.active, report.needing_reauthorization) == (32, 4)
    # and no Scan: one index Query per shard to find candidates, one per shard and status to count
    assert "scan" not in fleet.client.calls
    assert fleet.client.calls.count("query") == 3 * SWEEP_SHARDS
    # and a second sweep right after finds nothing to do
    assert fleet.sweep().candidates == 0
    assert fleet.refreshes() == 12


def test_a_refused_refresh_token_is_counted_and_gauged(fleet: Fleet) -> None:
    fleet.install("fine", ago=DAY + 60)
    fleet.install("revoked", ago=DAY + 60)
    fleet.sandbox.revoke_refresh_tokens("revoked")
    report = fleet.sweep()
    assert (report.refreshed, report.reauthorization_required, report.needing_reauthorization) == (1, 1, 1)
    revoked = fleet.store.get("revoked")
    assert revoked is not None and revoked.status is InstallationStatus.NEEDS_REAUTHORIZATION


def test_an_installation_refreshed_elsewhere_is_left_alone(fleet: Fleet) -> None:
    # given an idle installation whose lease another container holds right now
    fleet.install("busy", ago=DAY + 60)
    busy = fleet.store.get("busy")
    assert busy is not None and busy.refresh_token
    assert fleet.store.acquire_refresh_lease("busy", "other", busy.refresh_token, int(time.time()), 60)
    # when the sweep runs, then it skips it and presents no token
    report = fleet.sweep()
    assert (report.candidates, report.skipped, report.refreshed) == (1, 1, 0)
    assert fleet.refreshes() == 0


def test_sweep_and_an_events_batch_never_refresh_the_same_installation_twice(fleet: Fleet) -> None:
    # given 16 idle installations whose access tokens have expired, and a slow token endpoint
    names = [f"raced-{i}" for i in range(16)]
    for name in names:
        fleet.install(name, ago=DAY + 60)
    fleet.sandbox.latency("token", 0.05)
    events_container = fleet.token_service()  # another Lambda container: its own service and cache
    failures: list[BaseException] = []

    def batch() -> None:
        for name in names:
            try:
                events_container.access_token(name, deadline=Deadline.after(30))
            except Exception as error:  # noqa: BLE001 - asserted below
                failures.append(error)

    # when an events batch asks for tokens while the sweep runs
    thread = threading.Thread(target=batch)
    thread.start()
    report = fleet.sweep(workers=4)
    thread.join(60)
    # then every installation was refreshed exactly once, by one or the other (one the batch had
    # refreshed before the sweep's query reached it is no longer idle: not even a candidate)
    assert not failures
    assert fleet.refreshes() == len(names)
    assert report.refreshed + report.skipped == report.candidates <= len(names)


def test_the_sweep_stops_starting_refreshes_when_its_time_runs_out(fleet: Fleet) -> None:
    # given 24 idle installations and a token endpoint answering in 0.3 s
    for i in range(24):
        fleet.install(f"slow-{i}", ago=DAY + 60)
    fleet.sandbox.latency("token", 0.3)
    # when a sweep with 3.5 s (scaled budget: a refresh starts only while 1.3 + 0.6 s still fit) runs
    started = time.monotonic()
    first = fleet.sweep(budget=SCALED, seconds=3.5, workers=2)
    elapsed = time.monotonic() - started
    # then it refreshed some, deferred the rest, and ended within its time (a hard limit: wide margin)
    # (on a loaded machine a refresh may find no whole attempt left: it fails transiently, untouched)
    assert first.deferred
    assert 0 < first.refreshed < 24
    assert elapsed < 3.5 + 1.0
    # and the next run refreshes the rest; no installation was harmed
    second = fleet.sweep(budget=SCALED, seconds=60, workers=4)
    assert first.refreshed + second.refreshed == 24
    assert fleet.refreshes() == 24
    assert fleet.store.count_with_status(InstallationStatus.ACTIVE) == 24


def test_repeated_failures_stop_the_run_and_lose_nothing(fleet: Fleet) -> None:
    # given 40 idle installations and a token endpoint that answers 503 to everything
    tokens = {f"down-{i}": fleet.install(f"down-{i}", ago=DAY + 60) for i in range(40)}
    fleet.sandbox.fail_next("token", 503, times=1000)
    # when the sweep runs
    report = fleet.sweep(budget=SCALED, workers=2)
    # then it gives up after a run of failures instead of hammering the outage
    assert report.deferred
    assert MAX_CONSECUTIVE_FAILURES <= report.failed < MAX_CONSECUTIVE_FAILURES + 2
    assert report.candidates < 40
    # and every installation is as it was: active, same refresh token, lease released
    for name, pair in tokens.items():
        installation = fleet.store.get(name)
        assert installation is not None
        assert installation.status is InstallationStatus.ACTIVE
        assert installation.refresh_token == pair.refresh_token.get_secret_value()
        assert installation.lease_owner is None


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({}, id="own-table"),
        pytest.param(
            {
                "ExistingTableName": "restored",
                "ExistingTableStreamArn": (
                    "arn:aws:dynamodb:us-east-1:123456789012:table/restored/stream/2026-12-04T00:00:00.000"
                ),
            },
            id="adopted-table",
        ),
    ],
)
def test_the_sweep_role_allows_what_the_sweep_does_and_queries_only_the_index(
    fleet: Fleet, parameters: dict[str, str]
) -> None:
    # given what a sweep does to the table (refreshes, a refusal, the gauges)
    fleet.install("a", ago=DAY + 60)
    fleet.install("b", ago=DAY + 60)
    fleet.sandbox.revoke_refresh_tokens("b")
    fleet.client.calls.clear()
    fleet.sweep()
    used = {"dynamodb:" + "".join(part.title() for part in call.split("_")) for call in fleet.client.calls}
    # then the function's role allows each of those actions
    properties = resolve_conditions(load_template(), parameters)["Resources"]["SweepFunction"]["Properties"]
    statements = [s for p in properties["Policies"] if "Statement" in p for s in p["Statement"]]
    by_resource: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            by_resource.setdefault(_resource_name(resource), set()).update(actions)
    assert used - {"dynamodb:Query"} <= by_resource["table"]
    # and Query is allowed on the sweep index (and, for the tenant purge, the table), Scan nowhere
    assert "dynamodb:Query" in used
    assert by_resource["index/" + SWEEP_INDEX] == {"dynamodb:Query"}
    assert all("dynamodb:Scan" not in actions for actions in by_resource.values())


def _resource_name(resource: Any) -> str:
    """The table's ARN is "table", an ARN under it what follows the table ("index/<name>"); the
    table is the stack's own or the one it adopted (ExistingTableName)."""
    if resource == {"Fn::GetAtt": ["InstallationsTable", "Arn"]}:
        return "table"
    text = resource.get("Fn::Sub", "") if isinstance(resource, dict) else ""
    adopted = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}"
    if text == adopted:
        return "table"
    prefix = next((p for p in ("${InstallationsTable.Arn}/", adopted + "/") if text.startswith(p)), None)
    assert prefix is not None, resource
    return str(text.removeprefix(prefix))
