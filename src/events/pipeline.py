"""One batch of partner events, start to finish, with as few round trips as possible:

1. parse every body (a malformed one is recorded, never retried);
2. one BatchGetItem: which events were processed already, and which installation each business
   product belongs to;
3. route each event to its installation (contextKeys, else the business-product link);
4. one access token per installation (refreshed at most once, by the token service);
5. hydrate concurrently: one query per (installation, resource) for what each event carries (an
   order, an inventory item, a product: events/hydrators.py), the store identity once;
6. record as each answer arrives: the snapshots that are ready share a BatchWriteItem
   (events/snapshots.py), then one conditional put per event record; attention outcomes with one
   conditional write each.

Every message ends with a verdict; only RETRY (transient trouble) sends it back to the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from events import limits
from events.envelope import MalformedEventError, PartnerEvent, parse_event
from events.hydrators import STORE_IDENTITY, Hydrator, epoch_ms, hydrator_for, hydrator_of_kind
from events.snapshots import UNPROCESSED_ATTEMPTS, SnapshotWriter, Ticket
from shared.budget import DEFAULT_BUDGET, Deadline, TimeBudget
from shared.failures import report_failure
from shared.observability import count, logger
from shared.store.event_records import EventRecord, EventStore, Lookup, Processed, Snapshot, Verdict

LINK_CACHE_SECONDS = 300
MAX_TOKEN_REPLACEMENTS = 2  # per query: see EventPipeline._fetch


class TokenProvider(Protocol):
    def access_token(
        self, installation_id: str, *, deadline: Deadline | None = None, generation: int | None = None
    ) -> str: ...

    def replace_rejected(self, installation_id: str, rejected: str, *, deadline: Deadline | None = None) -> str: ...

    def replacement(
        self, installation_id: str, rejected: str, *, deadline: Deadline | None = None
    ) -> tuple[str, bool]: ...

    def forget(self, installation_id: str) -> None: ...

    def offer(self, installation_id: str, access_token: str, expires_at: int, generation: int) -> None: ...


class GraphQLApi(Protocol):
    def graphql(
        self,
        access_token: str,
        installation_id: str,
        query: str,
        variables: dict[str, Any] | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]: ...


class Reason(StrEnum):
    """Why a message did not end processed: a small fixed set (metrics, logs, the attention list)."""

    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    FOREIGN_SOURCE = "foreign_source"
    NO_INSTALLATION = "no_installation_for_business_product"
    INSTALLATION_NOT_FOUND = "installation_not_found"
    REFRESH_TOKEN_REJECTED = "refresh_token_rejected"  # noqa: S105 - a reason code
    RESOURCE_NOT_FOUND = "resource_not_found"
    ACCESS_DENIED = "access_denied"
    VALIDATION_ERROR = "validation_error"
    UNEXPECTED_ANSWER = "unexpected_answer"
    GRAPHQL_ERROR = "graphql"  # another GraphQL error type (the detail)
    GRAPHQL_TRANSIENT = "graphql: transient"
    TOKEN = "token"  # noqa: S105 - the detail: the token service's error
    STORE = "store"  # the detail: the table's error
    OUT_OF_TIME = "out_of_time"
    UNFINISHED = "unfinished"
    BATCH_ERROR = "batch_error"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: Reason | None = None
    detail: str | None = None

    @property
    def text(self) -> str | None:
        """The reason as logged and recorded, e.g. "token: ProvisionedThroughputExceededException"."""
        if self.reason is None or self.detail is None:
            return None if self.reason is None else self.reason.value
        joint = "_" if self.reason is Reason.GRAPHQL_ERROR else ": "
        return f"{self.reason.value}{joint}{self.detail}"


PROCESSED = Decision(Verdict.PROCESSED)
RETRY_GRAPHQL = Decision(Verdict.RETRY, Reason.GRAPHQL_TRANSIENT)

__all__ = ["Decision", "EventPipeline", "Message", "Reason", "Result", "Verdict"]


@dataclass(frozen=True)
class Message:
    message_id: str
    body: str


@dataclass
class Result:
    message_id: str
    verdict: Verdict
    event_id: str | None = None
    event_type: str | None = None
    installation_id: str | None = None
    reason: str | None = None
    hydration_ms: float | None = None


@dataclass
class _Work:
    """One message on its way through the batch. `decision` is set once, by the first step that
    knows how the message ends (None until then: still pending, processed if nothing intervenes);
    `result` is the final verdict, once the record is written (or not)."""

    message: Message
    event: PartnerEvent | None = None
    malformed: Reason | None = None  # why the body is not an event it can store (event is None)
    installation_id: str | None = None
    link_candidate: tuple[str, str, str] | None = None  # (business product, linked installation, source)
    learned_link: str | None = None
    previous_attention: tuple[str, str] | None = None
    hydration: tuple[Hydrator, str] | None = None  # the hydrator the event is for, and the resource ID
    token: str | None = None
    snapshot: Snapshot | None = None  # on the first event of its resource's group
    hydrated: bool = False  # its data is in a snapshot: the raw body is not kept
    hydration_ms: float | None = None
    decision: Decision | None = None
    result: Result | None = None

    def decide(self, verdict: Verdict, reason: Reason | None = None, detail: str | None = None) -> None:
        if self.decision is not None:
            raise RuntimeError(f"message {self.message.message_id} decided twice: {self.decision} then {verdict}")
        self.decision = Decision(verdict, reason, detail)

    def finish(self, decision: Decision) -> None:
        event = self.event
        self.result = Result(
            message_id=self.message.message_id,
            verdict=decision.verdict,
            event_id=event.event_id if event else f"sqs:{self.message.message_id}",
            event_type=event.event_type if event else None,
            installation_id=self.installation_id,
            reason=decision.text,
            hydration_ms=self.hydration_ms,
        )


def pending(items: Iterable[_Work]) -> list[_Work]:
    """The messages no step has decided yet: the only ones a later step may work on."""
    return [item for item in items if item.decision is None]


class EventPipeline:
    def __init__(
        self,
        store: EventStore,
        tokens: TokenProvider,
        api: GraphQLApi,
        *,
        api_version: str | None = None,
        retention_days: int = 90,
        max_workers: int = 10,
        budget: TimeBudget = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.time,
        track_open_orders: bool = False,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._api = api
        self._api_version = api_version
        self._retention_seconds = retention_days * 86_400
        self._max_workers = max_workers
        self._budget = budget
        self._clock = clock
        # RehydrateOpenOrdersHours on: each ORDER snapshot keeps or removes its open-order marker
        self._track_open_orders = track_open_orders
        # business product -> (installation, cached until, source of the link)
        self._links: dict[str, tuple[str, float, str]] = {}
        self._known_stores: set[str] = set()
        # this batch's: when its Lambda must be done, and each installation's generation
        self._deadline: Deadline | None = None
        self._generations: dict[str, int] = {}
        self._tokens_read: dict[str, tuple[str, int]] = {}  # this batch's lookup: installation -> token
        self._snapshots = SnapshotWriter(store)

    def process(self, messages: list[Message], deadline: Deadline | None = None) -> list[Result]:
        """Every message's verdict; token waits and API retries end by `deadline` (the Lambda's).

        Finished work is written as it finishes: events that need no API call first, each order's
        events as soon as its answer is in. A query starts only while one whole GraphQL attempt
        plus the store reserve still fits; what does not goes back to the queue unstarted, so a
        batch that runs out of time never throws away what it finished.
        """
        self._deadline = deadline
        self._generations = {}
        self._tokens_read = {}
        work = [self._parse(message) for message in messages]
        workers = max(1, min(self._max_workers, len(work)))
        self._snapshots = SnapshotWriter(self._store, deadline, workers=workers)
        live = self._deduplicate_and_route(work)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self._acquire_tokens(live, pool)
            resources = self._resources_to_fetch(live)
            fetching = {id(item) for items in resources.values() for item in items}
            jobs = [self._resource_job(key, items) for key, items in resources.items()] + self._store_jobs(live)
            running = [pool.submit(job) for job in jobs]
            self._record_group([w for w in work if id(w) not in fetching])  # meanwhile, what needs no query
            for job in running:
                job.result()
        return [w.result or Result(w.message.message_id, Verdict.RETRY, reason=Reason.UNFINISHED.value) for w in work]

    # ------------------------------------------------------------------ steps
    def _parse(self, message: Message) -> _Work:
        work = _Work(message)
        try:
            event = parse_event(message.body)
        except MalformedEventError as error:
            work.malformed = Reason(error.reason)
            return work
        if problem := limits.problem(event):  # would fail every write: recorded, never retried
            logger.warning("event exceeds DynamoDB's limits; recorded as failed", extra={"problem": problem})
            work.malformed = Reason.SCHEMA_VIOLATION
            return work
        work.event = event
        work.hydration = hydrator_for(event)
        return work

    def _deduplicate_and_route(self, work: list[_Work]) -> list[_Work]:
        events = [w.event for w in work if w.event]
        now = self._clock()
        cached = {bp: installation for bp, (installation, until, _) in self._links.items() if until > now}
        products = {e.ids.business_product_id for e in events if e.ids.business_product_id}
        known = {e.installation_id for e in events if e.installation_id} | {cached[bp] for bp in products & set(cached)}
        lookup = self._store.lookup(
            [e.event_id for e in events] + [f"sqs:{w.message.message_id}" for w in work if not w.event],
            [key for e in events if (key := e.scoped_idempotency_key)],
            products - set(cached),
            known,
            known - self._known_stores,
        )
        for bp, installation_id in lookup.links.items():
            self._links[bp] = (installation_id, now + LINK_CACHE_SECONDS, lookup.link_sources.get(bp, ""))
        seen: set[str] = set()
        live: list[_Work] = []
        for item in work:
            if self._is_duplicate(item, lookup, seen):
                item.decide(Verdict.DUPLICATE)
                continue
            event = item.event
            item.previous_attention = lookup.attention_of.get(
                event.event_id if event else f"sqs:{item.message.message_id}"
            )
            if event is None:
                item.decide(Verdict.FAILED, item.malformed or Reason.SCHEMA_VIOLATION)
                continue
            bp = event.ids.business_product_id or ""
            linked, _, source = self._links.get(bp, ("", 0.0, "")) if bp else ("", 0.0, "")
            item.installation_id = event.installation_id or linked or None  # contextKeys are authoritative
            if event.installation_id and bp and linked != event.installation_id:
                item.link_candidate = (bp, linked, source)
            if item.installation_id:
                live.append(item)
            else:
                item.decide(Verdict.UNROUTABLE, Reason.NO_INSTALLATION)
        self._check_installations(live, lookup)
        return pending(live)

    def _check_installations(self, live: list[_Work], lookup: Lookup) -> None:
        """Stop events of installations that are gone, whatever this container still caches, and
        learn business-product links only where that cannot take a product from a live tenant."""
        candidates = [w.link_candidate for w in live if w.link_candidate]
        wanted = {w.installation_id for w in live if w.installation_id} | {
            linked for _, linked, _ in candidates if linked
        }
        statuses = dict(lookup.installation_status)
        self._learn(lookup)
        if missing := wanted - set(statuses):  # installations met through links read this batch
            more = self._store.lookup([], [], [], missing, missing - self._known_stores)
            statuses.update(more.installation_status)
            self._learn(more)
        for installation_id, (token, expires_at) in self._tokens_read.items():
            if statuses.get(installation_id) == "active":
                self._tokens.offer(installation_id, token, expires_at, self._generations.get(installation_id, 0))
        for item in live:
            status = statuses.get(item.installation_id or "")
            if status in (None, "", "uninstalled"):
                self._tokens.forget(item.installation_id or "")
                item.decide(Verdict.UNROUTABLE, Reason.INSTALLATION_NOT_FOUND)
                continue
            if status == "needs_reauthorization" and self._needs_query(item):
                item.decide(Verdict.NEEDS_REAUTHORIZATION, Reason.REFRESH_TOKEN_REJECTED)
            if item.link_candidate:
                self._learn_link(item, item.link_candidate, statuses)

    def _learn(self, lookup: Lookup) -> None:
        self._generations.update(lookup.installation_generation)
        self._known_stores |= lookup.stores_known
        self._tokens_read.update(lookup.installation_tokens)

    def _learn_link(self, item: _Work, candidate: tuple[str, str, str], statuses: dict[str, str]) -> None:
        """A link moves to the event's installation only when the product has no live owner: one
        mis-attributed or forged event must not re-point a live tenant's business product."""
        bp, linked, source = candidate
        owner_live = bool(linked) and statuses.get(linked) not in (None, "", "uninstalled")
        if owner_live or source == "operator":
            logger.warning(
                "event names another installation than its business product's link; link kept",
                extra={"business_product_id": bp, "linked": linked, "named": item.installation_id},
            )
            return
        item.learned_link = item.installation_id
        self._links[bp] = (item.installation_id or "", self._clock() + LINK_CACHE_SECONDS, "event")

    def _is_duplicate(self, item: _Work, lookup: Lookup, seen: set[str]) -> bool:
        event = item.event
        keys = [event.event_id] if event else [f"sqs:{item.message.message_id}"]
        scoped = event.scoped_idempotency_key if event else None
        if scoped:
            keys.append(f"key:{scoped}")
        duplicate = any(k in seen for k in keys) or keys[0] in lookup.processed_events
        if event and scoped and lookup.key_owner.get(scoped) not in (None, event.event_id):
            duplicate = True
        seen.update(keys)
        return duplicate

    def _acquire_tokens(self, live: list[_Work], pool: ThreadPoolExecutor) -> None:
        """One token per installation, asked for concurrently across installations."""
        from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError

        needing = [w for w in pending(live) if self._needs_api(w)]
        installations = sorted({w.installation_id for w in needing if w.installation_id})
        outcomes = dict(zip(installations, pool.map(self._token_or_error, installations), strict=True))
        for item in needing:
            token = outcomes[item.installation_id or ""]
            if isinstance(token, str):
                item.token = token
            elif not self._needs_query(item):
                continue  # only the store identity wanted the API: the event is stored as received
            elif isinstance(token, ReauthorizationRequiredError):
                item.decide(Verdict.NEEDS_REAUTHORIZATION, Reason.REFRESH_TOKEN_REJECTED)
            elif isinstance(token, InstallationNotFoundError):
                item.decide(Verdict.UNROUTABLE, Reason.INSTALLATION_NOT_FOUND)
            else:
                item.decide(Verdict.RETRY, Reason.TOKEN, type(token).__name__)
                report_failure(token)

    def _token_or_error(self, installation_id: str) -> str | Exception:
        try:
            return self._tokens.access_token(
                installation_id, deadline=self._deadline, generation=self._generations.get(installation_id)
            )
        except Exception as error:  # noqa: BLE001 - sorted into verdicts by the caller
            return error

    @staticmethod
    def _needs_query(item: _Work) -> bool:
        """Hydrated by what the event carries, whatever its type is called (an order ID, an item
        ID...), unless the event carries the object itself."""
        return bool(item.hydration and item.event and item.hydration[0].carried(item.event) is None)

    def _needs_api(self, item: _Work) -> bool:
        return self._needs_query(item) or item.installation_id not in self._known_stores

    def _resources_to_fetch(self, live: list[_Work]) -> dict[tuple[str, str, str], list[_Work]]:
        """One job per (installation, hydrator, resource): a query for the events that have their
        token, none for those that carry the object."""
        resources: dict[tuple[str, str, str], list[_Work]] = {}
        for item in pending(live):
            if item.hydration and item.installation_id and (item.token or not self._needs_query(item)):
                hydrator, resource_id = item.hydration
                resources.setdefault((item.installation_id, hydrator.name, resource_id), []).append(item)
        return resources

    def _store_jobs(self, live: list[_Work]) -> list[Callable[[], None]]:
        known = self._known_stores
        stores = {w.installation_id: w.token for w in live if w.token and w.installation_id not in known}
        return [
            self._store_job(installation, token) for installation, token in stores.items() if installation and token
        ]

    def _query_deadline(self) -> Deadline | None:
        """Queries end early enough to leave the store reserve for writing what they fetched."""
        return None if self._deadline is None else self._deadline.less(self._budget.store_reserve_seconds)

    def _fits_a_query(self) -> bool:
        budget, deadline = self._budget, self._deadline
        return deadline is None or deadline.fits(budget.graphql.attempt_seconds + budget.store_reserve_seconds)

    def _resource_job(self, key: tuple[str, str, str], items: list[_Work]) -> Callable[[], None]:
        ticket = self._snapshots.ticket()  # taken when queued (SnapshotWriter.ticket)

        def run() -> None:
            with ticket:
                self._hydrate(key[0], items)
                self._record_group(items, ticket)

        return run

    def _hydrate(self, installation_id: str, items: list[_Work]) -> None:
        """The snapshot of the resource `items` want: carried by the first event, or fetched."""
        assert items[0].hydration is not None and items[0].event is not None
        hydrator, resource_id = items[0].hydration
        first = items[0].event
        found = hydrator.carried(first)
        version = epoch_ms(first.time) or int(self._clock() * 1000)
        if found is None:
            if not self._fits_a_query():  # the batch's time is nearly up: back to the queue, unstarted
                _decide(items, Verdict.RETRY, Reason.OUT_OF_TIME)
                return
            started = time.perf_counter()
            outcome = self._query_resource(hydrator, installation_id, resource_id, items[0].token or "")
            elapsed = (time.perf_counter() - started) * 1000
            for item in items:
                item.hydration_ms = elapsed
            if isinstance(outcome, Decision):
                _decide(items, outcome.verdict, outcome.reason, outcome.detail)
                return
            found, version = outcome
        items[0].snapshot = self._snapshot(
            hydrator, installation_id, resource_id, found, event_id=first.event_id, version=version
        )
        for item in items:
            item.hydrated = True

    def _query_resource(
        self, hydrator: Hydrator, installation_id: str, resource_id: str, token: str
    ) -> tuple[dict[str, Any], int] | Decision:
        """One resource through its hydrator: (the object, its version), or how the query ended."""
        requested_at_ms = int(self._clock() * 1000)
        query, variables = hydrator.query(self._api_version), hydrator.variables(resource_id)
        outcome = self._fetch(token, installation_id, query, variables)
        if isinstance(outcome, Decision):
            return outcome
        found = hydrator.found(outcome)
        if found is None:
            return Decision(Verdict.FAILED, Reason.RESOURCE_NOT_FOUND)
        return found, hydrator.version(found, requested_at_ms)

    def _snapshot(
        self,
        hydrator: Hydrator,
        installation_id: str,
        resource_id: str,
        found: dict[str, Any],
        *,
        event_id: str,
        version: int,
    ) -> Snapshot:
        now_ms = int(self._clock() * 1000)
        expires_at = now_ms // 1000 + self._retention_seconds
        is_open = hydrator.is_open(found) if self._track_open_orders else None
        return Snapshot(
            hydrator.kind, installation_id, resource_id, found, now_ms, event_id, version, expires_at, is_open
        )

    def rehydrate(self, kind: str, installation_id: str, resource_id: str, deadline: Deadline) -> Snapshot | Decision:
        """Fetch one resource again, outside any event (the sweep: RehydrateOpenOrdersHours), through
        the same hydrator, token service, client (its circuit breaker and throttling retries) and
        store as an event's, and store it as a new snapshot version (with its open-order marker:
        refreshed, or removed once closed). The stored snapshot, or how it ended (RETRY: transient,
        OUT_OF_TIME: not started). Starts only while one GraphQL attempt plus the store reserve fit."""
        self._deadline, self._generations = deadline, {}
        token = self._rehydration_token(installation_id)
        if isinstance(token, Decision):
            return token
        hydrator = hydrator_of_kind(kind)
        outcome = self._query_resource(hydrator, installation_id, resource_id, token)
        if isinstance(outcome, Decision):
            return outcome
        found, version = outcome
        event_id = f"rehydrate:{int(self._clock() * 1000)}"
        snapshot = self._snapshot(hydrator, installation_id, resource_id, found, event_id=event_id, version=version)
        try:
            unwritten = self._store.put_snapshots([snapshot], attempts=UNPROCESSED_ATTEMPTS, deadline=deadline)
        except Exception as error:  # noqa: BLE001 - a throttled table: the marker stays old, tried next run
            report_failure(error)
            return Decision(Verdict.RETRY, Reason.STORE, type(error).__name__)
        return Decision(Verdict.RETRY, Reason.STORE, "unprocessed") if unwritten else snapshot

    def _rehydration_token(self, installation_id: str) -> str | Decision:
        """The installation's token while a query still fits, else how the re-hydration ends."""
        from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError

        if not self._fits_a_query():
            return Decision(Verdict.RETRY, Reason.OUT_OF_TIME)
        token = self._token_or_error(installation_id)
        if isinstance(token, ReauthorizationRequiredError):
            return Decision(Verdict.NEEDS_REAUTHORIZATION, Reason.REFRESH_TOKEN_REJECTED)
        if isinstance(token, InstallationNotFoundError):
            return Decision(Verdict.UNROUTABLE, Reason.INSTALLATION_NOT_FOUND)
        if isinstance(token, Exception):
            report_failure(token)
            return Decision(Verdict.RETRY, Reason.TOKEN, type(token).__name__)
        if not self._fits_a_query():  # the token took its time
            return Decision(Verdict.RETRY, Reason.OUT_OF_TIME)
        return token

    def _store_job(self, installation_id: str, token: str) -> Callable[[], None]:
        def run() -> None:
            """A side job: the batch's events never wait for it nor fail with it; an identity not
            stored now is fetched by a later batch."""
            try:
                if not self._fits_a_query():
                    return
                outcome = self._fetch(token, installation_id, STORE_IDENTITY.query(self._api_version), None)
                found = STORE_IDENTITY.found(outcome) if isinstance(outcome, dict) else None
                if found is not None:
                    self._store.put_store_identity(installation_id, found, int(self._clock() * 1000))
                    self._known_stores.add(installation_id)
            except Exception as error:  # noqa: BLE001 - e.g. a throttled table: a later batch tries again
                count("StoreIdentityNotStored")
                kind = type(error).__name__
                logger.warning("store identity not stored; a later batch tries again", extra={"error": kind})

        return run

    def _fetch(
        self, token: str, installation_id: str, query: str, variables: dict[str, Any] | None
    ) -> dict[str, Any] | Decision:
        """The data, or how the events waiting on it end (a retry for transient trouble). A refused
        token (revoked?) is forgotten, refreshed once and the query tried once more."""
        from shared.buy_with_prime import BuyWithPrimeError, GraphQLError
        from shared.errors import ReauthorizationRequiredError

        try:
            # A refused token is forgotten, refreshed once and the query tried once more. If the
            # replacement was not newly issued (another container's token, maybe revoked together
            # with the refused one) and is refused too, it is replaced once more: that refreshes.
            replacements = 0
            while True:
                try:
                    return self._api.graphql(token, installation_id, query, variables, deadline=self._query_deadline())
                except GraphQLError as error:
                    if not error.authentication_failed or replacements >= MAX_TOKEN_REPLACEMENTS:
                        raise
                    count("GraphQLTokenRefused")
                    logger.warning("access token refused by the API; replacing it", extra={"types": error.types})
                    token, refreshed = self._tokens.replacement(installation_id, token, deadline=self._deadline)
                    # a newly issued token that is refused too ends it; another container's may be replaced
                    replacements = MAX_TOKEN_REPLACEMENTS if refreshed else replacements + 1
        except ReauthorizationRequiredError:
            return Decision(Verdict.NEEDS_REAUTHORIZATION, Reason.REFRESH_TOKEN_REJECTED)
        except GraphQLError as error:
            kind = error.types[0] if error.types else "UnknownError"
            reason = GRAPHQL_REASONS.get(kind)
            return Decision(Verdict.FAILED, reason or Reason.GRAPHQL_ERROR, None if reason else kind)
        except Exception as error:  # noqa: BLE001 - network and unknown trouble: let SQS try again
            permanent = isinstance(error, BuyWithPrimeError) and not error.transient
            return Decision(Verdict.FAILED, Reason.UNEXPECTED_ANSWER) if permanent else RETRY_GRAPHQL

    def _record_group(self, items: list[_Work], ticket: Ticket | None = None) -> None:
        """Processed events: their resource's snapshot first (through `ticket`, with the batch's
        other ready snapshots), then each record; every other verdict on its own conditional path."""
        processed = [item for item in items if (item.decision or PROCESSED).verdict is Verdict.PROCESSED]
        for item in items:
            if item not in processed:
                self._record(item)
        if not processed:
            return
        snapshot = next((item.snapshot for item in processed if item.snapshot), None)
        entries = [
            Processed(self._event_record(item, PROCESSED), item.learned_link, item.previous_attention)
            for item in processed
        ]
        try:
            if snapshot is not None:
                (ticket or self._snapshots.ticket()).write(snapshot)
            written = self._store.record_processed(entries)
        except Exception as error:  # noqa: BLE001 - throttled or unavailable table: SQS tries again
            if _error_code(error) == "ValidationException":  # one write DynamoDB refuses: find it, alone
                for item in processed:
                    self._record(item)
                return
            report_failure(error)
            for item in processed:
                item.finish(Decision(Verdict.RETRY, Reason.STORE, type(error).__name__))
            return
        for item, recorded in zip(processed, written, strict=True):
            item.finish(PROCESSED if recorded else Decision(Verdict.DUPLICATE))

    def _record(self, item: _Work) -> None:
        """Write the message's record as decided (processed when nothing intervened); a duplicate
        or a retry writes nothing."""
        decision = item.decision or PROCESSED
        if decision.verdict in (Verdict.DUPLICATE, Verdict.RETRY):
            item.finish(decision)
            return
        try:
            recorded = self._write(item, decision)
        except Exception as error:  # noqa: BLE001 - throttled or unavailable table: SQS tries again
            if _error_code(error) != "ValidationException" or item.event is None:
                report_failure(error)
                item.finish(Decision(Verdict.RETRY, Reason.STORE, type(error).__name__))
                return
            # a limit limits.problem does not know: keep the message as failed, never retry it
            logger.warning("event record refused by DynamoDB; recording it as failed")
            item.event, item.snapshot, item.learned_link, item.hydrated = None, None, None, False
            decision = Decision(Verdict.FAILED, Reason.SCHEMA_VIOLATION)
            try:
                recorded = self._write(item, decision)
            except Exception as again:  # noqa: BLE001
                report_failure(again)
                item.finish(Decision(Verdict.RETRY, Reason.STORE, type(again).__name__))
                return
        item.finish(decision if recorded else Decision(Verdict.DUPLICATE))

    def _write(self, item: _Work, decision: Decision) -> bool:
        processed = decision.verdict is Verdict.PROCESSED
        return self._store.record(
            self._event_record(item, decision),
            snapshot=item.snapshot if processed else None,
            learned_link=item.learned_link,
            previous_attention=item.previous_attention,
        )

    def _event_record(self, item: _Work, decision: Decision) -> EventRecord:
        event = item.event
        now = int(self._clock())
        processed = decision.verdict is Verdict.PROCESSED
        keep_raw = not processed or not item.hydrated
        return EventRecord(
            event_id=event.event_id if event else f"sqs:{item.message.message_id}",
            outcome=decision.verdict,
            message_id=item.message.message_id,
            processed_at=now,
            expires_at=now + self._retention_seconds,
            event_type=event.event_type if event else None,
            received_type=event.received_type if event else None,
            event_format=event.format if event else None,
            event_time=event.time if event else None,
            installation_id=item.installation_id,
            business_product_id=event.ids.business_product_id if event else None,
            resource_paths=event.resource_paths if event else (),
            idempotency_key=event.scoped_idempotency_key if event and processed else None,
            reason=decision.text,
            raw=limits.bounded(item.message.body) if keep_raw else None,
        )


# GraphQL error types with a reason of their own (others: GRAPHQL_ERROR with the type as detail)
GRAPHQL_REASONS = {
    "AccessDeniedError": Reason.ACCESS_DENIED,
    "ResourceNotFoundError": Reason.RESOURCE_NOT_FOUND,
    "ValidationError": Reason.VALIDATION_ERROR,
}


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or "")


def _decide(items: Iterable[_Work], verdict: Verdict, reason: Reason | None, detail: str | None = None) -> None:
    for item in items:
        item.decide(verdict, reason, detail)
