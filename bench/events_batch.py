"""Event batches through the events function's entry point (`lambda_handler`, so Powertools'
logging and metrics are paid for) against the sandbox with 100 ms of GraphQL latency, at steady
state: the access token cached, the store identity known, business-product links cached.

Each event is an order event for its own order (one GraphQL query each), routed through a
business-product link, in the 2024-11-01 format (so its write carries an idempotency key and an
order snapshot: one transaction).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import boto3

from bench.local import TABLE_NAME, Calls, World, instrumented
from bench.report import median
from devtools.apigw import LambdaContext
from devtools.sqs import sqs_record
from sandbox.events import partner_event, resource_path

LATENCY_S = 0.1
INSTALLATION_ID = "amzn1.bwp.installation.bench"
BUSINESS_PRODUCT_ID = "bench-business-product"
PHASES = ("_deduplicate_and_route", "_acquire_tokens", "_hydrate")


@dataclass
class BatchRun:
    size: int
    wall_s: float
    dynamodb_busy_s: float
    aws_requests: int
    graphql_requests: int
    failures: int
    phases: dict[str, float]


@dataclass
class EventsResult:
    round_trip_s: float
    runs: dict[int, list[BatchRun]] = field(default_factory=dict)
    requests_by_operation: dict[int, dict[str, int]] = field(default_factory=dict)

    def wall(self, size: int) -> float:
        return median([r.wall_s for r in self.runs[size]])

    def wall_without_dynamodb(self, size: int) -> float:
        return median([r.wall_s - r.dynamodb_busy_s for r in self.runs[size]])

    def dynamodb(self, size: int) -> float:
        return median([r.dynamodb_busy_s for r in self.runs[size]])

    def per_event(self, size: int, what: str) -> float:
        runs = self.runs[size]
        return float(sum(getattr(r, what) for r in runs)) / sum(r.size for r in runs)

    def phase(self, size: int, name: str) -> float:
        return median([r.phases.get(name, 0.0) for r in self.runs[size]])

    def failures(self, size: int) -> int:
        return sum(r.failures for r in self.runs[size])


def _batch(size: int) -> dict[str, Any]:
    records = []
    for _ in range(size):
        order_id = f"order-{uuid.uuid4().hex[:12]}"
        body = partner_event("ORDER_CONFIRMED", [resource_path(BUSINESS_PRODUCT_ID, order_id=order_id)])
        records.append(sqs_record(body))
    return {"Records": records}


def _forget_events(client: Any) -> None:
    """Delete what earlier batches recorded (not timed): moto copies the whole table on every
    transaction, so a growing table would slow each later batch for moto's sake only."""
    scan: dict[str, Any] = {"TableName": TABLE_NAME, "ProjectionExpression": "pk, sk"}
    doomed = []
    while True:
        page = client.scan(**scan)
        doomed += [
            item
            for item in page["Items"]
            if item["pk"]["S"].startswith("EVENT") or item["sk"]["S"].startswith("ORDER#")
        ]
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for start in range(0, len(doomed), 25):
        requests = [{"DeleteRequest": {"Key": key}} for key in doomed[start : start + 25]]
        client.batch_write_item(RequestItems={TABLE_NAME: requests})


def _timed_phases(pipeline: Any, phases: dict[str, float]) -> None:
    """Shadow the pipeline's step methods on the instance with timed versions."""
    for name in PHASES:
        method = getattr(pipeline, name)

        def timed(*args: Any, _method: Any = method, _name: str = name) -> Any:
            start = time.perf_counter()
            try:
                return _method(*args)
            finally:
                phases[_name] = phases.get(_name, 0.0) + time.perf_counter() - start

        setattr(pipeline, name, timed)


def run(world: World, sizes: dict[int, int]) -> EventsResult:
    """`sizes`: batch size -> how many batches of that size to time."""
    from events import handler
    from events.dependencies import Dependencies
    from shared.models import TokenSet
    from shared.observability import logger
    from shared.store.event_records import EventStore
    from shared.store.installations import InstallationStore

    world.sandbox.latency("graphql", LATENCY_S)
    calls = Calls()
    deps = instrumented(Dependencies, world.environ, calls)
    tokens = TokenSet.model_validate({**world.sandbox.issue_tokens(INSTALLATION_ID), "expires_in": 3600})
    InstallationStore(deps.dynamodb, TABLE_NAME).save_installation(INSTALLATION_ID, tokens, int(time.time()))
    EventStore(deps.dynamodb, TABLE_NAME).put_link(BUSINESS_PRODUCT_ID, INSTALLATION_ID, "bench")
    phases: dict[str, float] = {}
    _timed_phases(deps.pipeline, phases)
    handler.reset_dependencies(deps)
    cast(logging.StreamHandler[Any], logger.registered_handler).setStream(
        io.StringIO()
    )  # logs at the template's level, not printed
    context = LambdaContext("EventsFunction")

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        with contextlib.redirect_stdout(io.StringIO()):  # the metrics' EMF lines
            answer: dict[str, Any] = handler.lambda_handler(event, context)
            return answer

    # One GraphQL round trip through the same client, as the unit of the batch times.
    token = deps.tokens.access_token(INSTALLATION_ID)
    from events import queries

    trips = []
    for _ in range(5):
        start = time.perf_counter()
        deps.buy_with_prime.graphql(token, INSTALLATION_ID, queries.load("store"))
        trips.append(time.perf_counter() - start)
    result = EventsResult(round_trip_s=median(trips))

    invoke(_batch(10))  # warm: token cached, store identity fetched and known, link cached
    plain = boto3.client("dynamodb")
    for size, count in sizes.items():
        totals: dict[str, int] = {}
        for _ in range(count):
            _forget_events(plain)
            event = _batch(size)
            calls.reset()
            phases.clear()
            world.sandbox.reset_observations()
            start = time.perf_counter()
            answer = invoke(event)
            end = time.perf_counter()
            for operation, n in calls.requests.items():
                totals[operation] = totals.get(operation, 0) + n
            result.runs.setdefault(size, []).append(
                BatchRun(
                    size=size,
                    wall_s=end - start,
                    dynamodb_busy_s=calls.busy(start, end),
                    aws_requests=calls.total(),
                    graphql_requests=world.sandbox.calls["graphql"],
                    failures=len(answer.get("batchItemFailures", [])),
                    phases=dict(phases),
                )
            )
        result.requests_by_operation[size] = totals
    world.sandbox.latency("graphql", 0)
    handler.reset_dependencies()
    return result
