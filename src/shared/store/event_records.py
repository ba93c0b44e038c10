"""Event-pipeline records in the one table: the event log (which is also the de-duplication
record), idempotency keys, business-product links, order snapshots, store identities and the
attention list of events an operator must see and can replay.

Writes, and the invariant each protects:
- a snapshot: an immutable item per server version (keys.snapshot_key), put without a condition
  and outside any transaction (never billed double): an older answer written last never hides a
  newer one, and writing a version again changes nothing. It is written before the events that
  depend on it, so no event counts as processed before its data is stored.
- an open-order marker (RehydrateOpenOrdersHours only): put (open) or deleted (closed) in the same
  BatchWriteItem as its order's snapshot, without a condition; a snapshot counts as written only
  with its marker. The sweep finds stale ones by Query (stale_open_orders), never a Scan.
- an event record: a conditional put (a transaction only with a learned link, an attention item or
  an earlier delivery's attention to remove): the one write that decides processed or duplicate, so
  two deliveries racing each other, or two events with one idempotency key, have one effect. A
  processed event with an idempotency key is recorded under that key (EVENT_KEY#<scope>#<key>), not
  under its event ID: one item decides both kinds of duplicate, so no 2-item transaction (billed
  double) is needed on the common path.
- attention outcomes (unroutable, failed, needs re-authorisation): one conditional request, so
  they never overwrite a processed record: a put, or a transaction with their attention item.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.store.keys import (
    EVENT_KEY_PREFIX,
    EVENT_KEY_SK,
    EVENT_PREFIX,
    EVENT_SK,
    INSTALLATION_PREFIX,
    INSTALLATION_SK,
    LINK_PREFIX,
    LINK_SK,
    STORE_SK,
    TENANT,
    TTL_ATTRIBUTE,
    Item,
    attention_partition,
    attention_partitions,
    get_n,
    get_s,
    is_conditional_check_failure,
    key,
    n,
    open_order_key,
    open_order_partitions,
    s,
    snapshot_key,
    snapshot_partition,
    snapshot_prefix,
    store_identity_key,
    tenant_value,
)

if TYPE_CHECKING:
    from shared.budget import Deadline

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
ATTENTION_PAGE_SIZE = 100  # attention items per Query page (each partition is read page by page)


class Verdict(StrEnum):
    """How one message ends: the one enum of the pipeline, the handler and the store. The first
    four are recorded (an event record); a duplicate writes nothing; a retry goes back to SQS."""

    PROCESSED = "processed"
    UNROUTABLE = "unroutable"
    FAILED = "failed"
    NEEDS_REAUTHORIZATION = "needs_reauthorization"
    DUPLICATE = "duplicate"
    RETRY = "retry"


class Part(StrEnum):
    """The writes of one event's record, by what each protects."""

    EVENT = "event"  # the event record: processed at most once, once per idempotency key (de-duplication)
    STALE_RECORD = "stale_record"  # an earlier delivery's record under the event ID, now recorded under its key
    SNAPSHOT = "snapshot"  # one server version of a hydrated resource (immutable)
    LINK = "link"  # which installation a business product belongs to
    ATTENTION = "attention"  # an operator sees (and can replay) what did not end processed
    STALE_ATTENTION = "stale_attention"  # an earlier delivery's attention item, now resolved


RECORDED = frozenset({Verdict.PROCESSED, Verdict.UNROUTABLE, Verdict.FAILED, Verdict.NEEDS_REAUTHORIZATION})
ATTENTION_OUTCOMES = frozenset({Verdict.UNROUTABLE, Verdict.FAILED, Verdict.NEEDS_REAUTHORIZATION})


@dataclass(frozen=True)
class EventRecord:
    """What is kept of one event (and, for attention outcomes, enough to replay it)."""

    event_id: str
    outcome: Verdict  # one of RECORDED
    message_id: str
    processed_at: int
    expires_at: int
    event_type: str | None = None
    received_type: str | None = None
    event_format: str | None = None
    event_time: str | None = None
    installation_id: str | None = None
    business_product_id: str | None = None
    resource_paths: tuple[str, ...] = ()
    idempotency_key: str | None = None
    reason: str | None = None
    # the message body, kept for attention outcomes (on their attention item only: stored once)
    # and for processed events of un-hydrated types (on the record)
    raw: str | None = None

    @property
    def attention_sk(self) -> str:
        return f"{self.event_time or self.processed_at}#{self.event_id}"


@dataclass(frozen=True)
class Snapshot:
    """One version of a hydrated resource (an order, an inventory item, a product), as fetched for
    `event_id`. `version_ms`: the server's own version (an order's `updatedAt`), else when the
    request was sent (events/hydrators.py)."""

    kind: str
    installation_id: str
    resource_id: str
    data: dict[str, Any]
    fetched_at_ms: int
    event_id: str
    version_ms: int
    expires_at: int | None = None
    # orders only, and only while RehydrateOpenOrdersHours is on: True keeps (refreshes) the order's
    # open-order marker in the same BatchWriteItem, False removes it (closed); None: no marker write
    open: bool | None = None


@dataclass(frozen=True)
class OpenOrder:
    """An open-order marker (keys.open_order_key)."""

    installation_id: str
    order_id: str
    fetched_at_ms: int


@dataclass(frozen=True)
class Processed:
    """A processed event's record and what goes with it."""

    record: EventRecord
    learned_link: str | None = None
    previous_attention: tuple[str, str] | None = None


@dataclass
class Lookup:
    """What one batch needs to know before it works: one BatchGetItem answers all of it."""

    processed_events: set[str] = field(default_factory=set)
    attention_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # event id -> (outcome, sk)
    key_owner: dict[str, str] = field(default_factory=dict)  # idempotency key -> event id
    links: dict[str, str] = field(default_factory=dict)  # business product -> installation
    link_sources: dict[str, str] = field(default_factory=dict)  # business product -> "operator" / "event:<id>"
    installation_status: dict[str, str] = field(default_factory=dict)  # installation -> status (if stored)
    installation_generation: dict[str, int] = field(default_factory=dict)  # installation -> Installation.generation
    # installation -> (access token, expires at): read with the status, so a cold container needs no
    # GetItem per installation (never the refresh token); never shown (repr)
    installation_tokens: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False)
    stores_known: set[str] = field(default_factory=set)  # installations whose store identity is stored


@dataclass(frozen=True)
class AttentionItem:
    outcome: str
    sort_key: str
    event_id: str
    reason: str | None
    installation_id: str | None
    business_product_id: str | None
    raw: str | None
    partition: str = ""  # its pk (ATTENTION#<outcome>#<shard>)
    event_type: str | None = None

    @property
    def event_time(self) -> str:
        """When the event happened, as its sort key begins: ISO 8601, or (an event without a time)
        the epoch second it was recorded."""
        return self.sort_key.split("#", 1)[0]


class EventStore:
    """`client` is a boto3 DynamoDB client; the store never builds its own."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ------------------------------------------------------------------ reads
    def lookup(
        self,
        event_ids: Iterable[str],
        keys: Iterable[str],
        business_products: Iterable[str],
        installations: Iterable[str] = (),
        stores: Iterable[str] = (),
    ) -> Lookup:
        """One BatchGetItem (per 100 keys) for everything a batch needs to know first.

        Installation items are read for their status (an uninstall done by the OAuth function must
        stop events even while this function still caches a token) and their access token (never
        the refresh token); `stores`: installations whose store identity is wanted if not stored.
        """
        wanted = (
            [key(EVENT_PREFIX + e, EVENT_SK) for e in sorted(set(event_ids))]
            + [key(EVENT_KEY_PREFIX + k, EVENT_KEY_SK) for k in sorted(set(keys))]
            + [key(LINK_PREFIX + b, LINK_SK) for b in sorted(set(business_products))]
            + [key(INSTALLATION_PREFIX + i, INSTALLATION_SK) for i in sorted(set(installations))]
            + [store_identity_key(i) for i in sorted(set(stores))]
        )
        found = Lookup()
        for item in self._batch_get(wanted):
            pk = get_s(item, "pk") or ""
            if pk.startswith(INSTALLATION_PREFIX) and get_s(item, "sk") == STORE_SK:
                found.stores_known.add(pk[len(INSTALLATION_PREFIX) :])
            elif pk.startswith(INSTALLATION_PREFIX):
                installation_id = pk[len(INSTALLATION_PREFIX) :]
                found.installation_status[installation_id] = get_s(item, "status") or ""
                found.installation_generation[installation_id] = get_n(item, "installed_at_ms") or (
                    get_n(item, "installed_at") * 1000
                )
                if token := get_s(item, "access_token"):
                    found.installation_tokens[installation_id] = (token, get_n(item, "access_token_expires_at"))
            elif pk.startswith(EVENT_PREFIX):
                event_id = pk[len(EVENT_PREFIX) :]
                outcome = get_s(item, "outcome")
                if outcome == Verdict.PROCESSED:
                    found.processed_events.add(event_id)
                elif outcome and get_s(item, "attention_sk"):
                    found.attention_of[event_id] = (outcome, get_s(item, "attention_sk") or "")
            elif pk.startswith(EVENT_KEY_PREFIX):  # a processed event recorded under its idempotency key
                owner = get_s(item, "event_id") or ""
                found.key_owner[pk[len(EVENT_KEY_PREFIX) :]] = owner
                if get_s(item, "outcome") == Verdict.PROCESSED:
                    found.processed_events.add(owner)
            elif pk.startswith(LINK_PREFIX):
                found.links[pk[len(LINK_PREFIX) :]] = get_s(item, "installation_id") or ""
                found.link_sources[pk[len(LINK_PREFIX) :]] = get_s(item, "source") or ""
        return found

    def has_store_identity(self, installation_id: str) -> bool:
        answer = self._client.get_item(
            TableName=self._table, Key=store_identity_key(installation_id), ProjectionExpression="pk"
        )
        return "Item" in answer

    def latest_snapshot(self, kind: str, installation_id: str, resource_id: str) -> Snapshot | None:
        """The newest stored version of a resource (the greatest sort key of its versions)."""
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": s(snapshot_partition(kind, installation_id, resource_id)),
                ":prefix": s(snapshot_prefix(kind, resource_id)),
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = answer.get("Items") or []
        if not items:
            return None
        item = items[0]
        return Snapshot(
            kind=kind,
            installation_id=installation_id,
            resource_id=resource_id,
            data=dict(json.loads(get_s(item, "data") or "{}")),
            fetched_at_ms=get_n(item, "fetched_at"),
            event_id=get_s(item, "event_id") or "",
            version_ms=get_n(item, "version"),
        )

    def order_snapshot(self, installation_id: str, order_id: str) -> dict[str, Any] | None:
        latest = self.latest_snapshot("ORDER", installation_id, order_id)
        return None if latest is None else latest.data

    def event(self, event_id: str, scoped_idempotency_key: str | None = None) -> dict[str, Any] | None:
        """The record of `event_id`: under its idempotency key (`Event.scoped_idempotency_key`) once
        processed with one, else under its ID."""
        wanted = [key(EVENT_PREFIX + event_id, EVENT_SK)]
        if scoped_idempotency_key:
            wanted.insert(0, key(EVENT_KEY_PREFIX + scoped_idempotency_key, EVENT_KEY_SK))
        for wanted_key in wanted:
            item = self._client.get_item(TableName=self._table, Key=wanted_key, ConsistentRead=True).get("Item")
            if item is not None and get_s(item, "event_id") == event_id:
                return {k: next(iter(v.values())) for k, v in item.items()}
        return None

    def attention(self, outcome: str, limit: int = 100) -> list[AttentionItem]:
        """The oldest `limit` attention items of `outcome`, across its partitions."""
        page_size = max(1, min(limit, ATTENTION_PAGE_SIZE))
        return list(itertools.islice(self.attention_items(outcome, page_size=page_size), limit))

    def attention_items(
        self,
        outcome: str,
        *,
        installation_id: str | None = None,
        event_type: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[AttentionItem]:
        """Every attention item of `outcome`, oldest first (by sort key, which begins with the event
        time), across its partitions: each partition is read page by page (LastEvaluatedKey) only as
        far as the caller iterates, so nothing is capped by a page's count or its 1 MB. With
        `installation_id` or `event_type` only the matching items come back (a FilterExpression:
        DynamoDB still reads the others, but does not send them)."""
        conditions = {"installation_id": installation_id, "event_type": event_type}
        wanted = {name: value for name, value in conditions.items() if value}
        extra: dict[str, Any] = {}
        if wanted:
            extra["FilterExpression"] = " AND ".join(f"#{name} = :{name}" for name in wanted)
            extra["ExpressionAttributeNames"] = {f"#{name}": name for name in wanted}
        values = {f":{name}": s(value) for name, value in wanted.items()}
        streams = [
            self._attention_partition(outcome, partition, values, extra, page_size or ATTENTION_PAGE_SIZE)
            for partition in attention_partitions(outcome)
        ]
        yield from heapq.merge(*streams, key=lambda item: item.sort_key)

    def _attention_partition(
        self, outcome: str, partition: str, values: Item, extra: dict[str, Any], page_size: int
    ) -> Iterator[AttentionItem]:
        start: Item | None = None
        while True:
            answer = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(partition), **values},
                Limit=page_size,
                **extra,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in answer.get("Items", []):
                yield AttentionItem(
                    outcome=outcome,
                    sort_key=get_s(item, "sk") or "",
                    event_id=get_s(item, "event_id") or "",
                    reason=get_s(item, "reason"),
                    installation_id=get_s(item, "installation_id"),
                    business_product_id=get_s(item, "business_product_id"),
                    raw=get_s(item, "raw"),
                    partition=get_s(item, "pk") or "",
                    event_type=get_s(item, "event_type"),
                )
            start = answer.get("LastEvaluatedKey")
            if not start:
                return

    # ----------------------------------------------------------------- writes
    def record(
        self,
        record: EventRecord,
        *,
        snapshot: Snapshot | None = None,
        learned_link: str | None = None,
        previous_attention: tuple[str, str] | None = None,
    ) -> bool:
        """Record one event with one conditional request; False when it was already processed (a
        duplicate: nothing written). The path of attention outcomes, and of one event at a time.

        `previous_attention` (outcome, sort key) is the attention item an earlier delivery left;
        it is removed in the same request when this delivery ends differently.
        """
        parts = self._writes(record, snapshot, learned_link, previous_attention)
        try:
            self._write([write for _, write in parts])
        except Exception as error:
            failed = _failed_parts(error, [name for name, _ in parts])
            if Part.EVENT in failed:
                return False  # processed before, or another event with this key was: a duplicate
            raise
        return True

    def put_snapshots(self, snapshots: list[Snapshot], *, attempts: int, deadline: Deadline | None) -> list[int]:
        """Store immutable snapshot versions in BatchWriteItems (no condition needed, never billed
        double), with the open-order marker of each order snapshot that has `open` set (a put while
        open, a delete once closed) in the same request where the 25-item limit allows; the items
        DynamoDB leaves unprocessed are sent again, `attempts` times at most and only while `deadline`
        leaves time. Returns the indexes still unwritten (a snapshot whose marker is unwritten too)."""
        requests: dict[tuple[str, str], dict[str, Any]] = {}  # a key once per request
        where: dict[tuple[str, str], list[int]] = {}
        marker_version: dict[tuple[str, str], int] = {}
        for index, snapshot in enumerate(snapshots):
            item = _snapshot_item(snapshot)
            at = (item["pk"]["S"], item["sk"]["S"])
            requests.setdefault(at, {"PutRequest": {"Item": item}})
            where.setdefault(at, []).append(index)
            if snapshot.open is None or snapshot.kind != "ORDER":
                continue
            marker = open_order_key(snapshot.installation_id, snapshot.resource_id)
            at = (marker["pk"]["S"], marker["sk"]["S"])
            where.setdefault(at, []).append(index)
            if snapshot.version_ms >= marker_version.get(at, -1):  # the newest version's state decides
                marker_version[at] = snapshot.version_ms
                requests[at] = (
                    {"PutRequest": {"Item": _open_order_item(snapshot)}}
                    if snapshot.open
                    else {"DeleteRequest": {"Key": marker}}
                )
        pending, unwritten, refused = list(requests.values()), list[dict[str, Any]](), 0
        while pending:
            sent, pending = pending[:BATCH_WRITE_LIMIT], pending[BATCH_WRITE_LIMIT:]
            answer = self._client.batch_write_item(RequestItems={self._table: sent})
            left = (answer.get("UnprocessedItems") or {}).get(self._table) or []
            if not left:
                continue
            refused += 1
            pause = min(1.0, 0.05 * 2 ** (refused - 1))
            if refused >= attempts or (deadline is not None and not deadline.fits(pause + 1.0)):
                unwritten = left + pending
                break
            time.sleep(pause)
            pending = left + pending
        return sorted({index for request in unwritten for index in where[_request_key(request)]})

    def stale_open_orders(
        self, fetched_before_ms: int, *, first_shard: int = 0, page_size: int = 100
    ) -> Iterator[OpenOrder]:
        """Open-order markers whose snapshot was fetched before `fetched_before_ms`: one Query per
        marker partition (page by page, only as far as the caller iterates; the FilterExpression
        leaves the fresh ones out of the answer, DynamoDB still reads them), never a Scan."""
        for partition in open_order_partitions(first_shard):
            start: Item | None = None
            while True:
                answer = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk",
                    FilterExpression="fetched_at < :before",
                    ExpressionAttributeValues={":pk": s(partition), ":before": n(fetched_before_ms)},
                    Limit=page_size,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                for item in answer.get("Items", []):
                    yield OpenOrder(
                        installation_id=get_s(item, "installation_id") or "",
                        order_id=get_s(item, "order_id") or "",
                        fetched_at_ms=get_n(item, "fetched_at"),
                    )
                start = answer.get("LastEvaluatedKey")
                if not start:
                    break

    def delete_open_order(self, installation_id: str, order_id: str) -> None:
        self._client.delete_item(TableName=self._table, Key=open_order_key(installation_id, order_id))

    def record_processed(self, processed: Sequence[Processed]) -> list[bool]:
        """Record processed events whose snapshot is stored already (put_snapshots: no event counts
        before its data is stored), each with `record` (its conditional write decides processed or
        duplicate, under its idempotency key when it has one). False: a duplicate."""
        return [
            self.record(entry.record, learned_link=entry.learned_link, previous_attention=entry.previous_attention)
            for entry in processed
        ]

    def put_store_identity(self, installation_id: str, store: dict[str, Any], fetched_at_ms: int) -> None:
        item: Item = {
            **store_identity_key(installation_id),
            "site_id": s(str(store.get("siteId") or "")),
            "widget_id": s(str(store.get("widgetId") or "")),
            "fetched_at": n(fetched_at_ms),
        }
        self._client.put_item(TableName=self._table, Item=item)

    def put_link(self, business_product_id: str, installation_id: str, source: str) -> None:
        """Register (or correct) which installation a business product belongs to."""
        self._client.put_item(TableName=self._table, Item=_link_item(business_product_id, installation_id, source))

    def delete_attention(self, item: AttentionItem) -> None:
        self._client.delete_item(TableName=self._table, Key=key(item.partition, item.sort_key))

    # --------------------------------------------------------------- internals
    def _writes(
        self,
        record: EventRecord,
        snapshot: Snapshot | None,
        learned_link: str | None,
        previous_attention: tuple[str, str] | None,
    ) -> list[tuple[Part, dict[str, Any]]]:
        """The writes of one event, each named: a cancelled transaction is read by part, not by
        position, so reordering or adding writes cannot change what a failed condition means."""
        table = self._table
        if record.idempotency_key:  # only processed records carry it: the key is claimed once, by one event
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition = "attribute_not_exists(pk) OR outcome <> :processed"
            values = {":processed": s(Verdict.PROCESSED.value)}
        put: dict[str, Any] = {"TableName": table, "Item": _event_item(record), "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = values
        writes: list[tuple[Part, dict[str, Any]]] = [(Part.EVENT, {"Put": put})]
        if record.idempotency_key and previous_attention:  # an earlier delivery's record under the ID
            stale_record = key(EVENT_PREFIX + record.event_id, EVENT_SK)
            writes.append((Part.STALE_RECORD, {"Delete": {"TableName": table, "Key": stale_record}}))
        if snapshot is not None:
            writes.append((Part.SNAPSHOT, {"Put": {"TableName": table, "Item": _snapshot_item(snapshot)}}))
        if learned_link and record.business_product_id:
            link = _link_item(record.business_product_id, learned_link, f"event:{record.event_id}")
            writes.append((Part.LINK, {"Put": {"TableName": table, "Item": link}}))
        if record.outcome in ATTENTION_OUTCOMES:
            writes.append((Part.ATTENTION, {"Put": {"TableName": table, "Item": _attention_item(record)}}))
        if previous_attention and previous_attention != (record.outcome.value, record.attention_sk):
            outcome, sort_key = previous_attention
            stale = key(attention_partition(outcome, record.event_id), sort_key)
            writes.append((Part.STALE_ATTENTION, {"Delete": {"TableName": table, "Key": stale}}))
        return writes

    def _write(self, writes: list[dict[str, Any]]) -> None:
        if len(writes) == 1:
            self._client.put_item(**writes[0]["Put"])
        else:
            self._client.transact_write_items(TransactItems=writes)

    def _batch_get(self, keys: list[Item]) -> list[Item]:
        items: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys[start : start + BATCH_GET_LIMIT],
                    "ConsistentRead": True,
                    # never the refresh token of an installation item
                    "ProjectionExpression": (
                        "pk, sk, #s, #o, #a, #e, #i, #src, installed_at, installed_at_ms,"
                        " access_token, access_token_expires_at"
                    ),
                    "ExpressionAttributeNames": {
                        "#s": "status",
                        "#o": "outcome",
                        "#a": "attention_sk",
                        "#e": "event_id",
                        "#i": "installation_id",
                        "#src": "source",
                    },
                }
            }
            for attempt in range(8):
                answer = self._client.batch_get_item(RequestItems=request)
                items.extend(answer.get("Responses", {}).get(self._table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            if request:
                raise RuntimeError("DynamoDB left keys unprocessed after retries")
        return items


def _event_item(record: EventRecord) -> Item:
    where = (
        key(EVENT_KEY_PREFIX + record.idempotency_key, EVENT_KEY_SK)
        if record.idempotency_key
        else key(EVENT_PREFIX + record.event_id, EVENT_SK)
    )
    item: Item = {
        **where,
        "event_id": s(record.event_id),
        "outcome": s(record.outcome.value),
        "message_id": s(record.message_id),
        "processed_at": n(record.processed_at),
        TTL_ATTRIBUTE: n(record.expires_at),
    }
    optional = {
        "event_type": record.event_type,
        "received_type": record.received_type,
        "event_format": record.event_format,
        "event_time": record.event_time,
        "installation_id": record.installation_id,
        "business_product_id": record.business_product_id,
        "idempotency_key": record.idempotency_key,
        "reason": record.reason,
        # an attention outcome's body is on its attention item (one copy: half the write units)
        "raw": None if record.outcome in ATTENTION_OUTCOMES else record.raw,
    }
    item.update({name: s(value) for name, value in optional.items() if value})
    if record.installation_id:
        item[TENANT] = s(tenant_value(record.installation_id, item["pk"]["S"]))
    if record.resource_paths:
        item["resources"] = {"L": [s(path) for path in record.resource_paths]}
    if record.outcome in ATTENTION_OUTCOMES:
        item["attention_sk"] = s(record.attention_sk)
    return item


def _attention_item(record: EventRecord) -> Item:
    item: Item = {
        **key(attention_partition(record.outcome.value, record.event_id), record.attention_sk),
        "event_id": s(record.event_id),
        "recorded_at": n(record.processed_at),
        TTL_ATTRIBUTE: n(record.expires_at),  # with its event record (EventRecordRetentionDays)
    }
    optional = {
        "reason": record.reason,
        "installation_id": record.installation_id,
        "business_product_id": record.business_product_id,
        "event_type": record.event_type,
        "raw": record.raw,
    }
    item.update({name: s(value) for name, value in optional.items() if value})
    if record.installation_id:
        item[TENANT] = s(tenant_value(record.installation_id, item["pk"]["S"]))
    return item


def _link_item(business_product_id: str, installation_id: str, source: str) -> Item:
    pk = LINK_PREFIX + business_product_id
    return {
        **key(pk, LINK_SK),
        "installation_id": s(installation_id),
        "source": s(source),
        "updated_at": n(time.time()),
        TENANT: s(tenant_value(installation_id, pk)),  # kept while installed; purged with the tenant
    }


def _snapshot_item(snapshot: Snapshot) -> Item:
    item: Item = {
        **snapshot_key(snapshot.kind, snapshot.installation_id, snapshot.resource_id, snapshot.version_ms),
        "kind": s(snapshot.kind),
        "resource_id": s(snapshot.resource_id),
        "data": s(json.dumps(snapshot.data, separators=(",", ":"), sort_keys=True)),
        "fetched_at": n(snapshot.fetched_at_ms),
        "version": n(snapshot.version_ms),
        "event_id": s(snapshot.event_id),
    }
    if snapshot.expires_at:
        item[TTL_ATTRIBUTE] = n(snapshot.expires_at)
    return item


def _open_order_item(snapshot: Snapshot) -> Item:
    """An open order's marker: where to find it and when its snapshot was fetched (about 200 bytes:
    one write unit, one more for its TenantItems index entry). No `kind`: the outbox ignores it."""
    item: Item = {
        **open_order_key(snapshot.installation_id, snapshot.resource_id),
        "installation_id": s(snapshot.installation_id),
        "order_id": s(snapshot.resource_id),
        "fetched_at": n(snapshot.fetched_at_ms),
        "version": n(snapshot.version_ms),
    }
    item[TENANT] = s(tenant_value(snapshot.installation_id, item["sk"]["S"]))  # spread by order
    if snapshot.expires_at:  # refreshed with every snapshot: a marker left behind goes with its data
        item[TTL_ATTRIBUTE] = n(snapshot.expires_at)
    return item


def _request_key(request: dict[str, Any]) -> tuple[str, str]:
    keys = request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]
    return keys["pk"]["S"], keys["sk"]["S"]


def _failed_parts(error: Exception, parts: list[Part]) -> set[Part]:
    """Which named parts' conditions failed: a lone put's own failure, or a cancelled transaction's
    reasons mapped to the parts in the order they were sent."""
    if is_conditional_check_failure(error):
        return {parts[0]}
    response = getattr(error, "response", None) or {}
    if response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return set()
    reasons = [str(reason.get("Code") or "None") for reason in response.get("CancellationReasons", [])]
    return {part for part, code in zip(parts, reasons, strict=False) if code == "ConditionalCheckFailed"}
