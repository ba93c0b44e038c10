"""A tenant's purge after uninstall: nothing of the tenant is left, no other tenant is touched, no
Scan is made, an interrupted purge resumes, and a live (or re-installed) tenant is never purged."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devtools.apigw import LambdaContext
from devtools.atomic_dynamodb import AtomicDynamoDB
from shared.budget import Deadline
from shared.store.event_records import EventRecord, Verdict
from shared.store.installations import InstallationStore
from shared.store.purge import TenantActiveError, TenantPurge
from shared.store.uninstall_tokens import UninstallTokenStore
from sweep import handler as sweep_handler
from sweep.dependencies import Dependencies as SweepDependencies
from tests.conftest import TABLE_NAME
from tests.events_driver import EventsDriver

A, BP_A = "amzn1.bwp.installation.purged", "amzn1.bp.product.purged"
B, BP_B = "amzn1.bwp.installation.kept", "amzn1.bp.product.kept"
DAY = 86_400


class CountingClient:
    """The real (moto) client, counting calls by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(**kwargs)

        return counted


def _tenant(events: EventsDriver, installation_id: str, business_product_id: str, orders: int) -> None:
    """An installation with what the pipeline keeps: events, snapshots, a store identity, a link,
    an attention item, an uninstall-token record."""
    events.install(installation_id, business_product_id)
    answer, _ = events.handle(*[events.order_event(business_product_id, f"322-{i:07d}-0000001") for i in range(orders)])
    assert answer == {"batchItemFailures": []}
    now = int(time.time())
    failed = EventRecord(
        event_id=f"failed-{installation_id}",
        outcome=Verdict.FAILED,
        message_id="m-1",
        processed_at=now,
        expires_at=now + DAY,
        installation_id=installation_id,
        business_product_id=business_product_id,
        reason="graphql: test",
        raw=json.dumps({"detail-type": "ORDER_CONFIRMED"}),
    )
    assert events.store.record(failed)
    UninstallTokenStore(AtomicDynamoDB(), TABLE_NAME).first_seen(
        f"digest-{installation_id}", installation_id, now * 1000, None
    )


def _items() -> list[dict[str, Any]]:
    client, items, start = AtomicDynamoDB(), [], None
    while True:
        page = client.scan(TableName=TABLE_NAME, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        if not (start := page.get("LastEvaluatedKey")):
            return items


def _of(installation_id: str, business_product_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every item that names the tenant anywhere (key or attribute)."""
    return [i for i in items if installation_id in json.dumps(i) or business_product_id in json.dumps(i)]


def _uninstall(installation_id: str, days_ago: int = 0) -> None:
    """Uninstall now, then move its index hour back `days_ago` days (as if uninstalled then)."""
    now = time.time()
    store = InstallationStore(AtomicDynamoDB(), TABLE_NAME)
    assert store.uninstall(installation_id, int(now * 1000) + 1000, int(now)).value == "uninstalled"
    if days_ago:
        AtomicDynamoDB().update_item(
            TableName=TABLE_NAME,
            Key={"pk": {"S": f"INSTALLATION#{installation_id}"}, "sk": {"S": "INSTALLATION"}},
            UpdateExpression="SET refreshed_hour = :h",
            ExpressionAttributeValues={":h": {"N": str(int(now) - days_ago * DAY)}},
        )


def test_a_purge_leaves_nothing_of_the_tenant_and_touches_no_other(events: EventsDriver) -> None:
    # with RehydrateOpenOrdersHours on: each open order also has its marker (OPEN_ORDERS#<n>)
    events = EventsDriver({**events.environ, "REHYDRATE_OPEN_ORDERS_HOURS": "24"}, events.sandbox, TABLE_NAME)
    _tenant(events, A, BP_A, orders=6)
    _tenant(events, B, BP_B, orders=3)
    _uninstall(A)
    before = _items()
    assert len(_of(A, BP_A, before)) >= 21  # events, snapshots, markers, store, link, attention, token record
    assert len([i for i in _of(A, BP_A, before) if i["pk"]["S"].startswith("OPEN_ORDERS#")]) == 6
    client = CountingClient(AtomicDynamoDB())
    report = TenantPurge(client, TABLE_NAME).purge(A, Deadline.after(60))
    after = _items()
    assert report.done and _of(A, BP_A, after) == []
    assert report.deleted == len(_of(A, BP_A, before))
    assert sorted(map(json.dumps, _of(B, BP_B, after))) == sorted(map(json.dumps, _of(B, BP_B, before)))
    assert len(after) == len(before) - report.deleted  # nothing else went
    assert "scan" not in client.calls  # the tenant index and its own partitions only
    print(f"purge of one tenant: {report.deleted} items deleted with {client.calls}")
    assert client.calls["query"] <= 8 + 48 + 8  # 8 index partitions, 48 snapshot partitions (a page each)


def test_a_live_tenant_is_refused_and_nothing_is_deleted(events: EventsDriver) -> None:
    _tenant(events, A, BP_A, orders=2)
    before = _items()
    with pytest.raises(TenantActiveError, match="active"):
        TenantPurge(AtomicDynamoDB(), TABLE_NAME).purge(A, Deadline.after(60))
    assert _items() == before


def test_a_purge_out_of_time_resumes_and_keeps_the_tombstone_until_done(events: EventsDriver) -> None:
    _tenant(events, A, BP_A, orders=4)
    _uninstall(A)
    purge = TenantPurge(AtomicDynamoDB(), TABLE_NAME)
    clock = iter(range(10_000))
    short = Deadline(at=12.0, clock=lambda: float(next(clock)))  # time for a few calls only
    first = purge.purge(A, short)
    assert not first.done
    tombstone = InstallationStore(AtomicDynamoDB(), TABLE_NAME).get(A)
    assert tombstone is not None and tombstone.status.value == "uninstalled"  # found again next run
    second = purge.purge(A, Deadline.after(60))
    assert second.done and _of(A, BP_A, _items()) == []


def test_the_sweep_purges_only_tenants_uninstalled_longer_than_the_grace_period(
    events: EventsDriver, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _tenant(events, A, BP_A, orders=2)
    _tenant(events, B, BP_B, orders=2)
    _uninstall(A, days_ago=31)  # past the default 30 days
    _uninstall(B, days_ago=29)  # not yet
    deps = SweepDependencies(environ)
    deps.dynamodb = AtomicDynamoDB()
    answer = sweep_handler.handle({}, LambdaContext("SweepFunction", timeout=900), deps)
    assert answer["purge"]["purged"] == 1
    items = _items()
    assert _of(A, BP_A, items) == []
    assert InstallationStore(AtomicDynamoDB(), TABLE_NAME).get(B) is not None and _of(B, BP_B, items)


def test_a_reinstalled_tenant_is_not_purged(events: EventsDriver) -> None:
    _tenant(events, A, BP_A, orders=2)
    _uninstall(A, days_ago=31)
    events.install(A, BP_A)  # the merchant came back
    candidates = list(InstallationStore(AtomicDynamoDB(), TABLE_NAME).uninstalled_before(int(time.time()) - 30 * DAY))
    assert candidates == []
    with pytest.raises(TenantActiveError):
        TenantPurge(AtomicDynamoDB(), TABLE_NAME).purge(A, Deadline.after(60))
