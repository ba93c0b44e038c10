"""Purge an uninstalled tenant: every item of one installation, by key or index, never a Scan.

What one installation leaves in the table and how each is found:
- its event records, idempotency keys, attention items and business-product links: the sparse
  TenantItems index (keys.tenant_partitions: 8 partitions of that installation only);
- its snapshots: their own partitions (keys.snapshot_partitions: 16 per kind);
- its store identity and a parked (rescued) token pair: by key;
- the installation item (the uninstalled tombstone): deleted last, on condition that it is still
  uninstalled, so an interrupted purge is found again by the next sweep and resumes, and a merchant
  who re-installed is never purged.

Budget: one DynamoDB call (a page of a Query, a BatchWriteItem of 25 deletes) is started only while
`deadline` fits CALL_SECONDS (botocore's own retries included); what does not fit is left for the
next sweep (PurgeReport.done False). Items written without the tenant attribute (before it existed)
are not found by the index: they expire by TTL (EventRecordRetentionDays).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.store.keys import (
    TENANT,
    TENANT_INDEX,
    Item,
    get_s,
    installation_key,
    is_conditional_check_failure,
    rescued_tokens_key,
    s,
    snapshot_partitions,
    store_identity_key,
    tenant_partitions,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shared.budget import Deadline

BATCH_WRITE_LIMIT = 25
CALL_SECONDS = 5.0  # one Query page or BatchWriteItem, with botocore's retries, fits in this
UNPROCESSED_ATTEMPTS = 8


class TenantActiveError(RuntimeError):
    """The installation is not uninstalled: a purge never touches a live tenant."""


@dataclass
class PurgeReport:
    installation_id: str
    deleted: int = 0
    done: bool = False  # False: out of time (or the tombstone changed); the next sweep resumes
    skipped: str | None = None  # "not_found" (nothing but strays left), "reinstalled" (stopped)


class TenantPurge:
    """`client` is a boto3 DynamoDB client; the purge never builds its own."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def purge(self, installation_id: str, deadline: Deadline) -> PurgeReport:
        report = PurgeReport(installation_id)
        status = self._status(installation_id)
        if status not in (None, "uninstalled"):
            raise TenantActiveError(f"installation {installation_id} is {status}, not uninstalled: not purged")
        for keys in self._tenant_keys(installation_id, deadline):  # page by page, streamed
            # checked before every page: a merchant re-installing during a purge stops it at once
            if self._status(installation_id) not in (None, "uninstalled"):
                report.skipped = "reinstalled"
                return report
            if not self._delete(keys, deadline, report):
                return report
        for key in (store_identity_key(installation_id), rescued_tokens_key(installation_id)):
            if not deadline.fits(CALL_SECONDS):
                return report
            old = self._client.delete_item(TableName=self._table, Key=key, ReturnValues="ALL_OLD")
            report.deleted += "Attributes" in old
        if status is None:
            report.skipped, report.done = "not_found", True
        elif deadline.fits(CALL_SECONDS):
            report.done = self._delete_tombstone(installation_id)
            report.deleted += int(report.done)
        return report

    def plan(self, installation_id: str, deadline: Deadline) -> int:
        """How many items a purge would delete (read only: a dry run)."""
        found = sum(len(keys) for keys in self._tenant_keys(installation_id, deadline))
        for extra in (store_identity_key(installation_id), rescued_tokens_key(installation_id)):
            found += "Item" in self._client.get_item(TableName=self._table, Key=extra, ProjectionExpression="pk")
        return found + (self._status(installation_id) is not None)

    # ----------------------------------------------------------------- internals
    def _status(self, installation_id: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table,
            Key=installation_key(installation_id),
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#s": "status"},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else get_s(item, "status") or ""

    def _tenant_keys(self, installation_id: str, deadline: Deadline) -> Iterator[list[Item]]:
        """Pages of keys: the tenant's index partitions, then its snapshot partitions."""
        queries: list[dict[str, Any]] = [
            {
                "IndexName": TENANT_INDEX,
                "KeyConditionExpression": "#t = :t",
                "ExpressionAttributeNames": {"#t": TENANT},
                "ExpressionAttributeValues": {":t": s(partition)},
            }
            for partition in tenant_partitions(installation_id)
        ] + [
            {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": s(partition)},
                "ProjectionExpression": "pk, sk",
            }
            for partition in snapshot_partitions(installation_id)
        ]
        for query in queries:
            start: Item | None = None
            while deadline.fits(CALL_SECONDS):
                page = self._client.query(
                    TableName=self._table,
                    Limit=BATCH_WRITE_LIMIT * 4,
                    **query,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                keys = [{"pk": item["pk"], "sk": item["sk"]} for item in page.get("Items", [])]
                if keys:
                    yield keys
                start = page.get("LastEvaluatedKey")
                if not start:
                    break

    def _delete(self, keys: list[Item], deadline: Deadline, report: PurgeReport) -> bool:
        """Delete `keys` in BatchWriteItems of 25 (unprocessed ones sent again); False when out of time."""
        for first in range(0, len(keys), BATCH_WRITE_LIMIT):
            requests = [{"DeleteRequest": {"Key": k}} for k in keys[first : first + BATCH_WRITE_LIMIT]]
            for attempt in range(UNPROCESSED_ATTEMPTS):
                if not deadline.fits(CALL_SECONDS):
                    return False
                answer = self._client.batch_write_item(RequestItems={self._table: requests})
                left = (answer.get("UnprocessedItems") or {}).get(self._table) or []
                report.deleted += len(requests) - len(left)
                requests = left
                if not requests:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            if requests:
                return False
        return True

    def _delete_tombstone(self, installation_id: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=installation_key(installation_id),
                ConditionExpression="#s = :uninstalled",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":uninstalled": s("uninstalled")},
            )
        except Exception as error:
            if is_conditional_check_failure(error):
                return False  # re-installed meanwhile: never purged
            raise
        return True
