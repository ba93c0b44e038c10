"""moto without three per-request costs that make a load test through the local stack impossible
(opt-in: `with fast_moto(): ...`; each piece is also usable alone).

1. `fast_transactions()`: moto backs up every table a TransactWriteItems touches with
   `copy.deepcopy(table)` before applying it, so each transaction costs time proportional to the
   table's size: about 80 ms at a few hundred items, seconds at a few thousand; thousands of
   events, one transaction each, grow quadratically. Here moto's own implementation runs
   unchanged (conditions, cancellation reasons, the order of checks) and only the backup changes:
   the items the transaction names are saved (a copy of each, or "absent") and exactly those are
   put back when it fails. Equivalent as long as no other request changes the table meanwhile,
   which the local stack guarantees (its moto server runs one DynamoDB request at a time,
   `SerialisedApp`). tests/reliability/test_fast_moto.py compares both on the same script.
2. `cached_service_list()`: moto's server lists its own package directory (listdir + isdir of
   ~200 folders) on every request to find the service; the list never changes while it runs.
3. `memoised_jsonpath()`: moto's EventBridge parses the target's input paths with jsonpath-ng on
   every event delivered (a PLY parser built per call, ~30 ms per event); a parsed path is
   immutable and only read (`.find`), so the same string can reuse one parse.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import Any

import jsonpath_ng.ext
from moto import backends as moto_backends
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_ABSENT = object()
_active = {"transactions": threading.Lock(), "services": threading.Lock(), "jsonpath": threading.Lock()}


@contextmanager
def _exclusive(name: str) -> Iterator[None]:
    if not _active[name].acquire(blocking=False):
        raise RuntimeError(f"fast_moto's {name} patch is already active in this process")
    try:
        yield
    finally:
        _active[name].release()


# ----------------------------------------------------------------------- 1. transactions
def _shallow_table_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """moto's backup step: a Table is "copied" as itself (the items are saved separately)."""
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _targets(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Table, Any, Any]]:
    """(table, hash key, range key) of every item the transaction names (unknown ones skipped:
    moto refuses them before writing anything)."""
    found: list[tuple[Table, Any, Any]] = []
    for entry in transact_items:
        try:
            _, operation = next(iter(entry.items()))
            table = backend.tables[operation["TableName"]]
            attributes = operation["Item"] if "Item" in operation else operation["Key"]
            hash_key = DynamoType(attributes[table.hash_key_attr])
            range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
        except (KeyError, StopIteration, TypeError, AttributeError):
            continue
        found.append((table, hash_key, range_key))
    return found


def _read(table: Table, hash_key: Any, range_key: Any) -> Any:
    if range_key is None:
        return table.items.get(hash_key, _ABSENT)
    return table.items.get(hash_key, {}).get(range_key, _ABSENT)


def _saved(table: Table, hash_key: Any, range_key: Any) -> Any:
    """A copy of the item as it is now (update_item changes items in place), or _ABSENT."""
    current = _read(table, hash_key, range_key)
    return current if current is _ABSENT else copy.deepcopy(current)


def _restore(table: Table, hash_key: Any, range_key: Any, saved: Any) -> None:
    if range_key is None:
        if saved is _ABSENT:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = saved
        return
    if saved is _ABSENT:
        table.items.get(hash_key, {}).pop(range_key, None)
        if hash_key in table.items and not table.items[hash_key]:
            del table.items[hash_key]
    else:
        table.items[hash_key][range_key] = saved


@contextmanager
def fast_transactions() -> Iterator[None]:
    """Replace moto's TransactWriteItems backup by a per-item one while the block runs."""
    with _exclusive("transactions"):
        original = DynamoDBBackend.transact_write_items
        original_copy_module = getattr(dynamodb_models, "copy")  # noqa: B009 - moto's own `import copy`

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            saved = [(table, h, r, _saved(table, h, r)) for table, h, r in _targets(self, transact_items)]
            try:
                original(self, transact_items)
            except BaseException:
                for table, h, r, item in reversed(saved):
                    _restore(table, h, r, item)
                raise

        setattr(dynamodb_models, "copy", SimpleNamespace(deepcopy=_shallow_table_copy))  # noqa: B010
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        try:
            yield
        finally:
            DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
            setattr(dynamodb_models, "copy", original_copy_module)  # noqa: B010


# ----------------------------------------------------------------------- 2. service list
@contextmanager
def cached_service_list() -> Iterator[None]:
    with _exclusive("services"):
        original: Callable[[], Any] = moto_backends.list_of_moto_modules
        services = tuple(original())
        moto_backends.list_of_moto_modules = lambda: services
        try:
            yield
        finally:
            moto_backends.list_of_moto_modules = original


# ----------------------------------------------------------------------- 3. jsonpath
@contextmanager
def memoised_jsonpath() -> Iterator[None]:
    with _exclusive("jsonpath"):
        original: Callable[..., Any] = getattr(jsonpath_ng.ext, "parse")  # noqa: B009 - not re-exported
        setattr(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=512)(original))  # noqa: B010
        try:
            yield
        finally:
            setattr(jsonpath_ng.ext, "parse", original)  # noqa: B010


@contextmanager
def fast_moto() -> Iterator[None]:
    """All three, for the block's duration (one activation per process at a time)."""
    with ExitStack() as stack:
        stack.enter_context(fast_transactions())
        stack.enter_context(cached_service_list())
        stack.enter_context(memoised_jsonpath())
        yield
