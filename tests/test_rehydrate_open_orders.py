"""Scheduled re-hydration of open orders (issue 11, RehydrateOpenOrdersHours): the events function
keeps a marker per open order beside its snapshot, the hourly sweep fetches the stale ones again
through the same hydrator (a new snapshot version from Buy with Prime's current data), closed orders
lose their marker, and the whole thing is off by default, bounded in time and count, skips tenants
that cannot be queried, survives a throttling API and never Scans."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.apigw import LambdaContext
from devtools.atomic_dynamodb import AtomicDynamoDB
from events.hydrators import order_is_closed
from sandbox.catalog import make_order
from sandbox.server import BuyWithPrimeSandbox
from shared.budget import Deadline
from shared.store.installations import InstallationStore
from shared.store.keys import open_order_key, snapshot_partition, snapshot_prefix
from shared.store.purge import TenantPurge
from sweep import handler as sweep_handler
from sweep.dependencies import Dependencies as SweepDependencies
from sweep.rehydrate import MAX_CONSECUTIVE_FAILURES, RehydrateRun, rehydrate_open_orders
from tests.conftest import TABLE_NAME
from tests.events_driver import EventsDriver
from tests.reliability.test_token_time import SCALED

A, BP_A = "amzn1.bwp.installation.rehydrate-a", "amzn1.bp.product.rehydrate-a"
B, BP_B = "amzn1.bwp.installation.rehydrate-b", "amzn1.bp.product.rehydrate-b"
HOUR = 3600


class Recording:
    """The real (moto) client, serialised, recording every call with its arguments."""

    def __init__(self) -> None:
        self._client = AtomicDynamoDB()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def recorded(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return recorded

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def on(environ: dict[str, str]) -> dict[str, str]:
    return {**environ, "REHYDRATE_OPEN_ORDERS_HOURS": "24"}


@pytest.fixture
def driver(on: dict[str, str], sandbox: BuyWithPrimeSandbox) -> EventsDriver:
    return EventsDriver(on, sandbox, TABLE_NAME)


def order(order_id: str, *states: str, updated: str = "2025-01-20T12:40:00Z") -> dict[str, Any]:
    """The sandbox's order with one line item per state (the first one's details repeated)."""
    found = make_order(order_id)
    first = found["lineItems"][0]
    found["lineItems"] = [{**first, "id": f"{first['id']}-{n}", "state": state} for n, state in enumerate(states)]
    found["updatedAt"] = updated
    return found


def hydrate(driver: EventsDriver, installation_id: str, bp: str, *order_ids: str) -> None:
    answer, _ = driver.handle(*[driver.order_event(bp, order_id) for order_id in order_ids])
    assert answer == {"batchItemFailures": []}
    for order_id in order_ids:
        assert driver.snapshot(installation_id, order_id) is not None


def marker(installation_id: str, order_id: str) -> dict[str, Any] | None:
    item = AtomicDynamoDB().get_item(
        TableName=TABLE_NAME, Key=open_order_key(installation_id, order_id), ConsistentRead=True
    )
    return item.get("Item")


def markers() -> list[dict[str, Any]]:
    items = AtomicDynamoDB().scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]  # the test's view only
    return [i for i in items if i["pk"]["S"].startswith("OPEN_ORDERS#")]


def age(installation_id: str, order_id: str, hours: float) -> None:
    """As if the order's snapshot had been fetched `hours` ago."""
    AtomicDynamoDB().update_item(
        TableName=TABLE_NAME,
        Key=open_order_key(installation_id, order_id),
        UpdateExpression="SET fetched_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int((time.time() - hours * HOUR) * 1000))}},
        ConditionExpression="attribute_exists(pk)",
    )


def versions(installation_id: str, order_id: str) -> list[int]:
    answer = AtomicDynamoDB().query(
        TableName=TABLE_NAME,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={
            ":pk": {"S": snapshot_partition("ORDER", installation_id, order_id)},
            ":p": {"S": snapshot_prefix("ORDER", order_id)},
        },
        ConsistentRead=True,
    )
    return [int(item["version"]["N"]) for item in answer["Items"]]


def sweep_deps(env: dict[str, str], client: Any = None, *, scaled: bool = False) -> SweepDependencies:
    deps = SweepDependencies(env)
    deps.dynamodb = client or AtomicDynamoDB()
    if scaled:
        deps.budget = SCALED  # type: ignore[misc]
    return deps


def sweep(env: dict[str, str], client: Any = None, *, scaled: bool = False) -> dict[str, Any]:
    deps = sweep_deps(env, client, scaled=scaled)
    answer = sweep_handler.handle({}, LambdaContext("SweepFunction", timeout=900), deps)
    rehydrated: dict[str, Any] = answer["rehydrate"]
    return rehydrated


def test_the_closed_definition_is_conservative() -> None:
    assert order_is_closed(order("o", "DELIVERED", "CANCELLED"))
    assert order_is_closed(order("o", "returned", "Refunded"))  # case does not matter
    assert not order_is_closed(order("o", "CONFIRMED"))  # the sandbox's orders: open
    assert not order_is_closed(order("o", "DELIVERED", "IN_TRANSIT"))  # one line item still moving
    assert not order_is_closed(order("o", "RETURN_STARTED"))  # a state it leaves again
    assert not order_is_closed(order("o", "SOMETHING_NEW"))  # unknown: open
    assert not order_is_closed({"id": "o", "lineItems": []})  # nothing to judge by: open
    assert not order_is_closed({"id": "o"})
    assert not order_is_closed({"id": "o", "lineItems": [{"id": "x"}]})  # no state


def test_an_open_order_older_than_the_parameter_gets_a_new_snapshot_from_current_data(
    driver: EventsDriver, on: dict[str, str], sandbox: BuyWithPrimeSandbox
) -> None:
    # given an open order hydrated by its event: a marker beside its snapshot, in the same BatchWriteItem
    driver.install(A, BP_A)
    driver.lambda_deps.dynamodb = recording = Recording()  # type: ignore[misc]
    hydrate(driver, A, BP_A, "322-0000001-0000001")
    writes = [kw for name, kw in recording.calls if name == "batch_write_item"]
    assert len(writes) == 1
    sent = writes[0]["RequestItems"][TABLE_NAME]
    assert sorted(r["PutRequest"]["Item"]["pk"]["S"].split("#")[0] for r in sent) == ["OPEN_ORDERS", "ORDERS"]
    found = marker(A, "322-0000001-0000001")
    assert found is not None and found["installation_id"]["S"] == A and "tenant" in found
    assert "kind" not in found  # never taken for a snapshot by the outbox
    # and Buy with Prime's order has moved on since (a line item shipped, a later updatedAt)
    later = order("322-0000001-0000001", "SHIPPED", updated="2025-01-22T08:00:00Z")
    sandbox.put_order(A, "322-0000001-0000001", later)
    sandbox.reset_observations()
    # when the sweep runs while the snapshot is fresh, then nothing is fetched
    assert sweep(on)["candidates"] == 0
    assert sandbox.calls["graphql"] == 0
    # when its snapshot is older than the parameter and the sweep runs
    age(A, "322-0000001-0000001", 25)
    client = Recording()
    report = sweep(on, client)
    # then the order was fetched once, through the order hydrator, and stored as a new version
    assert (report["candidates"], report["rehydrated"], report["failed"], report["deferred"]) == (1, 1, 0, False)
    assert sandbox.calls["graphql:order"] == 1
    assert _state(driver.snapshot(A, "322-0000001-0000001")) == ("2025-01-22T08:00:00Z", ["SHIPPED"])
    assert len(versions(A, "322-0000001-0000001")) == 2  # the outbox publishes OrderHydrated for the new one
    refreshed = marker(A, "322-0000001-0000001")
    assert refreshed is not None and int(refreshed["fetched_at"]["N"]) >= (time.time() - 60) * 1000
    # and the snapshot and its marker went in one BatchWriteItem; no Scan anywhere in the run
    assert client.names().count("batch_write_item") == 1
    assert "scan" not in client.names()
    marker_queries = [kw for name, kw in client.calls if name == "query" and "OPEN_ORDERS" in str(kw)]
    assert len(marker_queries) == 8  # one per marker partition (a page each)
    # and the next run finds nothing to do
    assert sweep(on)["candidates"] == 0
    assert sandbox.calls["graphql:order"] == 1


def test_a_closed_order_loses_its_marker_and_is_not_fetched_again(
    driver: EventsDriver, on: dict[str, str], sandbox: BuyWithPrimeSandbox
) -> None:
    driver.install(A, BP_A)
    # an order closed when its event comes: no marker at all
    sandbox.put_order(A, "322-0000002-0000001", order("322-0000002-0000001", "DELIVERED", "CANCELLED"))
    # an order open then, closed since
    hydrate(driver, A, BP_A, "322-0000002-0000001", "322-0000002-0000002")
    assert marker(A, "322-0000002-0000001") is None
    assert marker(A, "322-0000002-0000002") is not None
    closed = order("322-0000002-0000002", "DELIVERED", "REFUNDED", updated="2025-02-01T00:00:00Z")
    sandbox.put_order(A, "322-0000002-0000002", closed)
    age(A, "322-0000002-0000002", 30)
    sandbox.reset_observations()
    report = sweep(on)
    assert (report["closed"], report["rehydrated"], report["failed"]) == (1, 0, 0)
    final = _state(driver.snapshot(A, "322-0000002-0000002"))  # its final state is stored
    assert final == ("2025-02-01T00:00:00Z", ["DELIVERED", "REFUNDED"])
    assert markers() == []
    assert sweep(on)["candidates"] == 0
    assert sandbox.calls["graphql:order"] == 1  # never fetched again


def test_off_by_default_no_marker_and_no_call(events: EventsDriver, environ: dict[str, str]) -> None:
    events.install(A, BP_A)
    hydrate(events, A, BP_A, "322-0000003-0000001")
    assert markers() == []
    events.sandbox.reset_observations()
    client = Recording()
    report = sweep(environ, client)
    assert report == RehydrateRun().as_dict()
    assert events.sandbox.calls["graphql"] == 0
    assert not [kw for _, kw in client.calls if "OPEN_ORDERS" in str(kw)]  # not even a marker Query


def test_out_of_time_or_over_the_maximum_defers_and_the_next_run_resumes(
    driver: EventsDriver, on: dict[str, str], sandbox: BuyWithPrimeSandbox
) -> None:
    driver.install(A, BP_A)
    ids = [f"322-0000004-{i:07d}" for i in range(8)]
    hydrate(driver, A, BP_A, *ids)
    for order_id in ids:
        age(A, order_id, 48)
    deps = sweep_deps(on, scaled=True)  # a query starts while 1.3 + 0.6 s fit
    run = dict(older_than_hours=24, first_shard=0)
    # at most 3 per run
    first = rehydrate_open_orders(
        deps.event_store,
        deps.installations,
        deps.pipeline,
        now=time.time(),
        deadline=Deadline.after(60),
        max_orders=3,
        **run,  # type: ignore[arg-type]
    )
    assert (first.candidates, first.rehydrated, first.deferred) == (3, 3, True)
    # out of time: each marker page needs CALL_SECONDS (5 s) left; with 0.4 s per query, 6.2 s fit a few
    sandbox.latency("graphql", 0.4)
    started = time.monotonic()
    second = rehydrate_open_orders(
        deps.event_store,
        deps.installations,
        deps.pipeline,
        now=time.time(),
        deadline=Deadline.after(6.2),
        **run,  # type: ignore[arg-type]
    )
    assert second.deferred and 0 < second.rehydrated < 5
    assert time.monotonic() - started < 6.2 + 1.0
    sandbox.latency("graphql", 0.0)
    third = rehydrate_open_orders(
        deps.event_store,
        deps.installations,
        deps.pipeline,
        now=time.time(),
        deadline=Deadline.after(60),
        **run,  # type: ignore[arg-type]
    )
    assert not third.deferred
    assert first.rehydrated + second.rehydrated + third.rehydrated == 8
    assert sandbox.calls["graphql:order"] == 8 + 8  # the events' own queries, then one each


def test_markers_of_an_uninstalled_or_unauthorised_tenant_are_skipped_and_purged_with_it(
    driver: EventsDriver, on: dict[str, str], sandbox: BuyWithPrimeSandbox
) -> None:
    C, BP_C = "amzn1.bwp.installation.rehydrate-c", "amzn1.bp.product.rehydrate-c"
    for installation_id, bp in ((A, BP_A), (B, BP_B), (C, BP_C)):
        driver.install(installation_id, bp)
        hydrate(driver, installation_id, bp, "322-0000005-0000001", "322-0000005-0000002")
        for order_id in ("322-0000005-0000001", "322-0000005-0000002"):
            age(installation_id, order_id, 48)
    store = InstallationStore(AtomicDynamoDB(), TABLE_NAME)
    now = time.time()
    assert store.uninstall(A, int(now * 1000) + 1000, int(now)).value == "uninstalled"
    AtomicDynamoDB().update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": f"INSTALLATION#{C}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "needs_reauthorization"}},
    )
    sandbox.reset_observations()
    report = sweep(on)
    assert (report["candidates"], report["rehydrated"], report["skipped"]) == (6, 2, 4)
    assert sandbox.calls["graphql:order"] == 2  # B's only
    assert sandbox.calls["token"] == 0  # no refresh tried for A or C
    # the uninstalled tenant's purge takes its markers with the rest; nobody else's
    assert len(markers()) == 6
    assert TenantPurge(AtomicDynamoDB(), TABLE_NAME).purge(A, Deadline.after(60)).done
    left = {m["installation_id"]["S"] for m in markers()}
    assert left == {B, C} and len(markers()) == 4


def test_a_throttling_or_failing_api_does_not_break_the_run(
    driver: EventsDriver, on: dict[str, str], sandbox: BuyWithPrimeSandbox
) -> None:
    driver.install(A, BP_A)
    ids = [f"322-0000006-{i:07d}" for i in range(8)]
    hydrate(driver, A, BP_A, *ids)
    for order_id in ids:
        age(A, order_id, 48)
    before = {m["sk"]["S"]: m["fetched_at"]["N"] for m in markers()}
    sandbox.throttle_installation(A)
    # when the API throttles every query of the tenant, the run ends normally after a run of failures
    report = sweep(on, scaled=True)
    assert report["failed"] == MAX_CONSECUTIVE_FAILURES and report["deferred"]
    assert report["rehydrated"] == 0
    assert {m["sk"]["S"]: m["fetched_at"]["N"] for m in markers()} == before  # still old: tried next run
    # and once the API answers again (and the circuit's cool-down is over: a new container), all are done
    sandbox.throttle_installation(A, throttled=False)
    sandbox.fail_next("graphql", 503, times=1)  # one more transient answer, retried by the client
    report = sweep(on, scaled=True)
    assert (report["rehydrated"], report["failed"], report["deferred"]) == (8, 0, False)


def test_the_marker_costs_one_write_unit_and_one_index_entry() -> None:
    from shared.store.event_records import Snapshot, _open_order_item

    snapshot = Snapshot(
        "ORDER",
        "amzn1.bwp.installation." + "x" * 36,
        "322-ABCD-EFGHJK",
        {},
        1_737_376_800_000,
        "e",
        1,
        1_745_000_000,
        open=True,
    )
    item = _open_order_item(snapshot)
    size = sum(len(name.encode()) + _size(value) for name, value in item.items())
    assert size < 1024  # one write unit (and one more for its TenantItems index entry)
    print(f"open-order marker: {size} bytes")


def _state(snapshot: dict[str, Any] | None) -> tuple[str, list[str]]:
    assert snapshot is not None
    return snapshot["updatedAt"], [item["state"] for item in snapshot["lineItems"]]


def _size(value: dict[str, Any]) -> int:
    kind, raw = next(iter(value.items()))
    return len(str(raw).encode()) if kind == "S" else len(str(raw).lstrip("-")) // 2 + 2


def test_the_sweep_role_allows_what_a_rehydrating_sweep_does(
    driver: EventsDriver, on: dict[str, str], sandbox: BuyWithPrimeSandbox
) -> None:
    from devtools.template import load_template, resolve_conditions
    from tests.test_idle_sweep import _resource_name

    driver.install(A, BP_A)
    hydrate(driver, A, BP_A, "322-0000007-0000001", "322-0000007-0000002", "322-0000007-0000003")
    sandbox.put_order(A, "322-0000007-0000002", order("322-0000007-0000002", "DELIVERED"))  # closed since
    sandbox.put_order(A, "322-0000007-0000003", None)  # gone from Buy with Prime: its marker is deleted
    for order_id in ("322-0000007-0000001", "322-0000007-0000002", "322-0000007-0000003"):
        age(A, order_id, 48)
    client = Recording()
    report = sweep(on, client)
    assert (report["rehydrated"], report["closed"], report["gone"]) == (1, 1, 1)
    used = {"dynamodb:" + "".join(part.title() for part in name.split("_")) for name in client.names()}
    properties = resolve_conditions(load_template(), {})["Resources"]["SweepFunction"]["Properties"]
    allowed: dict[str, set[str]] = {}
    for policy in properties["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                allowed.setdefault(_resource_name(resource), set()).update(actions)
    table_calls = used - {"dynamodb:Query"}
    assert table_calls <= allowed["table"], table_calls - allowed["table"]
    assert "dynamodb:Query" in allowed["table"]  # the marker partitions are the table's, not an index's
    assert "dynamodb:Scan" not in used and all("dynamodb:Scan" not in a for a in allowed.values())
