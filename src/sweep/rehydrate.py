"""The sweep's third duty (RehydrateOpenOrdersHours, 0 = off): fetch again the open orders whose
snapshot is older than that many hours, so an order whose events were lost or never sent still
reaches its final state in the table (and on the app bus: a new snapshot version is an
OrderHydrated event, published by the outbox).

Candidates are the open-order markers the events function keeps next to each ORDER snapshot
(keys.open_order_key: 8 partitions, one Query each, page by page; no Scan). Each is re-hydrated by
EventPipeline.rehydrate: the events function's own hydrator, token service, GraphQL client (its
circuit breaker, throttling retries) and snapshot write, which refreshes the marker, or removes it
once the order is closed (hydrators.order_is_closed).

Bounded, after the idle refresh and the purge, in what is left of the run's Deadline:
- a re-hydration starts only while one GraphQL attempt plus the store reserve fits (the pipeline
  checks it; the marker query pages check CALL_SECONDS), and at most `max_orders` per run;
- installations needing re-authorisation or uninstalled are skipped (their markers stay: a
  re-authorised installation resumes, a purged one loses them with its other items);
- after MAX_CONSECUTIVE_FAILURES failures in a row (Buy with Prime down or throttling, the circuit
  open) the run stops. What is left stays old: the next run finds it again (each run starts with
  another marker partition).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Protocol

from events.pipeline import Decision, Reason
from shared.budget import Deadline
from shared.models import Installation, InstallationStatus
from shared.observability import logger
from shared.store.event_records import OpenOrder, Snapshot, Verdict
from shared.store.purge import CALL_SECONDS

MAX_ORDERS_PER_RUN = 500
MAX_CONSECUTIVE_FAILURES = 5


class OpenOrders(Protocol):
    def stale_open_orders(self, fetched_before_ms: int, *, first_shard: int = 0) -> Iterator[OpenOrder]: ...

    def delete_open_order(self, installation_id: str, order_id: str) -> None: ...


class Installations(Protocol):
    def get(self, installation_id: str) -> Installation | None: ...


class Rehydrator(Protocol):
    def rehydrate(
        self, kind: str, installation_id: str, resource_id: str, deadline: Deadline
    ) -> Snapshot | Decision: ...


@dataclass
class RehydrateRun:
    candidates: int = 0
    rehydrated: int = 0  # a snapshot stored (still open: its marker refreshed)
    closed: int = 0  # a snapshot stored, the order closed: its marker removed
    gone: int = 0  # Buy with Prime no longer has the order: its marker removed
    skipped: int = 0  # the installation needs re-authorisation, is uninstalled or gone
    failed: int = 0  # transient trouble: the marker stays old, the next run tries again
    deferred: bool = False  # out of time, the run's maximum, or repeated failures

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def rehydrate_open_orders(
    markers: OpenOrders,
    installations: Installations,
    pipeline: Rehydrator,
    *,
    older_than_hours: int,
    now: float,
    deadline: Deadline,
    max_orders: int = MAX_ORDERS_PER_RUN,
    first_shard: int = 0,
) -> RehydrateRun:
    run = RehydrateRun()
    if older_than_hours <= 0:
        return run
    statuses: dict[str, InstallationStatus | None] = {}
    streak = 0
    stale = markers.stale_open_orders(int((now - older_than_hours * 3600) * 1000), first_shard=first_shard)
    while True:
        if not deadline.fits(CALL_SECONDS):  # the next marker page, or the next order's call
            run.deferred = True
            break
        marker = next(stale, None)
        if marker is None:
            break
        if run.candidates >= max_orders or streak >= MAX_CONSECUTIVE_FAILURES:
            run.deferred = True
            break
        run.candidates += 1
        installation_id = marker.installation_id
        if installation_id not in statuses:  # one GetItem per installation and run
            installation = installations.get(installation_id)
            statuses[installation_id] = installation.status if installation else None
        if statuses[installation_id] is not InstallationStatus.ACTIVE:
            run.skipped += 1
            continue
        outcome = pipeline.rehydrate("ORDER", installation_id, marker.order_id, deadline)
        if isinstance(outcome, Decision) and outcome.reason is Reason.OUT_OF_TIME:
            run.deferred = True
            break
        if isinstance(outcome, Decision) and outcome.verdict in (Verdict.NEEDS_REAUTHORIZATION, Verdict.UNROUTABLE):
            statuses[installation_id] = None  # found out now: its other markers are skipped too
        streak = streak + 1 if _tally(run, marker, outcome, markers) == "failed" else 0
    return run


def _tally(run: RehydrateRun, marker: OpenOrder, outcome: Snapshot | Decision, markers: OpenOrders) -> str:
    """Count one re-hydration's outcome (and drop the marker of an order Buy with Prime no longer has)."""
    if isinstance(outcome, Snapshot):
        name = "closed" if outcome.open is False else "rehydrated"
    elif outcome.verdict in (Verdict.NEEDS_REAUTHORIZATION, Verdict.UNROUTABLE):
        name = "skipped"
    elif outcome.reason is Reason.RESOURCE_NOT_FOUND:
        markers.delete_open_order(marker.installation_id, marker.order_id)
        name = "gone"
    else:
        name = "failed"
        logger.warning(
            "open order not re-hydrated; tried again next run",
            extra={"installation_id": marker.installation_id, "order_id": marker.order_id, "reason": outcome.text},
        )
    setattr(run, name, getattr(run, name) + 1)
    return name
