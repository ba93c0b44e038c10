"""Fairness: one merchant's flash sale, throttled by the API, must not delay the other tenants.

One hot installation whose every GraphQL call is throttled (a per-tenant rate limit) and fifty quiet
ones, their events shuffled together into batches of ten through one warm container, messages sent
back going round again (bounded rounds). The bound: every quiet event is processed on its first
delivery; the hot tenant's events go back to the queue (to wait longer each receive), and once its
own breaker is open the container sends it no more requests until the cool-down.
"""

from __future__ import annotations

import json
import random

from shared.budget import DEFAULT_BUDGET
from shared.circuit import FAILURE_THRESHOLD
from tests.events_driver import EventsDriver

HOT = "amzn1.bwp.installation.hot"
QUIET = [f"amzn1.bwp.installation.quiet-{i:02d}" for i in range(50)]
ROUNDS = 3  # deliveries of a message at most, in this test


def test_a_throttled_hot_tenant_does_not_delay_fifty_quiet_ones(events: EventsDriver) -> None:
    events.install(HOT, "bp-hot")
    for n, installation in enumerate(QUIET):
        events.install(installation, f"bp-quiet-{n:02d}")
    events.sandbox.throttle_installation(HOT)
    hot = [events.order_event("bp-hot", f"322-HOT-{i:05d}") for i in range(60)]
    quiet = [events.order_event(f"bp-quiet-{n:02d}", f"322-QUIET-{n:02d}-{i}") for n in range(50) for i in range(2)]
    queue = [json.dumps(envelope) for envelope in hot + quiet]
    random.Random(7).shuffle(queue)
    hot_bodies = {json.dumps(envelope) for envelope in hot}
    owner = {json.loads(body)["detail"]["eventId"]: "hot" if body in hot_bodies else "quiet" for body in queue}
    deliveries: dict[str, int] = {}
    processed: set[str] = set()
    for _ in range(ROUNDS):
        sent_back: list[str] = []
        for start in range(0, len(queue), 10):
            batch = queue[start : start + 10]
            answer, ids = events.handle(*batch)
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            for body, message_id in zip(batch, ids, strict=True):
                event_id = json.loads(body)["detail"]["eventId"]
                deliveries[event_id] = deliveries.get(event_id, 0) + 1
                if message_id in failed:
                    sent_back.append(body)
                else:
                    processed.add(event_id)
        queue = sent_back
    quiet_ids = {e for e, who in owner.items() if who == "quiet"}
    hot_ids = set(owner) - quiet_ids
    assert quiet_ids <= processed and all(deliveries[e] == 1 for e in quiet_ids)  # the bound
    assert not hot_ids & processed  # throttled throughout: back to the queue, never lost or failed
    assert all(events.event_record(e) is None for e in hot_ids)
    # once its breaker is open, the hot tenant costs the API nothing more (until the cool-down): its
    # requests are those of the calls admitted before it opened (each up to its attempts), not one
    # per delivery (60 events x 3 rounds)
    hot_requests = sum(
        1
        for entry in events.sandbox.requests
        if entry["path"].endswith("graphql") and entry["headers"].get("X-Omni-InstallationId") == HOT
    )
    attempts = DEFAULT_BUDGET.graphql.attempts
    print(f"fairness: hot tenant GraphQL requests {hot_requests} for {len(hot)} events x {ROUNDS} rounds")
    assert 0 < hot_requests <= (FAILURE_THRESHOLD + 10) * attempts < len(hot) * ROUNDS
