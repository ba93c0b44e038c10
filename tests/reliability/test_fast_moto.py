"""devtools.local_stack.fast_moto (what makes the load test possible) changes moto's speed, not its
answers: transactions give the same successes, cancellation reasons and tables after a rollback,
at a cost that no longer grows with the table; the service list and the parsed JSON paths are the
same values moto computes on every request."""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from devtools.local_stack.fast_moto import cached_service_list, fast_moto, fast_transactions, memoised_jsonpath
from devtools.template import table_create_arguments


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "S"}}


def _put(table: str, pk: str, condition: str | None = None, **attributes: str) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": {**_key(pk), **{k: {"S": v} for k, v in attributes.items()}}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _script(table: str) -> list[list[dict[str, Any]]]:
    absent = "attribute_not_exists(pk)"
    return [
        [_put(table, "A", v="1"), _put(table, "B", absent)],
        # an update applied in place, then a failed check: A must keep v=1, C must not exist
        [
            {
                "Update": {
                    "TableName": table,
                    "Key": _key("A"),
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "2"}},
                }
            },
            _put(table, "C"),
            {"ConditionCheck": {"TableName": table, "Key": _key("B"), "ConditionExpression": absent}},
        ],
        [_put(table, "D"), {"Delete": {"TableName": table, "Key": _key("A")}}, _put(table, "B", absent)],
        [{"Delete": {"TableName": table, "Key": _key("A")}}, _put(table, "E", absent)],
        [_put(table, "F"), _put(table, "F")],  # the same item twice: a validation error
        [_put(table, "E", absent), _put(table, "G")],
    ]


def _run(endpoint: str, fast: bool) -> list[tuple[str, list[dict[str, Any]]]]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    client = _client(endpoint)
    table = "fast-transactions"
    client.create_table(**table_create_arguments(name=table))
    observed: list[tuple[str, list[dict[str, Any]]]] = []
    with fast_transactions() if fast else nullcontext():
        for items in _script(table):
            try:
                client.transact_write_items(TransactItems=items)
                outcome = "ok"
            except ClientError as error:
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                outcome = f"{error.response['Error']['Code']} {reasons}"
            scan = client.scan(TableName=table, ConsistentRead=True)["Items"]
            observed.append((outcome, sorted(scan, key=lambda item: item["pk"]["S"])))
    return observed


def test_the_same_outcomes_and_tables_as_motos_own_rollback(moto_server: str) -> None:
    moto_own = _run(moto_server, fast=False)
    fast = _run(moto_server, fast=True)
    assert [outcome for outcome, _ in moto_own] == [
        "ok",
        "TransactionCanceledException ['None', 'None', 'ConditionalCheckFailed']",
        "TransactionCanceledException ['None', 'None', 'ConditionalCheckFailed']",
        "ok",
        "ValidationException []",
        "TransactionCanceledException ['ConditionalCheckFailed', 'None']",
    ]
    assert fast == moto_own
    final = {item["pk"]["S"] for item in fast[-1][1]}
    assert final == {"B", "E"}


def test_a_transaction_no_longer_costs_the_whole_table(moto_server: str) -> None:
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    client = _client(moto_server)
    table = "big-table"
    client.create_table(**table_create_arguments(name=table))
    for start in range(0, 3000, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {**_key(f"bulk-{i}"), "raw": {"S": "x" * 500}}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    with fast_transactions():
        started = time.monotonic()
        for _ in range(20):
            client.transact_write_items(TransactItems=[_put(table, uuid.uuid4().hex), _put(table, uuid.uuid4().hex)])
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"20 transactions on a 3,000-item table took {elapsed:.1f} s"


def test_the_cached_service_list_is_motos_list() -> None:
    from moto import backends

    computed = list(backends.list_of_moto_modules())
    with cached_service_list():
        assert list(backends.list_of_moto_modules()) == computed
        assert "dynamodb" in computed and "sqs" in computed and "events" in computed
    assert list(backends.list_of_moto_modules()) == computed


def test_memoised_json_paths_find_the_same_values() -> None:
    import jsonpath_ng.ext

    event = {"detail": {"a": [1, {"b": "x"}]}, "id": "e-1"}
    paths = ["$.detail.a[1].b", "$.id", "$.detail"]
    plain = [[m.value for m in jsonpath_ng.ext.parse(p).find(event)] for p in paths]
    with memoised_jsonpath():
        first = jsonpath_ng.ext.parse(paths[0])
        assert jsonpath_ng.ext.parse(paths[0]) is first  # parsed once
        assert [[m.value for m in jsonpath_ng.ext.parse(p).find(event)] for p in paths] == plain


def test_only_one_activation_at_a_time() -> None:
    with fast_moto(), pytest.raises(RuntimeError, match="already active"), fast_transactions():
        pass
    with fast_moto():  # released on exit
        pass
