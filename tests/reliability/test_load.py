"""Load: 2,000 partner events of 20 installations through the local stack, with Buy with Prime
failing at random and events delivered more than once, then a reconciliation of every event.

The path is the deployed one: EventBridge bus -> rule -> SQS queue (moto server, provisioned
from template.yaml) -> two events runners (devtools.local_stack.events_runner: the unchanged
events handler in its own process, fed by the local SqsPoller like Lambda's event source mapping:
batches of 10, partial batch responses, the template's 5 receives then the DLQ; two concurrent
"Lambdas", so deliveries of one event race each other and refreshes contend for the lease) ->
DynamoDB (moto) and the Buy with Prime sandbox. Events are published on the bus (put_events, 10 at
a time), paced so that about 40 are unsettled at any time (moto's ReceiveMessage costs time
proportional to the queue's length). At-least-once deliveries of events whose ID EventBridge
assigns (the thin 2024-01-01 and the legacy formats) and malformed bodies are sent straight onto
the queue, in the EventBridge envelope shape.

Faults (one draw per 20 messages published): GraphQL throttling (HTTP 200 + ThrottlingError),
HTTP 429/5xx in short bursts the client's retries absorb and in long ones that exhaust them
(-> RETRY -> back on the queue after 1 s, the local stack's acceleration), GraphQL latency beyond
the read timeout (shortened to 1 s for GraphQL only, `--graphql-read-timeout`; 10 s in
production), the token endpoint answering 429/5xx. Access tokens live 5 s past the token service's
largest refresh margin (180 s + up to 60 s of jitter), so each runner refreshes each installation
every 5-65 s (rotating refresh tokens) throughout the run; at 40 % the tokens of one installation
are revoked (the merchant revoked the app): its next query is refused, its refresh rejected, and its
order events need re-authorisation.

Duplicates: ~12 % of the events are delivered 2 or 3 times: re-published on the bus (same
detail.eventId), re-published with a new eventId and the same idempotencyKey (a producer retry),
or the same SQS body sent again (at-least-once delivery).

The counter of effects: the function's own per-event verdict log lines ("event processed", with
event_id and message_id: one per delivery, written before the batch is answered), cross-checked
with its EMF metrics (EventsProcessed...). Reconciliation: every distinct event is processed
exactly once (one EVENT# record with outcome processed, one "processed" verdict in all logs, an
order snapshot for order events), or has an attention record (unroutable, failed,
needs_reauthorization), or sits in the DLQ; none lost, none processed twice; and every message
sent ended in exactly one final verdict or in the DLQ.

Cost: about 130 s on this 2-core machine (about 55 ms per message, most of it moto's, one request at
a time; each persistently failing message now takes its 10 receives before the DLQ). moto's
TransactWriteItems copies the whole table per transaction (seconds per event at this size) and
its EventBridge builds a JSONPath parser per event, so the run uses devtools.local_stack.fast_moto
(checked in test_fast_moto.py).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.local_stack import LocalStack
from devtools.local_stack.fast_moto import fast_moto
from events.envelope import MalformedEventError, parse_event
from sandbox.events import partner_event, resource_path
from shared.budget import DEFAULT_BUDGET
from shared.models import TokenSet
from shared.store.event_records import EventStore
from shared.store.installations import InstallationStore
from tests.reliability.runners import Runner, RunnerOutput

pytestmark = pytest.mark.slow

SEED = 20241101
N_INSTALLATIONS = 20
N_EVENTS = 2000
N_RUNNERS = 2  # two concurrent "Lambdas" (the template allows 5): races between them are part of the test
# seconds: 5 s past the token service's largest refresh margin (180 s + up to 60 s of per-container
# jitter), so a stored token is fresh for 5-65 s and each installation is refreshed about that often
TOKEN_LIFETIME = DEFAULT_BUDGET.refresh_ahead_seconds + DEFAULT_BUDGET.refresh_jitter_seconds + 5
RETRY_DELAY_SECONDS = 1  # a reported failure comes back after 1 s (the local stack's acceleration)
IN_FLIGHT_VISIBILITY_SECONDS = 30  # longer than any batch: no redelivery of a batch still running
FAULT_EVERY = 20  # messages published between two fault draws
REVOKED = "amzn1.bwp.installation.load-07"
READ_TIMEOUT = 1.0
QUEUE_HIGH_WATER = 40
RUN_DEADLINE = 300.0  # seconds for publishing + processing: a bound, not a speed target (the run takes ~130 s)
ATTENTION = ("unroutable", "failed", "needs_reauthorization")
ORDER_TYPES = ["ORDER_CONFIRMED", "PACKAGE_DELIVERY_IN_TRANSIT", "PACKAGE_DELIVERED", "REFUND_REQUESTED"]
OTHER_TYPES = ["INVENTORY_CHANGED", "BUYABILITY_CHANGED"]


def installation(index: int) -> str:
    return f"amzn1.bwp.installation.load-{index:02d}"


def business_product(index: int) -> str:
    return f"amzn1.bwp.bp.load-{index:02d}"


# --------------------------------------------------------------------------------------- the plan
@dataclass
class Planned:
    """One distinct event and how often, and how, it is delivered."""

    number: int
    kind: str  # order | other | unroutable | not_found | malformed
    installation_id: str | None
    order_id: str | None
    ids: set[str] = field(default_factory=set)  # every event ID the pipeline may see for it
    copies: int = 1


@dataclass
class Send:
    route: str  # "bus" (put_events) or "queue" (send_message: the body as EventBridge delivers it)
    planned: Planned
    envelope: dict[str, Any] | None = None
    body: str | None = None


def _envelope(rng: random.Random, kind: str, index: int, order_id: str | None, event_format: str) -> dict[str, Any]:
    bp = business_product(index) if kind != "unroutable" else f"amzn1.bwp.bp.orphan-{rng.randrange(10**9)}"
    if order_id is not None:
        path = resource_path(bp, order_id=order_id)
        event_type = "ORDER_CONFIRMED" if kind == "not_found" else rng.choice(ORDER_TYPES)
    else:
        path = resource_path(bp, item_id=f"sku-{rng.randrange(50)}")
        event_type = rng.choice(OTHER_TYPES)
    return partner_event(
        event_type,
        [path],
        event_format=event_format,  # type: ignore[arg-type]
        installation_id=installation(index) if event_format == "legacy" else None,
    )


def plan_events(rng: random.Random) -> tuple[list[Planned], list[Send], set[tuple[str, str]]]:
    """The distinct events, the messages that carry them (copies spread over the next ~40
    messages, so some meet in one batch and most do not) and the orders Buy with Prime does not
    know (answered 'not found')."""
    planned: list[Planned] = []
    sends: list[Send] = []
    not_found: set[tuple[str, str]] = set()
    for number in range(N_EVENTS):
        draw = rng.random()
        kind = "order" if draw < 0.70 else "other" if draw < 0.95 else "unroutable" if draw < 0.98 else "not_found"
        if draw >= 0.995:
            kind = "malformed"
        index = rng.randrange(N_INSTALLATIONS)
        order_id = None
        if kind == "order" or (kind == "unroutable" and rng.random() < 0.8):
            order_id = f"322-{index:02d}-{rng.randrange(20):04d}"
        elif kind == "not_found":
            order_id = f"404-{number:05d}"
            not_found.add((installation(index), order_id))
        event_format = rng.choices(["2024-11-01", "legacy", "2024-01-01"], [60, 25, 15])[0]
        if kind == "unroutable" and event_format == "legacy":
            event_format = "2024-11-01"  # legacy events name their installation: never unroutable
        item = Planned(number, kind, installation(index) if kind != "unroutable" else None, order_id)
        item.copies = 1 if rng.random() >= 0.12 else rng.choice([2, 3])
        planned.append(item)
        sends.extend(_copies(rng, item, event_format, index))
    return planned, _spread(rng, sends), not_found


def _copies(rng: random.Random, item: Planned, event_format: str, index: int) -> list[Send]:
    if item.kind == "malformed":
        item.copies = 1
        body = rng.choice(["{not json", '{"hello": "world"}', "[1, 2, 3]", ""])
        return [Send("queue", item, body=body or " ")]
    envelope = _envelope(rng, item.kind, index, item.order_id, event_format)
    if event_format != "2024-11-01":
        if item.copies == 1:
            return [Send("bus", item, envelope=envelope)]  # its ID is the one EventBridge assigns
        item.ids.add(envelope["id"])  # at-least-once delivery of one EventBridge event
        body = json.dumps(envelope)
        return [Send("queue", item, body=body) for _ in range(item.copies)]
    item.ids.add(envelope["detail"]["eventId"])
    sends = [Send("bus", item, envelope=envelope)]
    for _ in range(item.copies - 1):
        again = json.loads(json.dumps(envelope))
        if rng.random() < 0.3:  # a producer retry: new eventId, same idempotencyKey
            again["detail"]["eventId"] = f"retry-{rng.randrange(10**12)}"
            item.ids.add(again["detail"]["eventId"])
        sends.append(Send("bus", item, envelope=again))
    return sends


def _spread(rng: random.Random, sends: list[Send]) -> list[Send]:
    ordered: list[Send] = []
    later: list[tuple[int, Send]] = []
    seen: set[int] = set()
    for send in sends:
        if send.planned.number in seen:
            later.append((len(ordered) + rng.randint(1, 40), send))
            continue
        seen.add(send.planned.number)
        ordered.append(send)
    for position, send in sorted(later, key=lambda pair: pair[0], reverse=True):
        ordered.insert(min(position, len(ordered)), send)
    return ordered


# ------------------------------------------------------------------------------------- the actors
class Run:
    def __init__(self, stack: LocalStack, runners: list[Runner], rng: random.Random) -> None:
        self.stack = stack
        self.runners = runners
        self.output = RunnerOutput()
        self.rng = rng
        self.stop = threading.Event()
        self.sent = 0
        self.faults: Counter[str] = Counter()
        self.revoked_after: int | None = None
        self.errors: list[Exception] = []
        self.deadline = time.monotonic() + RUN_DEADLINE
        self.events = stack.client("events")
        self.sqs = stack.client("sqs")
        self.queue_url = stack.aws.queue_url("EventsQueue")

    def guarded(self, target: Any, *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.errors.append(error)
                self.stop.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def queue_depth(self, queue: str = "EventsQueue") -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.aws.queue_url(queue),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def publish(self, sends: list[Send]) -> None:
        """10 messages at a time, keeping about QUEUE_HIGH_WATER of them unsettled (counted from the
        runners' verdicts; the queue itself is asked only when that count seems stuck)."""
        for start in range(0, len(sends), 10):
            waited_since = time.monotonic()
            while self.sent - self.output.final() > QUEUE_HIGH_WATER and not self.stop.is_set():
                if time.monotonic() > self.deadline:
                    raise TimeoutError("the queue never drained below the high-water mark")
                if time.monotonic() - waited_since > 2 and self.queue_depth() <= QUEUE_HIGH_WATER:
                    break  # e.g. messages moved to the DLQ never get a final verdict
                time.sleep(0.05)
            if self.stop.is_set():
                return
            chunk = sends[start : start + 10]
            self._put_on_bus([s for s in chunk if s.route == "bus"])
            self._put_on_queue([s for s in chunk if s.route == "queue"])
            self.sent += len(chunk)

    def _put_on_bus(self, sends: list[Send]) -> None:
        if not sends:
            return
        entries = []
        for send in sends:
            envelope = send.envelope
            assert envelope is not None
            entries.append(
                {
                    "Source": envelope["source"],
                    "DetailType": envelope["detail-type"],
                    "Detail": json.dumps(envelope["detail"]),
                    "Resources": envelope["resources"],
                    "EventBusName": self.stack.aws.bus_name,
                }
            )
        answer = self.events.put_events(Entries=entries)
        assert answer["FailedEntryCount"] == 0, answer
        for send, entry in zip(sends, answer["Entries"], strict=True):
            if not send.planned.ids:  # thin / legacy: the event ID is the one the bus assigned
                send.planned.ids.add(entry["EventId"])

    def _put_on_queue(self, sends: list[Send]) -> None:
        if not sends:
            return
        answer = self.sqs.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "MessageBody": s.body or ""} for i, s in enumerate(sends)],
        )
        assert not answer.get("Failed"), answer
        for entry in answer["Successful"]:
            send = sends[int(entry["Id"])]
            if send.planned.kind == "malformed":
                send.planned.ids.add(f"sqs:{entry['MessageId']}")

    def inject_faults(self) -> None:
        """One draw per FAULT_EVERY messages published (so the faults do not multiply when the
        machine is slow): throttling, short 429/5xx bursts the client's retries absorb, bursts
        that exhaust them (-> RETRY -> redelivery), latency beyond the read timeout, a token
        endpoint answering 429/5xx while the installations refresh."""
        sandbox = self.stack.sandbox
        schedule = random.Random(SEED + 1)
        for threshold in range(FAULT_EVERY, N_EVENTS + 1, FAULT_EVERY):
            while self.sent < threshold:
                if self.stop.wait(0.05) or time.monotonic() > self.deadline:
                    return
            draw = schedule.random()
            if draw < 0.30:
                sandbox.throttle_next(schedule.randint(1, 3))
                self.faults["graphql ThrottlingError"] += 1
            elif draw < 0.55:
                status = schedule.choice([429, 500, 502, 503, 504])
                sandbox.fail_next("graphql", status, times=schedule.randint(1, 4))
                self.faults[f"graphql HTTP {status} (short)"] += 1
            elif draw < 0.61:  # more failures than 2 runners x 10 workers x 4 attempts absorb
                sandbox.fail_next("graphql", 503, times=60)
                self.faults["graphql HTTP 503 x60 (exhausts retries)"] += 1
            elif draw < 0.66:
                sandbox.latency("graphql", READ_TIMEOUT + 0.5)
                self.stop.wait(0.6)
                sandbox.latency("graphql", 0)
                self.faults["graphql latency > read timeout"] += 1
            elif draw < 0.75:
                sandbox.fail_next("token", schedule.choice([429, 500, 503]), times=schedule.randint(1, 2))
                self.faults["token endpoint 429/5xx"] += 1

    def dlq_depth(self) -> int:
        return self.queue_depth("EventsDeadLetterQueue")

    def settle(self, total: int) -> None:
        """Follow the runners until every message has its final verdict or sits in the DLQ; at
        40 % revoke REVOKED's tokens (the merchant revoked the app): its next query is refused,
        the refresh meets invalid_grant, and its order events need re-authorisation."""
        while time.monotonic() < self.deadline and not self.stop.is_set():
            for runner in self.runners:
                runner.read_into(self.output)
                if runner.process.poll() is not None:
                    raise AssertionError(f"a runner stopped early ({runner.process.returncode}): {runner.tail()}")
            final = self.output.final()
            if self.revoked_after is None and final >= total * 0.4:
                self.stack.sandbox.revoke_refresh_tokens(REVOKED)
                self.stack.sandbox.revoke_access_tokens(REVOKED)
                self.revoked_after = final
            if self.sent == total and final + self.dlq_depth() >= total and self.queue_depth() == 0:
                return  # (both depths asked only once everything is sent)
            time.sleep(0.25)
        raise AssertionError(
            f"not settled within {RUN_DEADLINE} s: sent {self.sent}/{total}, final verdicts "
            f"{self.output.final()}, DLQ {self.dlq_depth()}, queue {self.queue_depth()}, errors {self.errors!r}"
        )


# ---------------------------------------------------------------------------- reading what is left
def _scan(stack: LocalStack) -> list[dict[str, Any]]:
    client = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": stack.aws.table_name(), "ConsistentRead": True}
    for _ in range(1000):
        page = client.scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise AssertionError("the table scan did not end")


def _dead_letters(stack: LocalStack) -> Iterator[tuple[str, str]]:
    """(event ID, message ID) of each message in the DLQ (sqs:<messageId> for bodies that are not
    events). Two deliveries of one event can both end there: messages are counted by message ID."""
    sqs = stack.client("sqs")
    url = stack.aws.queue_url("EventsDeadLetterQueue")
    for _ in range(200):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not messages:
            return
        for message in messages:
            try:
                yield parse_event(message["Body"]).event_id, message["MessageId"]
            except MalformedEventError:
                yield f"sqs:{message['MessageId']}", message["MessageId"]


@dataclass
class Table:
    records: dict[str, dict[str, Any]]
    attention: set[tuple[str, str]]  # (outcome, event id)
    snapshots: dict[tuple[str, str], str]  # (installation, order) -> event id that wrote it
    statuses: dict[str, str]


def _read_table(stack: LocalStack) -> Table:
    table = Table({}, set(), {}, {})
    for item in _scan(stack):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk in ("EVENT", "EVENT_KEY"):  # under its ID, or under its idempotency key once processed
            event_id = item["event_id"]["S"]
            assert event_id not in table.records, f"two records of event {event_id}"
            table.records[event_id] = {k: next(iter(v.values())) for k, v in item.items()}
        elif pk.startswith("ATTENTION#"):  # ATTENTION#<outcome>#<shard>
            table.attention.add((pk.removeprefix("ATTENTION#").rpartition("#")[0], item["event_id"]["S"]))
        elif item.get("kind", {}).get("S") == "ORDER":  # ORDERS#<installation>#<shard>, one item per version
            installation = pk.removeprefix("ORDERS#").rpartition("#")[0]
            table.snapshots[(installation, item["resource_id"]["S"])] = item["event_id"]["S"]
        elif pk.startswith("INSTALLATION#") and sk == "INSTALLATION":
            table.statuses[pk.removeprefix("INSTALLATION#")] = item["status"]["S"]
    return table


def classify(item: Planned, table: Table, processed: Counter[str], dlq: set[str]) -> str:
    """processed | unroutable | failed | needs_reauthorization | dlq | twice | lost | inconsistent."""
    verdicts = sum(processed[i] for i in item.ids)
    records = [table.records[i] for i in sorted(item.ids) if i in table.records]
    done = [r for r in records if r["outcome"] == "processed"]
    kept = [r for r in records if r["outcome"] in ATTENTION and (r["outcome"], r["event_id"]) in table.attention]
    snapshot_ok = item.kind != "order" or (item.installation_id, item.order_id) in table.snapshots
    if verdicts > 1 or len(done) > 1:
        verdict = "twice"
    elif done:
        verdict = "processed" if verdicts == 1 and snapshot_ok else "inconsistent"
    elif verdicts == 0 and kept:
        verdict = str(kept[0]["outcome"])
    elif verdicts == 0 and not records and item.ids & dlq:
        verdict = "dlq"
    else:
        verdict = "lost" if not records else "inconsistent"
    return verdict


EXPECTED = {
    "order": {"processed", "dlq"},
    "other": {"processed", "dlq"},
    "unroutable": {"unroutable"},
    "not_found": {"failed", "dlq"},
    "malformed": {"failed"},
}


def _expected(item: Planned) -> set[str]:
    # "other" events name a product (items/{id}): hydrated too (events/hydrators.py), so they need a token
    if item.installation_id == REVOKED and item.kind in ("order", "other", "not_found"):
        return EXPECTED[item.kind] | {"needs_reauthorization"}
    return EXPECTED[item.kind]


# ------------------------------------------------------------------------------------------- test
def _install_everyone(stack: LocalStack) -> None:
    """Twenty installations whose access tokens live TOKEN_LIFETIME: each runner refreshes each
    installation every 5-65 s (rotating refresh tokens, one lease per installation across both
    runners) while the events flow."""
    stack.sandbox.oauth.access_token_ttl = TOKEN_LIFETIME
    dynamodb = stack.client("dynamodb")
    installations = InstallationStore(dynamodb, stack.aws.table_name())
    links = EventStore(dynamodb, stack.aws.table_name())
    for index in range(N_INSTALLATIONS):
        tokens = TokenSet.model_validate(stack.sandbox.issue_tokens(installation(index)))
        installations.save_installation(installation(index), tokens, int(time.time()))
        links.put_link(business_product(index), installation(index), "operator")


def _runner_arguments() -> list[str]:
    return [
        # idle: the queue empty this long (nothing in flight either) ends a runner; on a busy CI
        # machine the publisher can pause for seconds, so well above RETRY_DELAY_SECONDS
        *("--max-seconds", str(RUN_DEADLINE + 30), "--idle-seconds", "10"),
        *("--graphql-read-timeout", str(READ_TIMEOUT), "--retry-delay", str(RETRY_DELAY_SECONDS)),
    ]


def test_thousands_of_events_with_faults_and_duplicates_reconcile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    planned, sends, not_found = plan_events(rng)
    started = time.monotonic()
    with fast_moto(), LocalStack(events=False, background_polling=False) as stack:
        _install_everyone(stack)
        for installation_id, order_id in not_found:
            stack.sandbox.put_order(installation_id, order_id, None)
        set_visibility_timeout(stack, IN_FLIGHT_VISIBILITY_SECONDS)
        runners = [Runner(stack, tmp_path, f"runner-{n}", *_runner_arguments()) for n in range(N_RUNNERS)]
        run = Run(stack, runners, rng)
        threads = [run.guarded(run.publish, sends), run.guarded(run.inject_faults)]
        try:
            run.settle(len(sends))
            for runner in runners:
                assert runner.wait(timeout=30) == 0
                runner.read_into(run.output)
        finally:
            run.stop.set()
            for thread in threads:
                thread.join(10)
            for runner in runners:
                runner.close()
        elapsed = time.monotonic() - started
        assert not run.errors, run.errors
        table = _read_table(stack)
        dead = list(_dead_letters(stack))
        dlq = {event_id for event_id, _ in dead}
        dlq_messages = {message_id for _, message_id in dead}
        sandbox_calls = Counter(stack.sandbox.calls)

    output = run.output
    verdicts = Counter(v.verdict for v in output.verdicts)
    processed = Counter(v.event_id for v in output.verdicts if v.verdict == "processed")
    outcome = {item.number: classify(item, table, processed, dlq) for item in planned}
    counts = Counter(outcome.values())
    unexpected = {n: o for n, o in outcome.items() if o not in _expected(planned[n])}
    deliveries = Counter(v.message_id for v in output.verdicts)
    finals: dict[str, list[str]] = {}
    for v in output.verdicts:
        if v.verdict != "retry":
            finals.setdefault(v.message_id, []).append(v.verdict)
    # SQS standard queues may deliver a message again even after it was handled (moto does it when
    # two receives race): the pipeline must then answer "duplicate", never process it again.
    twice_delivered = {m: vs for m, vs in finals.items() if len(vs) > 1}
    batches = [s for s in output.steps if s["step"] == "batch"]

    with capsys.disabled():
        print(
            f"\nload: {len(planned)} distinct events, {len(sends)} messages "
            f"({len(sends) - len(planned)} duplicate deliveries), {N_INSTALLATIONS} installations, "
            f"{N_RUNNERS} runners, {elapsed:.1f} s"
            f"\n  reconciled: {dict(sorted(counts.items()))}"
            f"\n  verdicts per delivery (logs): {dict(sorted(verdicts.items()))}"
            f"\n  EMF metrics: {dict(sorted(output.metrics.items()))}"
            f"\n  {len(batches)} batches; {sum(1 for c in deliveries.values() if c > 1)} messages delivered more"
            f" than once; {len(twice_delivered)} delivered again after a final verdict; DLQ {len(dlq)}"
            f"\n  faults injected: {dict(sorted(run.faults.items()))}"
            f"\n  sandbox: {sandbox_calls['graphql']} GraphQL requests, "
            f"{sandbox_calls['token:refresh_token']} token refreshes"
            f"\n  revoked {REVOKED} after {run.revoked_after} final verdicts"
        )

    assert counts["lost"] == 0 and counts["twice"] == 0 and counts["inconsistent"] == 0, counts
    assert not unexpected, {n: (planned[n].kind, o) for n, o in list(unexpected.items())[:10]}
    # every message sent ended with a final verdict, or in the DLQ; one delivered again after its
    # final verdict was never processed a second time
    assert len(finals) + len(dlq_messages) == len(sends)
    assert all(vs.count("processed") <= 1 for vs in twice_delivered.values()), twice_delivered
    assert len(dlq_messages) <= len(planned) * 0.05, "retries should absorb most faults"
    # the metrics agree with the logs (one flush per completed invocation)
    assert output.metrics["EventsProcessed"] == verdicts["processed"]
    assert output.metrics["EventsRetried"] == verdicts["retry"]
    # the faults and duplicates really happened, and were told apart
    assert verdicts["retry"] > 0 and any(c > 1 for c in deliveries.values())
    assert verdicts["duplicate"] >= (len(sends) - len(planned)) * 0.9
    assert sandbox_calls["token:refresh_token"] >= N_INSTALLATIONS
    assert counts["needs_reauthorization"] > 0
    assert table.statuses[REVOKED] == "needs_reauthorization"
    assert {s for i, s in table.statuses.items() if i != REVOKED} == {"active"}
    assert counts["unroutable"] == sum(1 for p in planned if p.kind == "unroutable")
    # each order snapshot was fetched for an event of that order (the snapshot is stored before the
    # record, so its event may have ended as a retry, a duplicate by key or in the DLQ; every
    # processed order event has its snapshot: classify's snapshot_ok)
    planned_of = {event_id: p for p in planned for event_id in p.ids}
    for (installation_id, order_id), event_id in table.snapshots.items():
        assert (planned_of[event_id].installation_id, planned_of[event_id].order_id) == (installation_id, order_id)


def set_visibility_timeout(stack: LocalStack, seconds: int) -> None:
    """The queue's visibility timeout (360 s in the template, 6 x the function's timeout)."""
    stack.client("sqs").set_queue_attributes(
        QueueUrl=stack.aws.queue_url("EventsQueue"), Attributes={"VisibilityTimeout": str(seconds)}
    )
