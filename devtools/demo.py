"""`python -m devtools.demo` (`make demo`): the project's whole job, for real, on this machine, in
well under a minute; no AWS account, no Docker.

It starts the local stack on free ports (so it never clashes with a running `make dev`): moto
provisioned from template.yaml, the Buy with Prime sandbox, the HTTP front of the OAuth function and
the SQS poller feeding the events function. Then, each step checking its own outcome:

- a merchant installs the app through the real OAuth handler over HTTP (Launch, the sandbox's
  consent page, its form submitted with Approve, Install), then Buy with Prime opens Settings;
- the operator links the store's business product (`bwpctl link`);
- Buy with Prime events go onto the local bus in every format (2024-11-01, thin 2024-01-01,
  legacy), with a deprecated type name, a new type, a duplicate, one for an unknown business
  product, plus an event of another source on the same bus and a malformed message put straight
  on the queue; the rule, the queue and the events function take it from there;
- sandbox faults: GraphQL throttling with latency (absorbed in-process), HTTP 503 beyond the
  in-process retry budget (the message comes back and is processed once), and 503 until cleared
  (the message reaches the dead-letter queue; the fault is cleared and `bwpctl` redrives it);
- a second store whose refresh token Buy with Prime revoked: its event waits for re-authorisation;
- Buy with Prime uninstalls the app (signed POST): the tokens go, a tombstone stays.

It prints a short report (never a token) and exits 0 only if every step passed. The functions'
JSON logs are kept out of the report (`--logs FILE` saves them; a failure prints their tail).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

SRC = Path(__file__).resolve().parent.parent / "src"
if str(SRC) not in sys.path:  # the functions' code, as in Lambda (bwpctl does the same)
    sys.path.insert(0, str(SRC))

from devtools.local_stack import LocalStack  # noqa: E402
from devtools.merchant import Merchant, page_terms, page_title  # noqa: E402
from devtools.template import PROJECT_ROOT  # noqa: E402
from sandbox.catalog import make_order, make_store  # noqa: E402
from sandbox.events import Format, partner_event, resource_path  # noqa: E402

REPORT_PATH = PROJECT_ROOT / "build" / "demo-report.txt"  # generated, never committed (gitignored)
STORE_A = "amzn1.bwp.installation.demo-0001"
STORE_B = "amzn1.bwp.installation.demo-0002"
PRODUCT_A = "amzn1.bp.product.demo-0001"
PRODUCT_B = "amzn1.bp.product.demo-0002"
PRODUCT_UNKNOWN = "amzn1.bp.product.unknown-0404"
FOREIGN_SOURCE = "com.example.storefront"
NEW_TYPE = "LOYALTY_POINTS_EARNED"  # not (yet) a Buy with Prime type: must not break anything
POISON = '{"detail-type": "ORDER_CONFIRMED", "detail": {'  # cut short: not JSON
RETRY_DELAY_SECONDS = 1  # failed messages come back after 1 s (Lambda: the visibility timeout)
SERVER_THREADS = ("sqs-poller", "moto-server", "local-front", "buy-with-prime-sandbox")


def order_id(number: int) -> str:
    return f"322-1000001-{number:07d}"


def without_typename(value: Any) -> Any:
    """A GraphQL answer without `__typename` (the sandbox adds it; the pipeline's query does not ask)."""
    if isinstance(value, dict):
        return {k: without_typename(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [without_typename(v) for v in value]
    return value


def when(epoch: float | int | str | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(float(epoch), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the functions' output, kept out of the report ------------------------------------------------
class Capture(io.TextIOBase):
    """A thread-safe text sink for what the functions print (Powertools JSON logs, EMF metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def documents(self) -> list[dict[str, Any]]:
        found = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    document = json.loads(line)
                    if isinstance(document, dict):
                        found.append(document)
        return found

    def verdicts(self) -> list[tuple[str, str, str | None]]:
        """(event_id, verdict, reason) of every record the events function logged, in order: the
        operator's view (CloudWatch Logs), one line per delivery."""
        return [
            (str(d.get("event_id")), str(d["message"]).removeprefix("event "), d.get("reason"))
            for d in self.documents()
            if str(d.get("message", "")).startswith("event ") and d.get("function_name") == "EventsFunction"
        ]


@contextlib.contextmanager
def functions_output_to(capture: Capture) -> Iterator[None]:
    """While inside: stdout (EMF metrics), the functions' Powertools logger and the local stack's
    own log go to `capture`; everything is put back on the way out."""
    from shared.observability import logger

    handler = logger.registered_handler
    stream_handler = handler if isinstance(handler, logging.StreamHandler) else None
    previous_stream = stream_handler.stream if stream_handler else None
    previous_level = logger.log_level
    local = logging.getLogger("devtools.local_stack")
    local_handler = logging.StreamHandler(capture)
    local_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous_propagate = local.propagate
    if stream_handler:
        stream_handler.setStream(capture)
    logger.setLevel(min(previous_level, logging.INFO))  # the verdict lines are INFO
    local.addHandler(local_handler)
    local.propagate = False
    try:
        with contextlib.redirect_stdout(capture):
            yield
    finally:
        local.propagate = previous_propagate
        local.removeHandler(local_handler)
        logger.setLevel(previous_level)
        if stream_handler and previous_stream is not None:
            stream_handler.setStream(previous_stream)


# --- steps and checks ------------------------------------------------------------------------------
class Check:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def expect(self, condition: object, problem: str) -> bool:
        if not condition:
            self.problems.append(problem)
        return bool(condition)


@dataclass
class Step:
    name: str
    passed: bool | None  # None: not run (an earlier step stopped the demo)
    summary: str


@dataclass
class Sent:
    """One event the demo put on the bus (or the queue) and what it expects of it."""

    label: str
    event_id: str
    verdicts: list[str]  # the events function's verdicts, one per delivery, in order
    event_type: str | None = None
    received_type: str | None = None
    event_format: str | None = None
    installation_id: str | None = None
    order: str | None = None
    envelope: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sections:
    installation: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)


class Demo:
    def __init__(
        self, stack: LocalStack, capture: Capture, *, timeout: float = 30.0, progress: TextIO | None = None
    ) -> None:
        from shared.store.event_records import EventStore

        self.stack = stack
        self.capture = capture
        self.timeout = timeout
        self.progress = progress
        self.merchant = Merchant(stack.launch_url)
        self.table = stack.aws.table_name()
        self.dynamodb = stack.client("dynamodb")
        self.sqs = stack.client("sqs")
        self.queue_url = stack.aws.queue_url("EventsQueue")
        self.dlq_url = stack.aws.queue_url("EventsDeadLetterQueue")
        self.poller = stack.pollers["EventsFunction.PartnerEventsQueue"]
        self.store = EventStore(self.dynamodb, self.table)
        self.sent: list[Sent] = []
        self.steps: list[Step] = []
        self.sections = Sections()
        self.secrets: set[str] = set()
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
        self.max_receive = int(json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"])

    # --- running ---------------------------------------------------------------------------------
    def run(self) -> None:
        steps: list[tuple[str, Callable[[Check], str]]] = [
            ("stack", self.step_stack),
            ("install", self.step_install),
            ("settings", self.step_settings),
            ("link", self.step_link),
            ("events", self.step_events),
            ("throttling", self.step_throttling),
            ("retry", self.step_retry),
            ("dead-letter", self.step_dead_letter),
            ("redrive", self.step_redrive),
            ("reauthorization", self.step_reauthorization),
            ("snapshots", self.step_snapshots),
            ("event log", self.step_event_log),
            ("uninstall", self.step_uninstall),
        ]
        stopped = False
        for name, action in steps:
            if stopped:
                self.steps.append(Step(name, None, "not run"))
                continue
            check = Check()
            try:
                summary = action(check)
            except Exception as error:  # noqa: BLE001 - reported as the step's failure; the rest cannot run
                check.problems.append(f"{type(error).__name__}: {error}")
                summary, stopped = "", True
            passed = not check.problems
            self.steps.append(Step(name, passed, summary if passed else "; ".join(check.problems)))
            if self.progress is not None:  # one line per step as it ends: a newcomer sees it move
                print(f"  [{len(self.steps)}/{len(steps)}] {name}: {'ok' if passed else 'FAILED'}", file=self.progress)
        self.merchant.close()

    # --- helpers -----------------------------------------------------------------------------------
    def depth(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def settle(self, *, dead_letters: int = 0) -> float:
        """Wait (at most `timeout` s) until the events queue is empty (nothing visible, in flight
        or delayed) and the DLQ holds `dead_letters` messages; the seconds it took."""
        started = time.monotonic()
        calm = 0
        while time.monotonic() - started < self.timeout:
            if self.depth(self.queue_url) == 0 and self.depth(self.dlq_url) == dead_letters:
                calm += 1
                if calm == 2:
                    return time.monotonic() - started
            else:
                calm = 0
            time.sleep(0.1)
        raise TimeoutError(
            f"after {self.timeout:.0f} s the queue holds {self.depth(self.queue_url)} and the DLQ "
            f"{self.depth(self.dlq_url)} message(s) ({dead_letters} expected in the DLQ)"
        )

    def publish(self, sent: Sent, envelope: dict[str, Any]) -> Sent:
        eventbridge_id = self.stack.publish(envelope)
        detail = envelope.get("detail") or {}
        sent.event_id = str(detail.get("eventId") or eventbridge_id)  # what the pipeline keys on
        sent.envelope = envelope
        self.sent.append(sent)
        return sent

    def event(
        self,
        label: str,
        event_type: str,
        resources: list[str],
        event_format: Format,
        *,
        verdicts: list[str],
        canonical: str | None = None,
        installation_id: str | None = STORE_A,
        order: str | None = None,
    ) -> Sent:
        envelope = partner_event(
            event_type,
            resources,
            event_format=event_format,
            installation_id=installation_id if event_format == "legacy" else None,
        )
        sent = Sent(
            label,
            "",
            verdicts,
            event_type=canonical or event_type,
            received_type=event_type,
            event_format=event_format,
            installation_id=installation_id,
            order=order,
        )
        return self.publish(sent, envelope)

    def verdicts_of(self, event_id: str) -> list[str]:
        return [verdict for eid, verdict, _ in self.capture.verdicts() if eid == event_id]

    def check_sent(self, check: Check, sent: Sent) -> dict[str, Any] | None:
        """The events function's verdicts and the event record are what `sent` expects."""
        seen = self.verdicts_of(sent.event_id)
        expected = sent.verdicts
        if "duplicate" in expected:  # a duplicate in the same batch may be logged first
            seen, expected = sorted(seen), sorted(expected)
        check.expect(seen == expected, f"{sent.label}: verdicts {seen}, expected {expected}")
        record = next((r for r in self.event_records() if r.get("event_id") == sent.event_id), None)
        final = [v for v in sent.verdicts if v not in {"retry", "duplicate"}]
        if not final:
            check.expect(record is None, f"{sent.label}: an event record exists")
            return record
        if not check.expect(record is not None, f"{sent.label}: no event record"):
            return None
        assert record is not None
        wanted = {
            "outcome": final[-1],
            "event_type": sent.event_type,
            "received_type": sent.received_type,
            "event_format": sent.event_format,
            "installation_id": sent.installation_id,
        }
        for name, value in wanted.items():
            if value is not None or name == "installation_id":
                check.expect(record.get(name) == value, f"{sent.label}: {name} {record.get(name)!r}, not {value!r}")
        return record

    def snapshot(self, installation_id: str, order: str) -> dict[str, Any] | None:
        return self.store.order_snapshot(installation_id, order)

    def remember_tokens(self, installation_id: str) -> None:
        item = self.stack.installation(installation_id) or {}
        self.secrets.update(str(item[name]) for name in ("access_token", "refresh_token") if item.get(name))

    def graphql_calls(self) -> int:
        return int(self.stack.sandbox.calls["graphql"])

    # --- the steps ---------------------------------------------------------------------------------
    def step_stack(self, check: Check) -> str:
        health = self.merchant.get(self.stack.health_url)
        check.expect(health.status_code == 200 and health.json() == {"status": "ok"}, f"health {health.status_code}")
        origins = {
            "app": self.stack.front.origin,
            "Buy with Prime sandbox": self.stack.sandbox.base_url,
            "moto": self.stack.aws.endpoint_url,
        }
        check.expect(len({o.rsplit(":", 1)[1] for o in origins.values()}) == 3, "two parts share a port")
        self.sections.installation.insert(0, "  " + ", ".join(f"{name} {origin}" for name, origin in origins.items()))
        return "moto (from template.yaml), sandbox, HTTP front, SQS poller on free ports"

    def step_install(self, check: Check) -> str:
        installed = self.merchant.install(STORE_A, store_name="Demo store")
        check.expect(installed.status == 200, f"Install answered {installed.status}")
        check.expect(installed.title == "App installed", f"Install page says {installed.title!r}")
        check.expect(installed.install_url == self.stack.install_url, "redirected elsewhere than the Install URL")
        expected_hops = ["GET /launch 302", "GET /marketplace/authorize 200", "POST /marketplace/authorize 302"]
        check.expect(installed.hops[:3] == expected_hops, f"hops {installed.hops}")
        item = self.stack.installation(STORE_A) or {}
        check.expect(item.get("status") == "active", f"installation status {item.get('status')!r}")
        check.expect(item.get("access_token") and item.get("refresh_token"), "no tokens stored")
        self.remember_tokens(STORE_A)
        self.sections.installation += [
            f"Installation {STORE_A}",
            "  install      " + " > ".join(h.replace("/marketplace", "") for h in installed.hops) + ": App installed",
        ]
        return "Launch > consent form (Approve) > Install, cookie carried: App installed"

    def step_settings(self, check: Check) -> str:
        page = self.merchant.get(self.stack.signed_settings_url(STORE_A))
        terms = page_terms(page.text)
        check.expect(page.status_code == 200, f"Settings answered {page.status_code}")
        check.expect(terms.get("Status") == "Connected", f"status {terms.get('Status')!r}")
        item = self.stack.installation(STORE_A) or {}
        minutes = (int(item.get("access_token_expires_at", 0)) - time.time()) / 60
        self.sections.installation += [
            f"  status       {item.get('status')}, installed at {when(item.get('installed_at'))}",
            f"  status {terms.get('Status')} (signed Settings page): access token valid"
            f" {minutes:.0f} more min, refresh token stored",
        ]
        return f'signed Settings URL: "{page_title(page.text)}", status {terms.get("Status")}'

    def step_link(self, check: Check) -> str:
        from bwpctl.__main__ import main as bwpctl

        arguments = [
            *("--table", self.table, "--queue-url", self.queue_url, "--dlq-url", self.dlq_url),
            *("--endpoint-url", self.stack.aws.endpoint_url),
        ]
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            status = bwpctl([*arguments, "link", PRODUCT_A, STORE_A])
        check.expect(status == 0, f"bwpctl link exited {status}")
        links = self.store.lookup([], [], [PRODUCT_A]).links
        check.expect(links.get(PRODUCT_A) == STORE_A, f"link {links}")
        self.sections.installation.append(f"  link         bwpctl link {PRODUCT_A} {STORE_A} (the operator)")
        return said.getvalue().strip()

    def step_events(self, check: Check) -> str:
        records_before = self.poller.stats.records
        o1, o2 = order_id(1), order_id(2)
        first = self.event(
            "ORDER_CONFIRMED (2024-11-01)",
            "ORDER_CONFIRMED",
            [resource_path(PRODUCT_A, order_id=o1)],
            "2024-11-01",
            verdicts=["processed", "duplicate"],
            order=o1,
        )
        self.event(
            "PACKAGE_DELIVERY_IN_TRANSIT (thin)",
            "PACKAGE_DELIVERY_IN_TRANSIT",
            [resource_path(PRODUCT_A, order_id=o1, delivery_id="delivery-0001")],
            "2024-01-01",
            verdicts=["processed"],
            order=o1,
        )
        self.event(
            "DELIVERY_COMPLETED (legacy, deprecated name)",
            "DELIVERY_COMPLETED",
            [resource_path(PRODUCT_A, order_id=o2, delivery_id="delivery-0002")],
            "legacy",
            verdicts=["processed"],
            canonical="PACKAGE_DELIVERED",
            order=o2,
        )
        self.event(
            "REFUND_REQUESTED (2024-11-01)",
            "REFUND_REQUESTED",
            [resource_path(PRODUCT_A, order_id=o2, refund_id="refund-0001")],
            "2024-11-01",
            verdicts=["processed"],
            order=o2,
        )
        self.event(
            "INVENTORY_CHANGED (thin)",
            "INVENTORY_CHANGED",
            [resource_path(PRODUCT_A, item_id="item-0001", item_segment="item-quantities")],
            "2024-01-01",
            verdicts=["processed"],
        )
        self.event(
            f"{NEW_TYPE} (new type)",
            NEW_TYPE,
            [f"businessProduct/{PRODUCT_A}/loyaltyAccount/account-0001"],
            "2024-11-01",
            verdicts=["processed"],
        )
        self.stack.publish(first.envelope)  # delivered again (EventBridge delivers at least once)
        unroutable = self.event(
            "ORDER_CONFIRMED, unknown business product",
            "ORDER_CONFIRMED",
            [resource_path(PRODUCT_UNKNOWN, order_id=order_id(9))],
            "2024-11-01",
            verdicts=["unroutable"],
            installation_id=None,
        )
        self.stack.publish(  # same bus, another source: the rule must not forward it
            {"source": FOREIGN_SOURCE, "detail-type": "ORDER_CONFIRMED", "detail": {"orderId": order_id(8)}}
        )
        poison_id = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=POISON)["MessageId"]
        poison = Sent("malformed JSON put straight on the queue", f"sqs:{poison_id}", ["failed"])
        self.sent.append(poison)
        took = self.settle()

        for sent in self.sent:
            self.check_sent(check, sent)
        delivered = self.poller.stats.records - records_before
        check.expect(delivered == 9, f"the events function got {delivered} records, expected 9 (not the foreign one)")
        check.expect(
            not any(reason == "foreign_source" for _, _, reason in self.capture.verdicts()),
            "the foreign event reached the events function",
        )
        poison_record = self.store.event(poison.event_id) or {}
        check.expect(poison_record.get("reason") == "malformed_json", f"poison reason {poison_record.get('reason')!r}")
        attention = self.store.attention("unroutable")
        check.expect([a.event_id for a in attention] == [unroutable.event_id], "unroutable event not kept for replay")
        self.sections.events += [
            f"  rule         the {FOREIGN_SOURCE} event on the same bus never reached the queue",
            "  duplicate    ORDER_CONFIRMED delivered twice: recorded once",
            f"  names        DELIVERY_COMPLETED (deprecated) -> PACKAGE_DELIVERED; {NEW_TYPE} (new) kept raw",
            f"  unroutable   ORDER_CONFIRMED for {PRODUCT_UNKNOWN} (no link): kept for bwpctl replay",
            "  failed       malformed JSON put straight on the queue: recorded once, never retried",
        ]
        return f"9 messages through bus, rule, queue, events function in {took:.1f} s"

    def step_throttling(self, check: Check) -> str:
        sandbox = self.stack.sandbox
        calls = self.graphql_calls()
        sandbox.latency("graphql", 0.25)
        sandbox.throttle_next(2)
        try:
            sent = self.event(
                "ORDER_CONFIRMED under throttling",
                "ORDER_CONFIRMED",
                [resource_path(PRODUCT_A, order_id=order_id(3))],
                "2024-01-01",
                verdicts=["processed"],
                order=order_id(3),
            )
            took = self.settle()
        finally:
            sandbox.faults.clear()
        self.check_sent(check, sent)
        made = self.graphql_calls() - calls
        check.expect(made == 3, f"{made} GraphQL calls, expected 2 throttled + 1")
        check.expect(self.snapshot(STORE_A, order_id(3)), "no snapshot")
        return f"GraphQL ThrottlingError x2 + 250 ms latency: retried in-process, processed ({took:.1f} s)"

    def step_retry(self, check: Check) -> str:
        calls = self.graphql_calls()
        self.stack.sandbox.fail_next("graphql", 503, times=4)  # the client's whole in-process budget
        sent = self.event(
            "ORDER_CONFIRMED through a 503 burst",
            "ORDER_CONFIRMED",
            [resource_path(PRODUCT_A, order_id=order_id(4))],
            "legacy",
            verdicts=["retry", "processed"],
            order=order_id(4),
        )
        took = self.settle()
        self.check_sent(check, sent)
        made = self.graphql_calls() - calls
        check.expect(made == 5, f"{made} GraphQL calls, expected 4 failed + 1")
        snapshot = self.snapshot(STORE_A, order_id(4))
        check.expect(snapshot and snapshot.get("id") == order_id(4), "no snapshot")
        records = [r for r in self.event_records() if r.get("event_id") == sent.event_id]
        check.expect(len(records) == 1, f"{len(records)} event records")
        return f"GraphQL 503 x4 (in-process budget): sent back, processed on delivery 2, once ({took:.1f} s)"

    def step_dead_letter(self, check: Check) -> str:
        calls = self.graphql_calls()
        self.stack.sandbox.fail_next("graphql", 503, times=10_000)  # until cleared
        sent = self.event(
            "ORDER_CONFIRMED during an outage",
            "ORDER_CONFIRMED",
            [resource_path(PRODUCT_A, order_id=order_id(5))],
            "2024-11-01",
            verdicts=["retry"] * self.max_receive,
            order=order_id(5),
        )
        self.settle(dead_letters=1)
        self.check_sent(check, sent)
        made = self.graphql_calls() - calls
        check.expect(made == 4 * self.max_receive, f"{made} GraphQL calls, expected {4 * self.max_receive}")
        peek = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        bodies = [json.loads(m["Body"]) for m in peek.get("Messages", [])]
        ids = [b.get("detail", {}).get("eventId") for b in bodies]
        check.expect(ids == [sent.event_id], f"DLQ holds {ids}")
        return f"GraphQL 503 until cleared: {self.max_receive} deliveries, then DLQ: ORDER_CONFIRMED {order_id(5)}"

    def step_redrive(self, check: Check) -> str:
        from bwpctl.replay import redrive

        self.stack.sandbox.faults.clear()
        moved = redrive(self.sqs, self.dlq_url, self.queue_url)
        check.expect(moved.moved == 1 and moved.skipped == 0, f"redrive moved {moved}")
        took = self.settle(dead_letters=0)
        sent = next(s for s in self.sent if s.order == order_id(5))
        sent.verdicts = [*sent.verdicts, "processed"]
        self.check_sent(check, sent)
        check.expect(self.snapshot(STORE_A, order_id(5)), "no snapshot after the redrive")
        return f"fault cleared; bwpctl redrive: {moved.moved} moved > processed ({took:.1f} s); DLQ empty"

    def step_reauthorization(self, check: Check) -> str:
        sandbox = self.stack.sandbox
        lifetime = sandbox.oauth.access_token_ttl
        sandbox.oauth.access_token_ttl = 60  # within the 120 s refresh margin: due at once
        try:
            installed = self.merchant.install(STORE_B, store_name="Second demo store")
        finally:
            sandbox.oauth.access_token_ttl = lifetime
        check.expect(installed.title == "App installed", f"store B: {installed.title!r}")
        self.remember_tokens(STORE_B)
        revoked = sandbox.revoke_refresh_tokens(STORE_B)  # the merchant revoked the app's access
        check.expect(revoked == 1, f"{revoked} refresh tokens revoked")
        sent = self.event(
            "ORDER_CONFIRMED, store B",
            "ORDER_CONFIRMED",
            [resource_path(PRODUCT_B, order_id=order_id(6))],
            "legacy",
            verdicts=["needs_reauthorization"],
            installation_id=STORE_B,
        )
        self.settle()
        self.check_sent(check, sent)
        item = self.stack.installation(STORE_B) or {}
        check.expect(item.get("status") == "needs_reauthorization", f"store B status {item.get('status')!r}")
        kept = [a.event_id for a in self.store.attention("needs_reauthorization")]
        check.expect(kept == [sent.event_id], f"attention list {kept}")
        terms = page_terms(self.merchant.get(self.stack.signed_settings_url(STORE_B)).text)
        health = terms.get("Status", "")
        check.expect(health == "Needs your permission again", f"Settings says {health!r}")
        return f'store demo-0002, refresh token revoked: event kept; Settings: "{health.split(":")[0]}"'

    def step_snapshots(self, check: Check) -> str:
        from shared.store.keys import INSTALLATION_PREFIX, STORE_SK, snapshot_partitions

        found = [
            item
            for partition in snapshot_partitions(STORE_A)  # one tenant's snapshots: 16 partitions per kind
            if partition.startswith("ORDERS#")
            for item in self.dynamodb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": partition}},
            ).get("Items", [])
        ]
        # one item per version, oldest first: the latest wins
        snapshots = {item["resource_id"]["S"]: (json.loads(item["data"]["S"]), item["event_id"]["S"]) for item in found}
        expected = [order_id(n) for n in (1, 2, 3, 4, 5)]
        check.expect(sorted(snapshots) == expected, f"snapshots of {sorted(snapshots)}")
        lines = ["Order snapshots (the order as the GraphQL API answers it)"]
        types = {s.event_id: s.event_type for s in self.sent}
        for order, (document, event_id) in sorted(snapshots.items()):
            items = document.get("lineItems", [])
            api = without_typename(make_order(order)["lineItems"])
            check.expect(items == api, f"{order}: line items differ from the API's")
            total = (document.get("totalPrice") or {}).get("amount", "?")
            lines.append(f"  {order}  {len(items)} line item(s), total {total} USD, from {types.get(event_id, '?')}")
        store = self.dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": INSTALLATION_PREFIX + STORE_A}, "sk": {"S": STORE_SK}}
        ).get("Item", {})
        identity = {"siteId": store.get("site_id", {}).get("S"), "widgetId": store.get("widget_id", {}).get("S")}
        expected_store = make_store(STORE_A)
        check.expect(
            identity == {"siteId": expected_store["siteId"], "widgetId": expected_store["widgetId"]},
            f"store identity {identity}",
        )
        self.sections.installation.append(
            f"  store        siteId {identity['siteId']}, widgetId {identity['widgetId']}"
        )
        self.sections.snapshots = lines
        return f"{len(snapshots)} orders as the API answers them; store identity as well"

    def event_records(self) -> list[dict[str, Any]]:
        from shared.store.keys import EVENT_KEY_SK, EVENT_SK

        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {  # under EVENT#<id>, or EVENT_KEY#<key> once processed with a key
            "TableName": self.table,
            "FilterExpression": "sk IN (:sk, :key_sk)",
            "ExpressionAttributeValues": {":sk": {"S": EVENT_SK}, ":key_sk": {"S": EVENT_KEY_SK}},
        }
        while True:
            page = self.dynamodb.scan(**request)
            items += [{k: next(iter(v.values())) for k, v in item.items()} for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def step_event_log(self, check: Check) -> str:
        verdicts = Counter(verdict for _, verdict, _ in self.capture.verdicts())
        records = Counter(str(r.get("outcome")) for r in self.event_records())
        expected = {"processed": 9, "duplicate": 1, "unroutable": 1, "failed": 1, "needs_reauthorization": 1}
        for outcome, count in expected.items():
            check.expect(verdicts[outcome] == count, f"{verdicts[outcome]} {outcome}, expected {count}")
            if outcome != "duplicate":
                check.expect(records[outcome] == count, f"{records[outcome]} {outcome} records, expected {count}")
        retries = 1 + self.max_receive
        check.expect(verdicts["retry"] == retries, f"{verdicts['retry']} deliveries sent back, expected {retries}")
        for name in ("unroutable", "failed", "needs_reauthorization"):
            check.expect(len(self.store.attention(name)) == 1, f"attention list {name}")
        formats = Counter(s.event_format for s in self.sent if s.event_format)
        published = sum(formats.values()) + 1  # + the duplicate
        self.sections.events[:0] = [
            f"Events: {published} published on the bus (2024-11-01 {formats['2024-11-01'] + 1},"
            f" 2024-01-01 {formats['2024-01-01']}, legacy {formats['legacy']}) + 1 foreign + 1 malformed",
            "  outcomes     "
            + ", ".join(f"{name} {verdicts[name]}" for name in expected)
            + f"; deliveries sent back {verdicts['retry']}",
        ]
        return ", ".join(f"{name} {verdicts[name]}" for name in expected) + " (logs and table agree)"

    def step_uninstall(self, check: Check) -> str:
        answer = self.stack.uninstall(STORE_A)
        check.expect(answer.status_code == 200, f"Uninstall answered {answer.status_code}")
        check.expect(answer.json() == {"status": "uninstalled"}, f"Uninstall answered {answer.text}")
        again = self.stack.uninstall(STORE_A)
        check.expect(again.json() == {"status": "already_uninstalled"}, f"second Uninstall answered {again.text}")
        item = self.stack.installation(STORE_A) or {}
        check.expect(item.get("status") == "uninstalled", f"status {item.get('status')!r}")
        check.expect("access_token" not in item and "refresh_token" not in item, "tokens kept after uninstall")
        shard = str(item.get("sweep_shard", ""))
        check.expect(shard.startswith("UNINSTALLED#"), f"tombstone not waiting for its purge (index {shard!r})")
        purge_days = int(self.stack.template["Parameters"]["TenantPurgeDays"]["Default"])
        purge_at = int(item.get("refreshed_hour", 0)) + purge_days * 86_400
        terms = page_terms(self.merchant.get(self.stack.signed_settings_url(STORE_A)).text)
        check.expect(terms.get("Status") == "Not installed", f"Settings says {terms.get('Status')!r}")
        self.sections.installation.append(
            f"  uninstall    signed POST: tokens removed; the tenant is purged from {when(purge_at)[:10]}"
            f" ({purge_days} days)"
        )
        return 'signed POST: "uninstalled", again: "already_uninstalled"; Settings: "Uninstalled"'

    # --- the report --------------------------------------------------------------------------------
    def collect_client_secret(self) -> None:
        secret = self.stack.client("secretsmanager").get_secret_value(SecretId=self.stack.aws.secret_arn())
        self.secrets.add(str(json.loads(secret["SecretString"])["client_secret"]))
        self.secrets.update(self.stack.sandbox.issued_access_tokens())


def stopped_threads(wait: float = 5.0) -> list[str]:
    """The local stack's server and poller threads still alive after it stopped (should be none)."""
    deadline = time.monotonic() + wait
    while True:
        alive = [t.name for t in threading.enumerate() if t.name in SERVER_THREADS and t.is_alive()]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def render(demo: Demo, extra_steps: list[Step], elapsed: float) -> str:
    sections = demo.sections
    body = [
        "Buy with Prime integration: local demo (make demo; no AWS account, no Docker)",
        *sections.installation,
        *sections.events,
        *sections.snapshots,
    ]
    body = [f"\n{line}" if i and not line.startswith(" ") else line for i, line in enumerate(body)]
    steps = demo.steps + extra_steps
    text = "\n".join(body)
    leaked = sorted({secret for secret in demo.secrets if secret and secret in text})
    logged = sorted({secret for secret in demo.secrets if secret and secret in demo.capture.text()})
    secret_step = Step(
        "no secrets",
        not leaked and not logged and bool(demo.secrets),
        f"no token ({len(demo.secrets) - 1}) or client secret in this report or the function logs"
        if not leaked and not logged and demo.secrets
        else f"{len(leaked)} secret(s) in the report, {len(logged)} in the logs (of {len(demo.secrets)} checked)",
    )
    steps.append(secret_step)
    passed = sum(1 for s in steps if s.passed)
    lines = [*body, "\nSteps"]
    for step in steps:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[step.passed]
        lines.append(f"  {verdict}  {step.name:<16}{step.summary}")
    ok = passed == len(steps)
    lines.append(f"{'PASS' if ok else 'FAIL'}: {passed}/{len(steps)} steps passed in {elapsed:.1f} s")
    return "\n".join(lines) + "\n"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--save-report",
        nargs="?",
        const=str(REPORT_PATH),
        metavar="FILE",
        help=f"after a successful run, write the report to FILE (default {REPORT_PATH.relative_to(PROJECT_ROOT)})",
    )
    parser.add_argument("--logs", metavar="FILE", help="write the functions' JSON logs to FILE")
    parser.add_argument("--timeout", type=float, default=30.0, help="longest wait for the queues to settle (s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    out, err = sys.stdout, sys.stderr
    capture = Capture()
    started = time.monotonic()
    demo: Demo | None = None
    print("starting the local stack (moto, the Buy with Prime sandbox, the functions)...", file=err, flush=True)
    try:
        with (
            functions_output_to(capture),
            LocalStack(
                retry_delay_seconds=RETRY_DELAY_SECONDS,
                app_events=False,
            ) as stack,
        ):
            demo = Demo(stack, capture, timeout=args.timeout, progress=err)
            demo.run()
            demo.collect_client_secret()
    except KeyboardInterrupt:
        print("interrupted: the local stack is stopped", file=err)
        return 130
    except Exception as error:  # noqa: BLE001 - e.g. the stack could not start: say why, fail
        print(f"FAIL: {type(error).__name__}: {error}", file=err)
        _tail(capture, err)
        return 1
    finally:
        if args.logs:
            Path(args.logs).write_text(capture.text(), encoding="utf-8")
    alive = stopped_threads()
    shutdown = Step("shutdown", not alive, "every server and poller thread stopped" if not alive else f"alive: {alive}")
    report = render(demo, [shutdown], time.monotonic() - started)
    print(report, end="", file=out, flush=True)
    ok = report.rstrip().splitlines()[-1].startswith("PASS")
    if not ok:
        _tail(capture, err)
    elif args.save_report:
        target = Path(args.save_report)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(report, encoding="utf-8")
        print(f"report saved to {target}", file=err)
    return 0 if ok else 1


def _tail(capture: Capture, stream: Any, lines: int = 40) -> None:
    tail = capture.text().splitlines()[-lines:]
    if tail:
        print(f"--- the last {len(tail)} lines of the functions' logs ---", file=stream)
        print("\n".join(tail), file=stream)


if __name__ == "__main__":
    sys.exit(main())
