"""Lambda entry point of the idle sweep (hourly, template.yaml: SweepFunction).

Refreshes installations whose tokens were not refreshed for IDLE_REFRESH_HOURS, publishes the
gauges InstallationsActive and InstallationsNeedingReauthorization, then purges the tenants
uninstalled more than TENANT_PURGE_DAYS ago (sweep/purge.py) in the time left, then (when
REHYDRATE_OPEN_ORDERS_HOURS is set) re-hydrates open orders whose snapshot is older than that
(sweep/rehydrate.py) in what is left after that. A run that fails outright (the
table unreachable) raises, so the function's Errors metric sees it; the next hour's run goes on.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.budget import Deadline
from shared.observability import count, logger, metrics
from shared.store.installations import SWEEP_SHARDS
from shared.store.keys import OPEN_ORDER_SHARDS
from shared.wiring import Container
from sweep.dependencies import Dependencies
from sweep.idle import first_shard_for, sweep_idle
from sweep.purge import purge_uninstalled
from sweep.rehydrate import rehydrate_open_orders

_container = Container(Dependencies)


def dependencies() -> Dependencies:
    return _container.get()


def reset_dependencies(replacement: Dependencies | None = None) -> None:
    """For tests and the local stack: start from fresh collaborators (or given ones)."""
    _container.reset(replacement)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, dependencies())


def handle(event: dict[str, Any], context: Any, deps: Dependencies) -> dict[str, Any]:
    deadline = Deadline.from_context(context, deps.budget)
    now = time.time()
    report = sweep_idle(
        deps.installations,
        deps.tokens,
        idle_seconds=deps.settings.idle_refresh_hours * 3600,
        now=now,
        deadline=deadline,
        budget=deps.budget,
        first_shard=first_shard_for(now, SWEEP_SHARDS),
    )
    # Counters only when non-zero (each custom metric published in an hour is billed for it); the
    # two gauges every run, so an alarm on them always has data.
    for name, value in (
        ("IdleRefreshes", report.refreshed),
        ("IdleRefreshFailures", report.failed),
        ("IdleRefreshRejected", report.reauthorization_required),
        ("IdleSweepDeferred", int(report.deferred)),
    ):
        if value:
            count(name, value)
    metrics.add_metric(name="InstallationsActive", unit=MetricUnit.Count, value=report.active)
    metrics.add_metric(
        name="InstallationsNeedingReauthorization", unit=MetricUnit.Count, value=report.needing_reauthorization
    )
    purged = purge_uninstalled(
        deps.installations,
        deps.purge,
        grace_seconds=deps.settings.tenant_purge_days * 86_400,
        now=now,
        deadline=deadline,
    )
    if purged.purged:
        count("TenantsPurged", purged.purged)
    hours = deps.settings.rehydrate_open_orders_hours
    rehydrated = rehydrate_open_orders(
        deps.event_store,
        deps.installations,
        deps.pipeline,
        older_than_hours=hours,
        now=now,
        deadline=deadline,
        first_shard=first_shard_for(now, OPEN_ORDER_SHARDS),
    )
    for name, value in (
        ("OrdersRehydrated", rehydrated.rehydrated + rehydrated.closed),
        ("OrderRehydrationFailures", rehydrated.failed),
        ("OrderRehydrationDeferred", int(rehydrated.deferred)),
    ):
        if value:
            count(name, value)
    log = logger.warning if report.failed or report.deferred or rehydrated.failed else logger.info
    log(
        "idle sweep done",
        extra={
            "sweep": report.as_dict(),
            "purge": purged.as_dict(),
            "rehydrate": rehydrated.as_dict() if hours else None,
            "scheduled_at": event.get("time"),
        },
    )
    return {**report.as_dict(), "purge": purged.as_dict(), "rehydrate": rehydrated.as_dict()}
