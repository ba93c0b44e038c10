"""The sweep's second duty: purge the tenants uninstalled more than TENANT_PURGE_DAYS ago.

Candidates come from the sweep index (UNINSTALLED#<n>, sorted by the uninstall hour: no Scan);
each is purged by shared/store/purge.py, which deletes the tombstone last, so a tenant whose purge
did not finish is a candidate again next hour. Budget: the purge runs after the idle refreshes, in
what is left of the run's Deadline; a tenant is started only while MIN_START_SECONDS fit (one
Query page and one BatchWriteItem, CALL_SECONDS each), and every DynamoDB call inside checks the
same deadline. A re-installed tenant is skipped (its tombstone is gone from UNINSTALLED#<n>).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Protocol

from shared.budget import Deadline
from shared.observability import logger
from shared.store.purge import CALL_SECONDS, PurgeReport, TenantActiveError

MIN_START_SECONDS = 2 * CALL_SECONDS


class PurgeCandidates(Protocol):
    def uninstalled_before(self, cutoff: int) -> Iterator[str]: ...


class Purger(Protocol):
    def purge(self, installation_id: str, deadline: Deadline) -> PurgeReport: ...


@dataclass
class PurgeRun:
    purged: int = 0  # tenants with nothing left
    deleted: int = 0  # items deleted
    deferred: bool = False  # out of time: the next run resumes

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def purge_uninstalled(
    candidates: PurgeCandidates, purger: Purger, *, grace_seconds: int, now: float, deadline: Deadline
) -> PurgeRun:
    run = PurgeRun()
    for installation_id in candidates.uninstalled_before(int(now) - grace_seconds):
        if not deadline.fits(MIN_START_SECONDS):
            run.deferred = True
            break
        try:
            report = purger.purge(installation_id, deadline)
        except TenantActiveError:
            continue  # re-installed since the index was read
        run.deleted += report.deleted
        if report.done:
            run.purged += 1
            logger.info("tenant purged", extra={"installation_id": installation_id, "deleted": report.deleted})
        elif report.skipped is None:
            run.deferred = True  # out of time inside this tenant
            break
    return run
