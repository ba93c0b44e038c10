"""Tenant isolation in the event pipeline.

Routing: `detail.contextKeys.installationId` is authoritative for the event that carries it;
otherwise the business-product link decides. What one event may do to the link is the question:
the pipeline learns links from events that show both. A re-installation (a new installation ID
for the same store) must move the link, but one mis-attributed or forged event naming B must
not silently re-point A's business product while A is still installed: every later event of A's
products would then be hydrated with B's token and recorded under B (or lost as unroutable).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.store.installations import InstallationStore
from shared.store.keys import snapshot_partitions
from tests.events_driver import EventsDriver

A, B = "amzn1.bwp.installation.events-a", "amzn1.bwp.installation.events-b"
BP_A, BP_B = "amzn1.bp.product.of-a", "amzn1.bp.product.of-b"
NOBODY = "amzn1.bwp.installation.never-installed"


def _partition(events: EventsDriver, installation_id: str) -> list[dict[str, Any]]:
    """The tenant's own partitions: its installation item and its 16 snapshot partitions."""
    own = {f"INSTALLATION#{installation_id}", *snapshot_partitions(installation_id)}
    items = [i for i in events.items_with_pk_prefix("") if i["pk"]["S"] in own]
    return sorted(items, key=lambda i: i["sk"]["S"])


def _link(events: EventsDriver, business_product_id: str) -> str | None:
    items = events.items_with_pk_prefix(f"BUSINESS_PRODUCT#{business_product_id}")
    return items[0]["installation_id"]["S"] if items else None


@pytest.fixture
def two_tenants(events: EventsDriver) -> EventsDriver:
    events.install(A, BP_A)
    events.install(B, BP_B)
    answer, _ = events.handle(events.order_event(BP_A, "o-a-0"), events.order_event(BP_B, "o-b-0"))
    assert answer == {"batchItemFailures": []}  # both store identities are known from here on
    return events


def test_events_of_a_write_only_under_a(two_tenants: EventsDriver) -> None:
    events = two_tenants
    b_before = _partition(events, B)
    batch = [events.order_event(BP_A, f"o-a-{i}") for i in range(1, 4)]
    answer, _ = events.handle(*batch)
    assert answer == {"batchItemFailures": []}
    assert _partition(events, B) == b_before
    for i, envelope in enumerate(batch, start=1):
        assert events.snapshot(A, f"o-a-{i}") is not None and events.snapshot(B, f"o-a-{i}") is None
        record = events.event_record(envelope["detail"]["eventId"])
        assert record is not None and record["installation_id"] == A and record["outcome"] == "processed"


def test_a_mixed_batch_keeps_each_tenants_records_in_its_own_partition(two_tenants: EventsDriver) -> None:
    events = two_tenants
    batch = [events.order_event(bp, f"o-mixed-{bp[-4:]}-{i}") for i in range(3) for bp in (BP_A, BP_B)]
    answer, _ = events.handle(*batch)
    assert answer == {"batchItemFailures": []}
    for owner, bp in ((A, BP_A), (B, BP_B)):
        orders = {
            i["resource_id"]["S"]
            for i in _partition(events, owner)
            if i.get("resource_id", {}).get("S", "").startswith("o-mixed")
        }
        assert orders == {f"o-mixed-{bp[-4:]}-{i}" for i in range(3)}


def _legacy(events: EventsDriver, business_product_id: str, order_id: str, installation_id: str) -> dict[str, Any]:
    return events.order_event(business_product_id, order_id, event_format="legacy", installation_id=installation_id)


def test_context_keys_route_the_event_that_carries_them_and_nothing_lands_under_a(
    two_tenants: EventsDriver,
) -> None:
    events = two_tenants
    a_before = _partition(events, A)
    answer, _ = events.handle(_legacy(events, BP_A, "o-claimed-by-b", B))
    assert answer == {"batchItemFailures": []}
    assert _partition(events, A) == a_before
    assert events.snapshot(B, "o-claimed-by-b") is not None  # hydrated with B's own token, kept under B


@pytest.mark.parametrize("how", ["operator", "learned"])
def test_one_event_naming_b_does_not_re_point_as_business_product(events: EventsDriver, how: str) -> None:
    events.install(A)
    events.install(B, BP_B)
    if how == "operator":
        events.store.put_link(BP_A, A, "operator")
    else:  # learned from a genuine legacy event of A
        assert events.handle(_legacy(events, BP_A, "o-a-legacy", A))[0] == {"batchItemFailures": []}
    assert _link(events, BP_A) == A
    # a mis-attributed (or forged) event: A's business product, B in contextKeys
    events.handle(_legacy(events, BP_A, "o-mis-attributed", B))
    # A's later events still reach A, in this warm Lambda and in a fresh one
    assert _link(events, BP_A) == A
    for deps in (None, events.new_lambda()):
        thin = events.order_event(BP_A, f"o-after-{deps is None}", event_format="2024-01-01")
        events.handle(thin, deps=deps)
        record = events.event_record(thin["id"])
        assert record is not None and record["installation_id"] == A


def test_an_event_naming_an_installation_that_does_not_exist_leaves_the_link_alone(
    two_tenants: EventsDriver,
) -> None:
    events = two_tenants
    answer, _ = events.handle(_legacy(events, BP_A, "o-nobody", NOBODY))
    assert answer == {"batchItemFailures": []}
    assert _link(events, BP_A) == A
    thin = events.order_event(BP_A, "o-after-nobody", event_format="2024-01-01")
    events.handle(thin, deps=events.new_lambda())
    record = events.event_record(thin["id"])
    assert record is not None and record["installation_id"] == A and record["outcome"] == "processed"


def test_a_re_installation_moves_the_link_of_an_uninstalled_installation(events: EventsDriver) -> None:
    """The legitimate re-point: the store re-installed the app and got a new installation ID."""
    old, new = "amzn1.bwp.installation.events-old", "amzn1.bwp.installation.events-new"
    events.install(old, BP_A)
    store = InstallationStore(events.lambda_deps.dynamodb, events.table)
    store.uninstall(old, requested_at_ms=int(time.time() * 1000) + 1, now=int(time.time()))
    events.install(new)
    assert events.handle(_legacy(events, BP_A, "o-reinstalled", new))[0] == {"batchItemFailures": []}
    assert _link(events, BP_A) == new
    thin = events.order_event(BP_A, "o-after-reinstall", event_format="2024-01-01")
    assert events.handle(thin, deps=events.new_lambda())[0] == {"batchItemFailures": []}
    record = events.event_record(thin["id"])
    assert record is not None and record["installation_id"] == new
    assert events.snapshot(new, "o-after-reinstall") is not None and events.snapshot(old, "o-after-reinstall") is None
