"""DynamoDB request units counted from the requests a client sends, with the item sizes read
straight from in-process moto's tables (no extra request, nothing counted twice).

Rules (on-demand billing, as AWS documents them; applied per item):
- strongly consistent read: 1 RRU per started 4 KB of the whole item (a projection does not make it
  cheaper); an item not found still costs 1; eventually consistent: half; BatchGetItem: per key;
  Query: per started 4 KB of the items it returns (sizes as returned).
- write: 1 WRU per started KB of the larger of the item before and after (PutItem, UpdateItem;
  DeleteItem: the deleted item), at least 1; a failed condition is charged like the write would
  have been (the existing item's size, at least 1); BatchWriteItem: per item;
  TransactWriteItems: twice the units of each item it names (cancelled ones too).
- a global secondary index: when an item's index key changes, the old entry is deleted and the
  new one written, 1 WRU per started KB of each entry (its table keys, index keys and 100 bytes).

Item size: attribute names plus values in UTF-8 bytes; a number (significant digits + 1) / 2 + 1
bytes; a list or map 3 bytes plus 1 per element; booleans and nulls 1 byte.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

KB = 1024
READ_UNIT_BYTES = 4 * KB
INDEX_ENTRY_OVERHEAD = 100

Key = tuple[str, str]
ItemLookup = Callable[[str, Key], Mapping[str, Any] | None]  # (table, (pk, sk)) -> attributes (wire form)


def value_bytes(value: Mapping[str, Any]) -> int:  # noqa: PLR0911 - one answer per type
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = str(Decimal(str(raw)).normalize()).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits.split("E")[0]) / 2) + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else math.ceil(len(str(raw)) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_bytes(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_bytes(v) for k, v in raw.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_bytes({kind[0]: v}) for v in raw)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_bytes(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int | None, consistent: bool) -> float:
    units = 1 if size is None else max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


class Index:
    """A global secondary index, as the table defines it: its key attributes."""

    def __init__(self, name: str, attributes: tuple[str, ...], table_keys: tuple[str, ...]) -> None:
        self.name = name
        self.attributes = attributes
        self.table_keys = table_keys

    def entry(self, item: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
        if item is None or any(a not in item for a in self.attributes):
            return None
        return tuple(str(item[a]) for a in self.attributes)

    def entry_bytes(self, item: Mapping[str, Any]) -> int:
        names = dict.fromkeys((*self.table_keys, *self.attributes))
        return item_bytes({n: item[n] for n in names if n in item}) + INDEX_ENTRY_OVERHEAD

    def units(self, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> int:
        old, new = self.entry(before), self.entry(after)
        if old == new:
            return 0
        return (write_units(self.entry_bytes(before)) if old and before else 0) + (
            write_units(self.entry_bytes(after)) if new and after else 0
        )


class UnitMeter:
    """Counts requests (botocore `before-send`: every HTTP request, retries included) and read and
    write units (`provide-client-params` notes the items before, `after-call` prices them after).
    The client's calls must not overlap one another (see SerialisedClient)."""

    def __init__(self, lookup: ItemLookup, indexes: Mapping[str, list[Index]], key_names: tuple[str, str]) -> None:
        self._lookup = lookup
        self._indexes = indexes
        self._pk, self._sk = key_names
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # "dynamodb.GetItem"
        self.rru: dict[str, float] = defaultdict(float)  # by operation
        self.wru: dict[str, float] = defaultdict(float)  # by operation, index writes included
        self.index_wru = 0.0

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-send", self._count)
        events.register("provide-client-params.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def totals(self) -> tuple[int, float, float]:
        dynamodb = sum(n for op, n in self.requests.items() if op.startswith("dynamodb."))
        return dynamodb, sum(self.rru.values()), sum(self.wru.values())

    # ------------------------------------------------------------------ hooks
    def _count(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.requests[event_name.split(".", 1)[1]] += 1

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        writes = [(table, key, self._lookup(table, key)) for table, key in self._written_keys(model.name, params)]
        context["bench_units"] = (dict(params), writes)

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        noted = context.get("bench_units")
        if noted is None:
            return
        params, writes = noted
        operation = model.name
        failed = "Error" in parsed
        rru = self._read_units(operation, params, parsed)
        wru, index_wru = 0.0, 0.0
        for table, key, before in writes:
            after = before if failed else self._lookup(table, key)
            sizes = [item_bytes(i) for i in (before, after) if i is not None]
            if not sizes and operation in ("PutItem", "TransactWriteItems", "BatchWriteItem"):
                sizes = [item_bytes(self._put_item_of(params, table, key) or {})]
            wru += write_units(max(sizes, default=0))
            index_wru += sum(index.units(before, after) for index in self._indexes.get(table, []))
        if operation == "TransactWriteItems":
            wru *= 2
        with self._lock:
            if rru:
                self.rru[operation] += rru
            if wru or index_wru:
                self.wru[operation] += wru + index_wru
                self.index_wru += index_wru

    # -------------------------------------------------------------- internals
    def _key(self, item: Mapping[str, Any]) -> Key:
        return str(item[self._pk]["S"]), str(item[self._sk]["S"])

    def _written_keys(self, operation: str, params: dict[str, Any]) -> list[tuple[str, Key]]:
        if operation == "PutItem":
            return [(params["TableName"], self._key(params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], self._key(params["Key"]))]
        if operation == "BatchWriteItem":
            return [
                (table, self._key(r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"]))
                for table, requests in params["RequestItems"].items()
                for r in requests
            ]
        if operation == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                ((_, body),) = entry.items()
                found.append((body["TableName"], self._key(body.get("Item") or body["Key"])))
            return found
        return []

    def _put_item_of(self, params: dict[str, Any], table: str, key: Key) -> Mapping[str, Any] | None:
        """The item a put sends (for a cancelled put of an absent item: priced as sent)."""
        candidates = [params.get("Item")]
        candidates += [e.get("Put", {}).get("Item") for e in params.get("TransactItems", [])]
        for requests in (params.get("RequestItems") or {}).values():
            candidates += [r.get("PutRequest", {}).get("Item") for r in requests if isinstance(r, dict)]
        return next((c for c in candidates if c and self._key(c) == key), None)

    def _read_units(self, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> float:
        if operation == "GetItem":
            item = self._lookup(params["TableName"], self._key(params["Key"]))
            return read_units(None if item is None else item_bytes(item), bool(params.get("ConsistentRead")))
        if operation == "BatchGetItem":
            units = 0.0
            for table, request in params["RequestItems"].items():
                consistent = bool(request.get("ConsistentRead"))
                for key in request["Keys"]:
                    item = self._lookup(table, self._key(key))
                    units += read_units(None if item is None else item_bytes(item), consistent)
            return units
        if operation in ("Query", "Scan"):
            size = sum(item_bytes(i) for i in parsed.get("Items", []))
            return read_units(size, bool(params.get("ConsistentRead")))
        return 0.0


class SerialisedClient:
    """One DynamoDB request at a time across every container of the simulation: in-process moto is
    not safe under concurrent writes, and it makes the before/after sizes exact (the atomicity real
    DynamoDB gives each request)."""

    lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client
        self.meta = client.meta

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_"):
            return method

        def serialised(*args: Any, **kwargs: Any) -> Any:
            with SerialisedClient.lock:
                return method(*args, **kwargs)

        return serialised
