"""A simulated day of partner events at realistic tenancy, priced from counted requests.

The day: 1M events over 10,000 installations, each already installed (token pair and store
identity stored, business-product link known: steady state; every access token issued at a random
moment of its 15-minute lifetime). Each event's installation is drawn Zipf-skewed (P(rank k) ~
1/k^s, s = 1.1: the busiest tenant gets ~15 % of the events). 95 % are order events from order
lifecycles simulated in continuous time (ORDER_CONFIRMED, a label milestone within hours, in
transit, out for delivery, delivered; 3 % cancelled; 6 % refunded: REFUND_REQUESTED then
REFUND_COMPLETED), the order's `updatedAt` being its latest event's time; 5 % other types
(INVENTORY_CHANGED, BUYABILITY_CHANGED, a type Buy with Prime has not documented). 95 % arrive in
the 2024-11-01 format (idempotency key), 5 % in 2024-01-01; 0.2 % are delivered twice.

1M events cannot go through moto in minutes, so a window of the day (an hour by default) runs at
the day's average rate on a simulated clock (the token service, the pipeline, the client
credentials cache and the sandbox's token expiry all read it), starting with five cold
containers, and per-event figures are extrapolated. Batches form in arrival order as the SQS event
source does (up to EventBatchSize messages, or EventBatchWindowSeconds after the first); each goes
to one of the five containers drawn uniformly at random. Records sent back come back after the
visibility timeout the handler set (src/events/backoff.py).

AWS is in-process moto (`mock_aws`, transactions without moto's whole-table copy): about 1 ms a
request, where the serialised moto server costs 8-10 ms (bench/RESULTS.md), too slow for ~100k
requests. Buy with Prime is the sandbox with no latency (time is simulated). Units: bench/units.py.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import io
import itertools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast

from bench.report import Row
from bench.units import Index, SerialisedClient, UnitMeter
from events.dependencies import Dependencies

HOUR, DAY = 3600.0, 86400.0
TABLE_NAME = "bwp-day"
CLIENT_ID = "amzn1.application-oa2-client.day"
CLIENT_SECRET = "day-bench-client-secret"  # noqa: S105 - a local sandbox's throw-away value
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/EventsQueue"
START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC).timestamp()  # a Wednesday morning, simulated

# us-east-1 list prices (December 2026; docs/performance.md's Cost section uses the same)
WRU_PRICE, RRU_PRICE = 0.625e-6, 0.125e-6
SQS_REQUEST, PARTNER_EVENT = 0.40e-6, 1.00e-6
GB_SECOND, INVOCATION = 0.0000133334, 0.20e-6
LOG_GB = 0.50
PLATFORM_LOG_BYTES = 700  # Lambda's own JSON lines per invocation (start, end, report), not measured here

MAX_RECEIVES = 10  # EventsQueue's redrive policy
TARGET_REQUESTS, TARGET_WRU = 1.5, 4.0  # per hydrated event, cold caches

ORDER_SHARE, FORMAT_2024_11_SHARE, REDELIVERED_SHARE = 0.95, 0.95, 0.002
OTHER_TYPES = (("INVENTORY_CHANGED", 0.6), ("BUYABILITY_CHANGED", 0.3), ("CATALOG_SYNC_COMPLETED", 0.1))


@dataclass(frozen=True)
class DayConfig:
    installations: int = 10_000
    events_per_day: int = 1_000_000
    window_seconds: float = 20 * 60  # a window of the day: about 3 minutes to run here
    zipf_s: float = 1.1
    pollers: int = 5
    seed: int = 20261202
    batch_size: int = 10  # the template's EventBatchSize default
    batching_window_seconds: float = 1.0  # its EventBatchWindowSeconds default
    batch_duration_seconds: float = 0.3  # Lambda billed duration per batch (assumed, as docs/performance.md)


class SimClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ traffic
@dataclass(frozen=True)
class Arrival:
    at: float
    installation: int
    event_type: str
    body: str
    event_id: str
    order_id: str | None = None
    order_created: float = 0.0
    redelivery: bool = False


def lifecycle(rng: random.Random) -> list[tuple[float, str]]:
    """One order's events, as (seconds after it was confirmed, type), sorted."""
    events = [(0.0, "ORDER_CONFIRMED")]
    refund: float | None = None
    if rng.random() < 0.03:
        cancelled = rng.uniform(600, 12 * HOUR)
        events.append((cancelled, "PACKAGE_DELIVERY_CANCELLED"))
        refund = cancelled + rng.uniform(60, HOUR)
    else:
        if rng.random() < 0.6:
            events.append((rng.uniform(300, 3 * HOUR), "PACKAGE_TRACKER_MILESTONE_CHANGED"))
        shipped = rng.uniform(4 * HOUR, 24 * HOUR)
        delivered = shipped + rng.uniform(12 * HOUR, 72 * HOUR)
        events.append((shipped, "PACKAGE_DELIVERY_IN_TRANSIT"))
        if rng.random() < 0.5:
            events.append((delivered - rng.uniform(HOUR, 8 * HOUR), "PACKAGE_TRACKER_MILESTONE_CHANGED"))
        events.append((delivered, "PACKAGE_DELIVERED"))
        if rng.random() < 0.06:
            refund = delivered + rng.uniform(DAY, 10 * DAY)
    if refund is not None:
        events += [(refund, "REFUND_REQUESTED"), (refund + rng.uniform(HOUR, 72 * HOUR), "REFUND_COMPLETED")]
    return sorted(events)


def installation_id(index: int) -> str:
    return f"amzn1.bwp.installation.{uuid.UUID(int=index + 1, version=4)}"


def business_product_id(index: int) -> str:
    return f"amzn1.bp.product.{uuid.UUID(int=(index + 1) << 64, version=4)}"


class Traffic:
    """The events of [start, start + window] at the day's rate (seeded, reproducible)."""

    def __init__(self, config: DayConfig, start: float) -> None:
        self.config = config
        self.start, self.end = start, start + config.window_seconds
        self.rng = random.Random(config.seed)  # noqa: S311 - a reproducible simulation
        weights = [1 / (k + 1) ** config.zipf_s for k in range(config.installations)]
        self._cumulative = list(itertools.accumulate(weights))
        probe = random.Random(config.seed + 1)  # noqa: S311
        self.events_per_order = sum(len(lifecycle(probe)) for _ in range(20_000)) / 20_000

    def tenant(self) -> int:
        return bisect.bisect_left(self._cumulative, self.rng.random() * self._cumulative[-1])

    def _poisson(self, rate: float) -> Iterator[float]:
        t = self.start
        while True:
            t += self.rng.expovariate(rate)
            if t > self.end:
                return
            yield t

    def arrivals(self) -> list[Arrival]:
        """Orders with an event in the window, each drawn once: for each position i of a lifecycle,
        positions land in the window as a Poisson process at the order rate; an order is kept by
        the position that is its first event inside the window (the others would count it twice)."""
        config = self.config
        rate = config.events_per_day / DAY
        order_rate = rate * ORDER_SHARE / self.events_per_order
        found: list[Arrival] = []
        for position in range(8):
            for t in self._poisson(order_rate):
                events = lifecycle(self.rng)
                if len(events) <= position:
                    continue
                created = t - events[position][0]
                if position and created + events[position - 1][0] >= self.start:
                    continue  # an earlier event of this order is in the window: counted there
                tenant = self.tenant()
                order_id = (
                    f"{self.rng.randrange(100, 999)}-{self.rng.randrange(10**7):07d}-{self.rng.randrange(10**7):07d}"
                )
                for offset, event_type in events[position:]:
                    if created + offset > self.end:
                        break
                    found.append(self._order_event(created + offset, tenant, event_type, order_id, created))
        for t in self._poisson(rate * (1 - ORDER_SHARE)):
            event_type = self.rng.choices([n for n, _ in OTHER_TYPES], [w for _, w in OTHER_TYPES])[0]
            found.append(self._other_event(t, self.tenant(), event_type))
        found.sort(key=lambda a: a.at)
        again = [a for a in found if self.rng.random() < REDELIVERED_SHARE]
        found += [
            Arrival(
                a.at + self.rng.uniform(0, 60),
                a.installation,
                a.event_type,
                a.body,
                a.event_id,
                a.order_id,
                a.order_created,
                redelivery=True,
            )
            for a in again
        ]
        found.sort(key=lambda a: a.at)
        return [a for a in found if a.at <= self.end]

    def _order_id(self) -> str:
        rng = self.rng
        return f"{rng.randrange(100, 999)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"

    def _envelope(self, at: float, tenant: int, event_type: str, resource: str, data: dict[str, Any]) -> dict[str, Any]:
        from sandbox.events import partner_event

        when = datetime.fromtimestamp(at, UTC)
        if self.rng.random() < FORMAT_2024_11_SHARE:
            return partner_event(event_type, [resource], time=when, data=data)
        return partner_event(event_type, [resource], event_format="2024-01-01", time=when)

    def _order_event(self, at: float, tenant: int, event_type: str, order_id: str, created: float) -> Arrival:
        from sandbox.events import resource_path

        resource = resource_path(business_product_id(tenant), order_id=order_id)
        envelope = self._envelope(at, tenant, event_type, resource, {})
        return Arrival(at, tenant, event_type, json.dumps(envelope), _event_id(envelope), order_id, created)

    def _other_event(self, at: float, tenant: int, event_type: str) -> Arrival:
        from sandbox.events import resource_path

        sku = f"SKU-{self.rng.randrange(10**6):06d}"
        resource = resource_path(business_product_id(tenant), item_id=sku)
        data = {"sku": sku, "quantity": self.rng.randrange(0, 500)} if event_type == "INVENTORY_CHANGED" else {}
        envelope = self._envelope(at, tenant, event_type, resource, data)
        return Arrival(at, tenant, event_type, json.dumps(envelope), _event_id(envelope))


def _event_id(envelope: dict[str, Any]) -> str:
    return str(envelope.get("detail", {}).get("eventId") or envelope["id"])


# ------------------------------------------------------------------ the containers
class _QueueStub:
    """ChangeMessageVisibilityBatch, counted; the records come back after the timeout set."""

    def __init__(self, requeue: Any) -> None:
        self.requests = 0
        self._requeue = requeue

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests += 1
        for entry in Entries:
            self._requeue(entry["ReceiptHandle"], int(entry["VisibilityTimeout"]))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class DayContainer(Dependencies):
    """One events-function container: the function's own Dependencies, with the simulated clock given
    where the code takes one, a metered DynamoDB client and the queue stub."""

    def __init__(self, environ: dict[str, str], clock: SimClock, meter: UnitMeter, queue: _QueueStub) -> None:
        super().__init__(environ)
        self._clock, self._meter, self._queue = clock, meter, queue

    @cached_property
    def dynamodb(self) -> Any:
        import boto3

        from shared.wiring import aws_client_config

        client = boto3.client("dynamodb", config=aws_client_config())
        self._meter.attach(client)
        return SerialisedClient(client)

    @cached_property
    def secretsmanager(self) -> Any:
        import boto3

        client = boto3.client("secretsmanager")
        self._meter.attach(client)
        return client

    @cached_property
    def sqs(self) -> Any:
        return self._queue

    @cached_property
    def credentials(self) -> Any:
        from shared.credentials import ClientCredentialsProvider

        return ClientCredentialsProvider(
            self.secretsmanager, self.settings.client_credentials_secret_arn, clock=self._clock
        )

    @cached_property
    def tokens(self) -> Any:
        from shared.tokens import TokenCache, TokenService

        return TokenService(
            self.installations,
            self.buy_with_prime,
            self.credentials,
            TokenCache(),
            budget=self.budget,
            clock=self._clock,
        )

    @cached_property
    def pipeline(self) -> Any:
        from events.pipeline import EventPipeline

        settings = self.settings
        return EventPipeline(
            self.event_store,
            self.tokens,
            self.buy_with_prime,
            api_version=settings.bwp_api_version,
            retention_days=settings.event_record_retention_days,
            max_workers=settings.hydration_max_workers,
            budget=self.budget,
            clock=self._clock,
        )


class _LogSink(io.StringIO):
    """The handler's log lines: bytes counted, each event's verdict kept."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.verdicts: dict[str, str] = {}  # per event: processed once processed, whatever came after
        self.deliveries: Counter[str] = Counter()  # per delivery

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        for line in text.splitlines():
            if '"event ' in line:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    message = str(entry.get("message", ""))
                    if message.startswith("event ") and entry.get("event_id"):
                        event_id, verdict = str(entry["event_id"]), message[len("event ") :]
                        self.deliveries[verdict] += 1
                        if self.verdicts.get(event_id) in (None, "retry"):  # a later duplicate keeps "processed"
                            self.verdicts[event_id] = verdict
        return len(text)


class _Counting(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)


# ------------------------------------------------------------------ the run
@dataclass
class Tally:
    events: int = 0
    hydrated: int = 0
    dynamodb: int = 0
    rru: float = 0.0
    wru: float = 0.0
    graphql: int = 0
    refreshes: int = 0


@dataclass
class DayResult:
    config: DayConfig
    events: int
    distinct_events: int
    batches: int
    verdicts: Counter[str]  # per delivery
    hydrated: int
    requests: dict[str, int]
    rru: dict[str, float]
    wru: dict[str, float]
    index_wru: float
    sandbox_calls: dict[str, int]
    visibility_changes: int
    dead_lettered: int
    left_in_queue: int
    log_bytes: int
    metric_bytes: int
    memory_mb: int
    wall_s: float
    halves: list[Tally] = field(default_factory=list)
    tenants_seen: int = 0
    redelivered: int = 0
    events_per_order: float = 0.0

    def dynamodb_requests(self) -> int:
        return sum(n for op, n in self.requests.items() if op.startswith("dynamodb."))


@dataclass
class _Queued:
    visible_at: float
    seq: int
    arrival: Arrival = field(compare=False)
    message_id: str = field(compare=False)
    receives: int = field(compare=False, default=0)

    def __lt__(self, other: _Queued) -> bool:
        return (self.visible_at, self.seq) < (other.visible_at, other.seq)


def _seed(config: DayConfig, dynamodb: Any, sandbox: Any, clock: SimClock, rng: random.Random) -> None:
    """Steady state written straight to moto (not counted): each installation with a token pair the
    sandbox issued between 0 and 15 minutes ago, its store identity and its business-product link.
    The items are built by the project's own stores (a capturing client), then batch-written."""
    from sandbox.catalog import make_store
    from shared.models import TokenSet
    from shared.store.event_records import EventStore
    from shared.store.installations import InstallationStore

    class Capture:
        def __init__(self) -> None:
            self.items: list[dict[str, Any]] = []

        def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> None:
            self.items.append(Item)

    capture = Capture()
    installations, events = InstallationStore(capture, TABLE_NAME), EventStore(capture, TABLE_NAME)
    for index in range(config.installations):
        name = installation_id(index)
        issued = START - rng.uniform(0, 900)
        clock.now = issued
        tokens = TokenSet.model_validate(sandbox.issue_tokens(name))
        installations.save_installation(name, tokens, issued)
        events.put_store_identity(name, make_store(name), int(issued * 1000) - 86_400_000)
        events.put_link(business_product_id(index), name, "event:steady-state")
    clock.now = START
    for start in range(0, len(capture.items), 25):
        chunk = capture.items[start : start + 25]
        dynamodb.batch_write_item(RequestItems={TABLE_NAME: [{"PutRequest": {"Item": i}} for i in chunk]})


def _moto_lookup(table_name: str, key: tuple[str, str]) -> dict[str, Any] | None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(table_name)
    item = table.get_item(DynamoType({"S": key[0]}), DynamoType({"S": key[1]}))
    return None if item is None else cast(dict[str, Any], item.to_json()["Attributes"])


def _order(order_id: str, created: float, updated: float) -> dict[str, Any]:
    from sandbox.catalog import make_order

    order = make_order(order_id)
    order["createdAt"] = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    order["updatedAt"] = datetime.fromtimestamp(updated, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return order


AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "day",
    "AWS_SECRET_ACCESS_KEY": "day",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "buy-with-prime-integration",
    "POWERTOOLS_METRICS_NAMESPACE": "BuyWithPrimeIntegration",
    "POWERTOOLS_LOG_LEVEL": "INFO",  # the template's default
}


@contextlib.contextmanager
def _isolated_environment() -> Iterator[None]:
    import os

    saved = dict(os.environ)
    os.environ.update(AWS_ENVIRONMENT)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def memory_mb() -> int:
    from devtools.template import load_template

    template = load_template()
    own = template["Resources"]["EventsFunction"]["Properties"].get("MemorySize")
    return int(own or template["Globals"]["Function"]["MemorySize"])


def unit_meter() -> UnitMeter:
    from devtools.template import table_create_arguments

    table_args = table_create_arguments(name=TABLE_NAME)
    keys = cast(tuple[str, str], tuple(k["AttributeName"] for k in table_args["KeySchema"]))
    indexes = [
        Index(i["IndexName"], tuple(k["AttributeName"] for k in i["KeySchema"]), keys)
        for i in table_args.get("GlobalSecondaryIndexes", [])
    ]
    return UnitMeter(_moto_lookup, {TABLE_NAME: indexes}, keys)


class Simulation:
    """The window's messages on a simulated queue, delivered batch by batch through
    `lambda_handler` (Powertools logging and metrics included), one container's Dependencies
    swapped in per batch."""

    def __init__(self, config: DayConfig, progress: Any = None) -> None:
        self.config = config
        self.progress = progress
        self.clock = SimClock(START)
        self.rng = random.Random(config.seed + 2)  # noqa: S311 - a reproducible simulation
        self.meter = unit_meter()
        self.queue: list[_Queued] = []
        self.in_flight: dict[str, _Queued] = {}
        self.seq = itertools.count()
        self.dead = 0
        self.queue_stub = _QueueStub(self._requeue)
        self.sink, self.metrics_out = _LogSink(), _Counting()
        self.halves = [Tally(), Tally()]
        self.half_of: dict[str, int] = {}
        self.order_versions: dict[str, float] = {}
        self.batches = self.delivered = 0

    def _requeue(self, receipt: str, timeout: int) -> None:
        item = self.in_flight.get(receipt)
        if item is not None and item.receives >= MAX_RECEIVES:
            self.dead += 1  # EventsQueue's maxReceiveCount: the dead-letter queue
        elif item is not None:
            item.visible_at = self.clock.now + timeout
            item.seq = next(self.seq)
            heapq.heappush(self.queue, item)

    def run(self) -> DayResult:
        import boto3
        from moto import mock_aws

        from devtools.local_stack.fast_moto import fast_transactions
        from devtools.template import table_create_arguments
        from events import handler
        from sandbox.handler import SandboxHandler
        from sandbox.server import BuyWithPrimeSandbox
        from shared.observability import logger

        started = time.perf_counter()
        SandboxHandler.disable_nagle_algorithm = True
        with (
            _isolated_environment(),
            mock_aws(),
            fast_transactions(),
            BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET, clock=self.clock) as sandbox,
        ):
            setup = boto3.client("dynamodb")
            setup.create_table(**table_create_arguments(name=TABLE_NAME))
            secret = boto3.client("secretsmanager").create_secret(
                Name="bwp-day-client-credentials",
                SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            )
            _seed(self.config, setup, sandbox, self.clock, self.rng)
            environ = {
                "TABLE_NAME": TABLE_NAME,
                "CLIENT_CREDENTIALS_SECRET_ARN": secret["ARN"],
                "BWP_TOKEN_URL": sandbox.token_url,
                "BWP_GRAPHQL_URL": sandbox.graphql_url,
                "HYDRATION_MAX_WORKERS": "10",  # the template's value
                "EVENTS_QUEUE_URL": QUEUE_URL,
            }
            containers = [
                DayContainer(environ, self.clock, self.meter, self.queue_stub) for _ in range(self.config.pollers)
            ]
            traffic = Traffic(self.config, START)
            arrivals = traffic.arrivals()
            for arrival in arrivals:
                heapq.heappush(self.queue, _Queued(arrival.at, next(self.seq), arrival, str(uuid.uuid4())))
            sandbox.reset_observations()
            stream = logger.registered_handler.setStream(self.sink)  # type: ignore[attr-defined]
            try:
                while self.queue and self.queue[0].visible_at <= traffic.end:
                    self._deliver(self._next_batch(), self.rng.choice(containers), sandbox)
            finally:
                handler.reset_dependencies()
                logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
            calls = dict(sandbox.calls)
        return self._result(arrivals, traffic, calls, time.perf_counter() - started)

    def _next_batch(self) -> list[_Queued]:
        """As the event source mapping: up to the batch size, or what arrived within the batching
        window after the first message; the batch is handed over when it closes."""
        config, queue = self.config, self.queue
        first = heapq.heappop(queue)
        batch, closes = [first], first.visible_at + config.batching_window_seconds
        while len(batch) < config.batch_size and queue and queue[0].visible_at <= closes:
            batch.append(heapq.heappop(queue))
        self.clock.now = batch[-1].visible_at if len(batch) == config.batch_size else closes
        return batch

    def _deliver(self, batch: list[_Queued], container: DayContainer, sandbox: Any) -> None:
        from devtools.apigw import LambdaContext
        from devtools.sqs import sqs_record
        from events import handler

        for item in batch:  # what Buy with Prime answers now: each order as of its latest event
            a = item.arrival
            if a.order_id and a.at > self.order_versions.get(a.order_id, 0.0):
                self.order_versions[a.order_id] = a.at
                order = _order(a.order_id, a.order_created, a.at)
                sandbox.put_order(installation_id(a.installation), a.order_id, order)
        records = []
        self.in_flight.clear()
        for item in batch:
            item.receives += 1
            record = sqs_record(item.arrival.body, message_id=item.message_id, receive_count=item.receives)
            self.in_flight[record["receiptHandle"]] = item
            records.append(record)
        before = self._counters(sandbox)
        handler.reset_dependencies(container)
        with contextlib.redirect_stdout(self.metrics_out):  # the EMF metric lines: CloudWatch Logs too
            handler.lambda_handler({"Records": records}, LambdaContext("EventsFunction", 60.0))
        after = self._counters(sandbox)
        self.batches += 1
        self.delivered += len(batch)
        index = 0 if self.clock.now < START + self.config.window_seconds / 2 else 1
        half = self.halves[index]
        half.events += len(batch)
        half.dynamodb += int(after[0] - before[0])
        half.rru += after[1] - before[1]
        half.wru += after[2] - before[2]
        half.graphql += int(after[3] - before[3])
        half.refreshes += int(after[4] - before[4])
        for item in batch:
            self.half_of.setdefault(item.arrival.event_id, index)
        if self.progress and self.batches % 500 == 0:
            minutes = (self.clock.now - START) / 60
            self.progress(
                f"day: {self.batches} batches, simulated {minutes:.0f} of {self.config.window_seconds / 60:.0f} min"
            )

    def _counters(self, sandbox: Any) -> tuple[float, ...]:
        return (*self.meter.totals(), sandbox.calls["graphql"], sandbox.calls["token:refresh_token"])

    def _result(self, arrivals: list[Arrival], traffic: Traffic, calls: dict[str, int], wall: float) -> DayResult:
        kinds = {a.event_id: a for a in arrivals}
        verdicts = self.sink.deliveries
        hydrated = 0
        for event_id, verdict in self.sink.verdicts.items():
            if verdict == "processed" and kinds[event_id].order_id:
                hydrated += 1
                self.halves[self.half_of[event_id]].hydrated += 1
        meter = self.meter
        return DayResult(
            config=self.config,
            events=self.delivered,
            distinct_events=len(kinds),
            batches=self.batches,
            verdicts=verdicts,
            hydrated=hydrated,
            requests=dict(meter.requests),
            rru=dict(meter.rru),
            wru=dict(meter.wru),
            index_wru=meter.index_wru,
            sandbox_calls=calls,
            visibility_changes=self.queue_stub.requests,
            dead_lettered=self.dead,
            left_in_queue=len(self.queue),
            log_bytes=self.sink.bytes,
            metric_bytes=self.metrics_out.bytes,
            memory_mb=memory_mb(),
            wall_s=wall,
            halves=self.halves,
            tenants_seen=len({a.installation for a in arrivals}),
            redelivered=sum(1 for a in arrivals if a.redelivery),
            events_per_order=traffic.events_per_order,
        )


def run(config: DayConfig, progress: Any = None) -> DayResult:
    """The simulated window, from a cold start of every container."""
    return Simulation(config, progress).run()


# ------------------------------------------------------------------ figures
@dataclass(frozen=True)
class Figures:
    """Per event delivered and per hydrated event (the whole run's totals divided by each)."""

    per_event: dict[str, float]
    per_hydrated: dict[str, float]
    costs: dict[str, float]  # $ per million events delivered

    @property
    def total(self) -> float:
        return sum(self.costs.values())


def figures(result: DayResult) -> Figures:
    events, hydrated = max(1, result.events), max(1, result.hydrated)
    calls = result.sandbox_calls
    sqs = _sqs_requests(result)
    totals = {
        "dynamodb": float(result.dynamodb_requests()),
        "rru": sum(result.rru.values()),
        "wru": sum(result.wru.values()),
        "graphql": float(calls.get("graphql", 0)),
        "graphql_order": float(calls.get("graphql:order", 0)),
        "graphql_store": float(calls.get("graphql:buyWithPrimeStore", 0)),
        "refreshes": float(calls.get("token:refresh_token", 0)),
        "sqs": float(sum(sqs.values())),
        "secrets": float(result.requests.get("secrets-manager.GetSecretValue", 0)),
    }
    per_event = {k: v / events for k, v in totals.items()}
    per_hydrated = {k: v / hydrated for k, v in totals.items()}
    million = 1_000_000
    log_bytes = (result.log_bytes + result.metric_bytes + PLATFORM_LOG_BYTES * result.batches) / events
    gb_seconds = result.batches * result.config.batch_duration_seconds * result.memory_mb / 1024
    costs = {
        "DynamoDB writes": per_event["wru"] * million * WRU_PRICE,
        "DynamoDB reads": per_event["rru"] * million * RRU_PRICE,
        "SQS": per_event["sqs"] * million * SQS_REQUEST,
        "EventBridge": million * PARTNER_EVENT,
        "Lambda": (gb_seconds * GB_SECOND + result.batches * INVOCATION) / events * million,
        "CloudWatch Logs": log_bytes * million / 2**30 * LOG_GB,
    }
    per_event["log_bytes"] = log_bytes
    return Figures(per_event, per_hydrated, costs)


def _sqs_requests(result: DayResult) -> dict[str, int]:
    """EventBridge sends each event (one SendMessage); the event source receives each batch with one
    ReceiveMessage and deletes what succeeded with one DeleteMessageBatch; the handler delays what
    it sends back with ChangeMessageVisibilityBatch (counted). Empty long polls are not counted."""
    return {
        "SendMessage": result.distinct_events + result.redelivered,
        "ReceiveMessage": result.batches,
        "DeleteMessageBatch": result.batches,
        "ChangeMessageVisibilityBatch": result.visibility_changes,
    }


def rows(result: DayResult) -> tuple[list[Row], list[str]]:
    config = result.config
    f = figures(result)
    e, h = f.per_event, f.per_hydrated
    events, hydrated = max(1, result.events), max(1, result.hydrated)
    ops = Counter({op.split(".", 1)[1]: n for op, n in result.requests.items() if op.startswith("dynamodb.")})
    by_op = ", ".join(f"{op} {n / events:.2f}" for op, n in ops.most_common())
    wru_ops = ", ".join(f"{op} {n / hydrated:.2f}" for op, n in sorted(result.wru.items(), key=lambda i: -i[1]))
    window_min = config.window_seconds / 60
    verdicts = ", ".join(f"{v} {n}" for v, n in result.verdicts.most_common())
    graphql = f"order {h['graphql_order']:.2f}, store {h['graphql_store']:.3f}"
    out = [
        Row(
            f"Simulated day ({config.events_per_day:,} events/day, {config.installations:,} installations, "
            f"Zipf s={config.zipf_s}, {config.pollers} cold containers): {window_min:.0f}-minute window",
            f"{result.events:,} deliveries in {result.batches:,} batches, {result.hydrated:,} hydrated; "
            f"{result.tenants_seen:,} tenants",
        ),
        Row(
            "  DynamoDB requests per event / per hydrated event",
            f"{e['dynamodb']:.2f} / {h['dynamodb']:.2f}",
            f"<= {TARGET_REQUESTS} per hydrated",
            h["dynamodb"] <= TARGET_REQUESTS,
        ),
        Row("    by operation, per event", by_op),
        Row("  read units (RRU) per event / per hydrated event", f"{e['rru']:.2f} / {h['rru']:.2f}"),
        Row(
            "  write units (WRU) per event / per hydrated event",
            f"{e['wru']:.2f} / {h['wru']:.2f}",
            f"<= {TARGET_WRU:g} per hydrated",
            h["wru"] <= TARGET_WRU,
        ),
        Row("    by operation, per hydrated event", f"{wru_ops} (index writes {result.index_wru / hydrated:.2f})"),
        Row("  GraphQL calls per event / per hydrated event", f"{e['graphql']:.2f} / {h['graphql']:.2f} ({graphql})"),
        Row("  token refreshes per event / per hydrated event", f"{e['refreshes']:.4f} / {h['refreshes']:.4f}"),
        Row("  SQS requests per event", f"{e['sqs']:.2f}"),
        Row("  CloudWatch Logs bytes per event", f"{e['log_bytes']:.0f}"),
        Row("  $ per million events", f"${f.total:.2f}", "docs/performance.md: $4.43"),
    ]
    out += [Row(f"    {name}", f"${cost:.2f}") for name, cost in f.costs.items()]
    for label, half in zip(("first", "second"), result.halves, strict=True):
        per = max(1, half.hydrated)
        out.append(
            Row(
                f"  {label} half of the window: DynamoDB requests / WRU per hydrated event",
                f"{half.dynamodb / per:.2f} / {half.wru / per:.2f} (refreshes {half.refreshes / per:.3f})",
            )
        )
    return out, _notes(result, f, window_min, verdicts)


def _notes(result: DayResult, f: Figures, window_min: float, verdicts: str) -> list[str]:
    config, e, costs = result.config, f.per_event, f.costs
    batches_per_million = result.batches / max(1, result.events) * 1e6
    readme = (
        f"per million events ≈ ${f.total:.2f}: EventBridge partner events ${costs['EventBridge']:.2f}; SQS "
        f"{e['sqs']:.2f} requests per event ${costs['SQS']:.2f}; Lambda {batches_per_million:,.0f} batches × "
        f"{result.memory_mb / 1024:g} GB × {config.batch_duration_seconds:g} s + requests ${costs['Lambda']:.2f}; "
        f"DynamoDB {e['wru']:.2f} write units per event ${costs['DynamoDB writes']:.2f}, {e['rru']:.2f} read units "
        f"${costs['DynamoDB reads']:.2f}; logs {e['log_bytes'] * 1e6 / 2**30:.2f} GB ${costs['CloudWatch Logs']:.2f}"
    )
    handler_bytes = (result.log_bytes + result.metric_bytes) / max(1, result.events)
    return [
        f"Simulated day: {window_min:.0f} simulated minutes at {config.events_per_day:,} events/day from "
        f"{datetime.fromtimestamp(START, UTC):%Y-%m-%d %H:%M} UTC, run in {result.wall_s:.0f} s (in-process moto, "
        f"the sandbox without latency); {result.distinct_events:,} distinct events, "
        f"{result.events - result.distinct_events} more deliveries (copies, retries); verdicts: {verdicts}; "
        f"{result.visibility_changes} visibility changes, {result.dead_lettered} dead-lettered, "
        f"{result.left_in_queue} still queued at the end. Per hydrated event = the run's totals (token refreshes, "
        "lookups and the other events' writes included) divided by the order events processed.",
        f"Simulated day, traffic: {ORDER_SHARE:.0%} order events (lifecycles of {result.events_per_order:.2f} "
        f"events per order on average, bench/day.py), {1 - ORDER_SHARE:.0%} other types, "
        f"{FORMAT_2024_11_SHARE:.0%} in the 2024-11-01 format, {REDELIVERED_SHARE:.1%} delivered twice; batches of "
        f"up to {config.batch_size} closing {config.batching_window_seconds:g} s after their first message, each to "
        f"one of {config.pollers} containers drawn uniformly at random; the containers live through the window.",
        "Simulated day, units (bench/units.py): strongly consistent reads 1 RRU per started 4 KB of the whole item, "
        "an absent item 1; writes 1 WRU per started KB of the larger of the item before and after, at least 1, "
        "measured in moto's table; TransactWriteItems twice; index entries 1 WRU each way when their key changes.",
        "Simulated day, prices (us-east-1, the same as docs/performance.md's Cost section): "
        "DynamoDB on-demand $0.625/M WRU, "
        "$0.125/M RRU; SQS $0.40/M requests; EventBridge partner events $1.00/M; Lambda arm64 $0.0000133334/GB-s + "
        f"$0.20/M requests at MemorySize {result.memory_mb} MB (template.yaml) and an assumed "
        f"{config.batch_duration_seconds:g} s per batch; CloudWatch Logs $0.50/GB of the handler's log lines and "
        f"EMF metrics (measured, {handler_bytes:.0f} bytes per event) + {PLATFORM_LOG_BYTES} bytes of Lambda "
        "platform lines per invocation (assumed). Not priced: storage, PITR, X-Ray (Tracing: Active), Secrets "
        f"Manager ({e['secrets'] * 1e6:,.0f} GetSecretValue per million events).",
        f"Simulated day, as docs/performance.md's Cost row: {readme}.",
    ]
