"""The idle sweep: refresh every installation whose tokens nobody refreshed for a while.

Many OAuth providers revoke a refresh token left unused; an installation without events would
otherwise never be refreshed. Candidates come from the sparse sweep index (no Scan), oldest first;
each is refreshed through the token service's lease, so a sweep never races an events batch or
Settings, and an installation refreshed meanwhile is skipped.

Budget of one run (the function's Timeout minus TimeBudget.lambda_margin_seconds, the Deadline):
- the gauge's COUNT queries at the end get `budget.store_reserve_seconds`: refreshes run inside
  `deadline.less(store_reserve)`;
- a refresh starts only while one whole token attempt plus the store reserve still fits in that
  (budget.token.attempt_seconds + budget.store_reserve_seconds: 13.05 + 6 s); each refresh in flight
  is bounded by the same deadline (the client starts no attempt it cannot finish, the lease covers it);
- what does not fit is deferred: the next run (hourly) starts with the next shard;
- after MAX_CONSECUTIVE_FAILURES failures in a row (Buy with Prime down, credentials wrong) the run
  stops: hammering an outage refreshes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Protocol

from shared.budget import Deadline, TimeBudget
from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError
from shared.models import InstallationStatus
from shared.observability import logger

WORKERS = 4
MAX_CONSECUTIVE_FAILURES = 10


class SweepStore(Protocol):
    def idle_installations(self, refreshed_before: int, first_shard: int = 0) -> Iterator[str]: ...

    def count_with_status(self, status: InstallationStatus) -> int: ...


class IdleRefresher(Protocol):
    def refresh_idle(self, installation_id: str, refreshed_before: int, *, deadline: Deadline) -> bool: ...


@dataclass
class SweepReport:
    candidates: int = 0
    refreshed: int = 0
    skipped: int = 0  # refreshed meanwhile, being refreshed, or gone
    reauthorization_required: int = 0  # the refresh token was refused: the merchant must re-authorise
    failed: int = 0  # transient or unknown trouble: the next run tries again
    deferred: bool = False  # out of time, or stopped after repeated failures: the next run goes on
    active: int = 0
    needing_reauthorization: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def sweep_idle(
    store: SweepStore,
    tokens: IdleRefresher,
    *,
    idle_seconds: int,
    now: float,
    deadline: Deadline,
    budget: TimeBudget,
    workers: int = WORKERS,
    first_shard: int = 0,
) -> SweepReport:
    report = SweepReport()
    refreshed_before = int(now) - idle_seconds
    work = deadline.less(budget.store_reserve_seconds)
    start_needs = budget.token.attempt_seconds + budget.store_reserve_seconds
    streak = 0  # consecutive failures

    def one(installation_id: str) -> str:
        try:
            return "refreshed" if tokens.refresh_idle(installation_id, refreshed_before, deadline=work) else "skipped"
        except ReauthorizationRequiredError:
            return "reauthorization_required"
        except InstallationNotFoundError:
            return "skipped"
        except Exception as error:  # noqa: BLE001 - one installation's trouble never stops the others
            logger.warning(
                "idle refresh failed; tried again next run",
                extra={"installation_id": installation_id, "error": type(error).__name__},
            )
            from shared.failures import report_failure

            report_failure(error)
            return "failed"

    def tally(done: set[Future[str]]) -> None:
        nonlocal streak
        for future in done:
            outcome = future.result()
            setattr(report, outcome, getattr(report, outcome) + 1)
            streak = streak + 1 if outcome == "failed" else 0

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
        running: set[Future[str]] = set()
        for installation_id in store.idle_installations(refreshed_before, first_shard=first_shard):
            if not work.fits(start_needs) or streak >= MAX_CONSECUTIVE_FAILURES:
                report.deferred = True
                break
            report.candidates += 1
            running.add(pool.submit(one, installation_id))
            if len(running) >= workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                tally(done)
        tally(wait(running).done)
    report.active = store.count_with_status(InstallationStatus.ACTIVE)
    report.needing_reauthorization = store.count_with_status(InstallationStatus.NEEDS_REAUTHORIZATION)
    return report


def first_shard_for(now: float, shards: int) -> int:
    """Each hourly run starts with another shard: a run that runs out of time starves none."""
    return int(now // 3600) % shards
