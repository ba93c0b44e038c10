"""DynamoDB throttling, server errors, lost answers and transaction cancellations, in every place the
code writes: the token service (lease, refreshed pair, re-authorisation mark), the OAuth state
store (launch, consume), the installation store and the event store (lookup, record).

Faults are injected on the HTTP layer of the functions' own DynamoDB client (tests/reliability/
wire_faults.py), against a moto server: botocore's retry policy runs for real. What the code
relies on: the client is built with botocore's defaults (`boto3.client("dynamodb")`, no Config),
which with the pinned botocore (1.44) is the "standard" retry mode with DynamoDB's 4 attempts in
all (3 for other services; older botocore defaulted to "legacy", 10 attempts for DynamoDB; the
Lambda runtime's bundled boto3 decides in AWS, since the artifact does not pin it): throttling
errors (ProvisionedThroughputExceeded, Throttling, RequestLimitExceeded, TransactionInProgress)
and HTTP 500/502/503/504 retried with jittered exponential backoff (1 s base for throttling, 25 ms
otherwise); TransactionCanceled, ConditionalCheckFailed and validation errors never retried.
The code adds its own loop only around BatchGetItem's UnprocessedKeys (8 rounds) and writes a
record again without its snapshot when only the snapshot's condition failed. Everything else
surfaces: a RETRY verdict (the message goes back to SQS) or a clear page, never a silent success.

botocore's and the event store's waits are recorded instead of slept (their `time` is replaced by a
recorder in the modules that sleep), so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.exceptions import ClientError

from devtools.apigw import LambdaContext
from devtools.sqs import sqs_record
from devtools.template import table_create_arguments
from events import handler as events_handler
from events.dependencies import Dependencies as EventsDependencies
from events.pipeline import Message, Verdict
from events.snapshots import UNPROCESSED_ATTEMPTS
from oauth.dependencies import Dependencies as OAuthDependencies
from sandbox.events import partner_event, resource_path
from sandbox.server import BuyWithPrimeSandbox
from shared.budget import DEFAULT_BUDGET, TimeBudget
from shared.errors import ReauthorizationRequiredError, TokenRefreshBusyError
from shared.models import TokenSet
from shared.store.event_records import EventStore
from shared.store.installations import InstallationStore
from shared.tokens import TokenCache, TokenService
from tests.app_driver import AppDriver
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.events_driver import find_event_record
from tests.reliability.wire_faults import WireFaults

INSTALLATION = "amzn1.bwp.installation.ddb-faults"
BUSINESS_PRODUCT = "amzn1.bwp.bp.ddb-faults"
THROTTLES = ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
SERVER_ERRORS = ["InternalServerError", "ServiceUnavailable"]
ATTEMPTS = 4  # botocore's standard mode for DynamoDB: every "exhausted" fault below is this many


class SleepRecorder:
    """Stands in for the `time` module of a module that sleeps: records, does not wait."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@dataclass
class World:
    environ: dict[str, str]
    sandbox: BuyWithPrimeSandbox
    table: str
    dynamodb: Any  # a plain client, for setting up and reading back
    botocore_sleeps: SleepRecorder
    store_sleeps: SleepRecorder

    def events(self) -> tuple[EventsDependencies, WireFaults]:
        deps = EventsDependencies(self.environ)
        return deps, WireFaults(deps.dynamodb)

    def oauth(self) -> tuple[OAuthDependencies, WireFaults, AppDriver]:
        deps = OAuthDependencies(self.environ)
        return deps, WireFaults(deps.dynamodb), AppDriver(deps, self.sandbox, self.dynamodb, self.table)

    def install(self, *, expired: bool = False) -> None:
        tokens = TokenSet.model_validate(self.sandbox.issue_tokens(INSTALLATION))
        InstallationStore(self.dynamodb, self.table).save_installation(INSTALLATION, tokens, int(time.time()))
        EventStore(self.dynamodb, self.table).put_link(BUSINESS_PRODUCT, INSTALLATION, "operator")
        if expired:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
                UpdateExpression="SET access_token_expires_at = :e",
                ExpressionAttributeValues={":e": {"N": "1"}},
            )

    def installation(self) -> dict[str, Any]:
        item = InstallationStore(self.dynamodb, self.table).get(INSTALLATION)
        assert item is not None
        return {"status": item.status.value, "refresh_token": item.refresh_token, "lease_owner": item.lease_owner}

    def event(self, event_id: str) -> dict[str, Any] | None:
        return find_event_record(self.dynamodb, self.table, event_id)

    def snapshot(self, order_id: str) -> dict[str, Any] | None:
        return EventStore(self.dynamodb, self.table).order_snapshot(INSTALLATION, order_id)


@pytest.fixture
def world(moto_server: str, sandbox: BuyWithPrimeSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)  # the functions' boto3 clients go to moto
    botocore_sleeps, store_sleeps = SleepRecorder(), SleepRecorder()
    monkeypatch.setattr(botocore.endpoint, "time", botocore_sleeps)
    monkeypatch.setattr("shared.store.event_records.time", store_sleeps)
    table = f"faults-{uuid.uuid4().hex[:8]}"
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_create_arguments(name=table))
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"credentials-{table}", SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    )
    environ = {
        "TABLE_NAME": table,
        "CLIENT_CREDENTIALS_SECRET_ARN": secret["ARN"],
        "BWP_AUTHORIZE_URL": sandbox.authorize_url,
        "BWP_TOKEN_URL": sandbox.token_url,
        "BWP_GRAPHQL_URL": sandbox.graphql_url,
        "BWP_VERIFICATION_PUBLIC_KEY": sandbox.signer.public_key_pem,
        "OAUTH_STATE_TTL_SECONDS": "600",
    }
    yield World(environ, sandbox, table, dynamodb, botocore_sleeps, store_sleeps)
    dynamodb.delete_table(TableName=table)


def order_event(order_id: str, **kw: Any) -> str:
    return json.dumps(partner_event("ORDER_CONFIRMED", [resource_path(BUSINESS_PRODUCT, order_id=order_id)], **kw))


def process(deps: EventsDependencies, *bodies: str) -> list[Any]:
    return deps.pipeline.process([Message(f"m-{uuid.uuid4().hex[:8]}", body) for body in bodies])


def event_id(body: str) -> str:
    detail = json.loads(body)["detail"]
    return str(detail.get("eventId") or json.loads(body)["id"])


# A lease taken with the default deadline is stale after this long (shared/budget.py).
STALE = DEFAULT_BUDGET.longest_lease_seconds + 5


def short_token_service(deps: Any, now: list[float], wait_seconds: float = 1.0) -> TokenService:
    """The production token service on a clock the test moves (its waits move the clock)."""

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return TokenService(
        deps.installations,
        deps.buy_with_prime,
        deps.credentials,
        TokenCache(),
        budget=TimeBudget(max_wait_seconds=wait_seconds, poll_seconds=0.1),
        clock=lambda: now[0],
        sleep=sleep,
    )


# ============================================================ what the code relies on: botocore's retries
def test_the_functions_client_states_standard_retries_with_four_attempts(world: World) -> None:
    deps, _ = world.events()
    assert deps.dynamodb.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}


@pytest.mark.parametrize("code", THROTTLES + SERVER_ERRORS + ["TransactionInProgressException"])
def test_throttling_and_server_errors_are_retried_four_attempts_in_all(world: World, code: str) -> None:
    deps, faults = world.events()
    world.install()
    faults.fail("GetItem", code, times=ATTEMPTS - 1)
    assert deps.installations.get(INSTALLATION) is not None  # the last attempt answered
    assert faults.attempts["GetItem"] == ATTEMPTS and len(world.botocore_sleeps.sleeps) == ATTEMPTS - 1
    faults.fail("GetItem", code, times=ATTEMPTS + 5)
    with pytest.raises(ClientError) as raised:
        deps.installations.get(INSTALLATION)
    assert raised.value.response["Error"]["Code"] == code
    assert faults.attempts["GetItem"] == 2 * ATTEMPTS


@pytest.mark.parametrize(
    "code", ["TransactionCanceledException", "ConditionalCheckFailedException", "ValidationException"]
)
def test_cancellations_condition_failures_and_validation_errors_are_never_retried(world: World, code: str) -> None:
    deps, faults = world.events()
    world.install()
    faults.fail("GetItem", code)
    with pytest.raises(ClientError):
        deps.installations.get(INSTALLATION)
    assert faults.attempts["GetItem"] == 1


# ============================================================ token service
def test_a_throttled_lease_is_retried_by_botocore_and_the_refresh_happens_once(world: World) -> None:
    deps, faults = world.events()
    world.install(expired=True)
    old_refresh = world.installation()["refresh_token"]
    faults.fail("UpdateItem", "ProvisionedThroughputExceededException", times=2)
    assert deps.tokens.access_token(INSTALLATION)
    assert faults.attempts["UpdateItem"] == 2 + 1 + 1  # lease: 2 throttled + 1; the new pair: 1
    assert world.sandbox.calls["token:refresh_token"] == 1
    stored = world.installation()
    assert stored["refresh_token"] != old_refresh and stored["lease_owner"] is None


def test_a_lease_throttled_through_every_attempt_is_reported_and_nothing_is_redeemed(world: World) -> None:
    deps, faults = world.events()
    world.install(expired=True)
    faults.fail("UpdateItem", "ThrottlingException", times=ATTEMPTS)
    with pytest.raises(ClientError, match="ThrottlingException"):
        deps.tokens.access_token(INSTALLATION)
    assert world.sandbox.calls["token:refresh_token"] == 0  # the refresh token was not spent
    assert world.installation()["lease_owner"] is None
    assert deps.tokens.access_token(INSTALLATION)  # the next call just works


def test_through_the_pipeline_a_throttled_lease_is_a_retry_verdict_and_the_handler_sends_it_back(
    world: World,
) -> None:
    deps, faults = world.events()
    world.install(expired=True)
    body = order_event("322-LEASE-0001")
    faults.fail("UpdateItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    (result,) = process(deps, body)
    assert result.verdict is Verdict.RETRY and result.reason == "token: ProvisionedThroughputExceededException"
    assert world.event(event_id(body)) is None
    faults.fail("UpdateItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    record = sqs_record(body)
    answer = events_handler.handle({"Records": [record]}, LambdaContext("EventsFunction"), deps)
    assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    (again,) = process(deps, body)  # the redelivery
    assert again.verdict is Verdict.PROCESSED and world.snapshot("322-LEASE-0001") is not None


def test_a_lease_whose_answer_is_lost_is_reported_busy_and_recovers_once_the_lease_is_stale(world: World) -> None:
    """The lease write is applied, its answer lost; botocore's retry then fails the condition (the
    lease is now held... by this very caller, under an owner it forgot). Safe: no refresh token is
    redeemed, the caller gets TokenRefreshBusyError (a RETRY verdict); live: after the 30 s lease
    it refreshes normally. Until then every event of this installation is retried."""
    deps, faults = world.events()
    world.install(expired=True)
    now = [time.time()]
    service = short_token_service(deps, now)
    faults.fail("UpdateItem", "InternalServerError", applied=True)
    with pytest.raises(TokenRefreshBusyError):
        service.access_token(INSTALLATION)
    assert world.sandbox.calls["token:refresh_token"] == 0
    assert world.installation()["lease_owner"] is not None  # orphaned until it is stale
    now[0] += STALE
    assert service.access_token(INSTALLATION)
    assert world.sandbox.calls["token:refresh_token"] == 1


def test_a_refreshed_pair_whose_store_answer_is_lost_is_found_on_the_re_read(world: World) -> None:
    """The conditional write of the new pair is applied, its answer lost; botocore's retry fails the
    condition (refresh_token is no longer the old one); the service re-reads and finds its pair."""
    deps, faults = world.events()
    world.install(expired=True)
    faults.fail("UpdateItem", "InternalServerError", applied=True, after=1)  # the lease passes
    token = deps.tokens.access_token(INSTALLATION)
    assert world.sandbox.calls["token:refresh_token"] == 1
    assert faults.attempts["UpdateItem"] == 3 and faults.served["UpdateItem"] == 1
    stored = InstallationStore(world.dynamodb, world.table).get(INSTALLATION)
    assert stored is not None and stored.access_token == token and stored.lease_owner is None


def _store_of_the_new_pair_fails(deps: Any, faults: WireFaults, now: list[float]) -> TokenService:
    """Lease taken, refresh token redeemed at Buy with Prime, then every conditional write of the
    new pair throttled: botocore's whole budget (4 attempts) on each of the service's store calls."""
    service = short_token_service(deps, now)
    faults.fail("UpdateItem", "ProvisionedThroughputExceededException", times=10_000, after=1)
    assert service.access_token(INSTALLATION)  # the redeemed pair's access token is valid: served
    faults._faults.clear()  # the table answers again
    return service


def test_a_store_throttled_through_botocores_budget_is_retried_by_the_token_service(world: World) -> None:
    deps, faults = world.events()
    world.install(expired=True)
    before = world.installation()
    service = short_token_service(deps, [time.time()])
    faults.fail("UpdateItem", "ProvisionedThroughputExceededException", times=ATTEMPTS, after=1)
    token = service.access_token(INSTALLATION)
    assert faults.served["UpdateItem"] == ATTEMPTS  # botocore gave up once; the service tried again
    after = world.installation()
    stored = InstallationStore(world.dynamodb, world.table).get(INSTALLATION)
    assert world.sandbox.calls["token:refresh_token"] == 1
    assert stored is not None and stored.access_token == token and after["refresh_token"] != before["refresh_token"]
    assert after["lease_owner"] is None and after["status"] == "active"


def test_a_new_pair_that_could_not_be_stored_does_not_cost_the_installation(world: World) -> None:
    deps, faults = world.events()
    world.install(expired=True)
    now = [time.time()]
    service = _store_of_the_new_pair_fails(deps, faults, now)
    assert world.installation()["lease_owner"] is not None  # the pair is parked, the lease held
    now[0] += STALE  # the lease is stale; the table answers again
    assert service.access_token(INSTALLATION)
    assert world.installation()["status"] == "active"
    assert world.sandbox.calls["token:refresh_token"] == 1  # the parked pair was stored, not redeemed again


def test_a_throttled_reauthorisation_mark_is_reported_and_marked_on_the_next_try(world: World) -> None:
    deps, faults = world.events()
    world.install(expired=True)
    world.sandbox.revoke_refresh_tokens(INSTALLATION)
    now = [time.time()]
    service = short_token_service(deps, now)
    faults.fail("UpdateItem", "ThrottlingException", times=ATTEMPTS, after=1)  # the lease passes, the mark not
    with pytest.raises(ClientError, match="ThrottlingException"):
        service.access_token(INSTALLATION)
    assert world.installation()["status"] == "active"  # not marked yet: the next try must do it
    now[0] += STALE
    with pytest.raises(ReauthorizationRequiredError):
        service.access_token(INSTALLATION)
    assert world.installation()["status"] == "needs_reauthorization"


# ============================================================ OAuth state store and installation store
def test_a_throttled_launch_write_is_retried(world: World) -> None:
    _, faults, app = world.oauth()
    faults.fail("PutItem", "ProvisionedThroughputExceededException", times=2)
    assert app.launch().response.status == 302
    assert faults.attempts["PutItem"] == 3


def test_a_launch_write_throttled_through_every_attempt_is_a_clear_error_page_and_stores_nothing(world: World) -> None:
    _, faults, app = world.oauth()
    faults.fail("PutItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    response = app.call("GET", f"{app.origin}/launch")
    assert response.status == 500
    assert "Something went wrong on our side. Please try again later." in response.body
    assert "Traceback" not in response.body and "Throughput" not in response.body
    assert app.items() == []
    assert app.launch().response.status == 302  # trying again works


def test_a_throttled_consume_of_the_state_is_an_error_page_and_the_same_link_then_works(world: World) -> None:
    _, faults, app = world.oauth()
    launched = app.launch()
    url = app.approve(launched, INSTALLATION)
    faults.fail("DeleteItem", "ThrottlingException", times=ATTEMPTS)
    failed = app.call("GET", url, cookies=[launched.cookie])
    assert failed.status == 500 and "try again later" in failed.body
    assert world.sandbox.calls["token:authorization_code"] == 0  # the code was not spent
    assert app.installation_item(INSTALLATION) is None
    again = app.call("GET", url, cookies=[launched.cookie])  # the merchant reloads the page
    assert again.status == 200 and "App installed" in again.body


def test_a_consume_whose_answer_is_lost_refuses_the_link_and_a_new_launch_works(world: World) -> None:
    """The conditional delete is applied, its answer lost; botocore's retry finds no state: the
    merchant is told the link was used and is offered to start again; nothing half-done remains."""
    _, faults, app = world.oauth()
    launched = app.launch()
    url = app.approve(launched, INSTALLATION)
    faults.fail("DeleteItem", "InternalServerError", applied=True)
    refused = app.call("GET", url, cookies=[launched.cookie])
    assert refused.status == 400 and "already used" in refused.body and 'href="/launch"' in refused.body
    assert world.sandbox.calls["token:authorization_code"] == 0
    assert app.installation_item(INSTALLATION) is None
    assert app.install(INSTALLATION).status == 200


def test_an_installation_that_cannot_be_stored_is_an_error_page_and_starting_again_works(world: World) -> None:
    _, faults, app = world.oauth()
    launched = app.launch()
    url = app.approve(launched, INSTALLATION)
    faults.fail("PutItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    failed = app.call("GET", url, cookies=[launched.cookie])
    assert failed.status == 500 and "try again later" in failed.body
    assert app.installation_item(INSTALLATION) is None
    reloaded = app.call("GET", url, cookies=[launched.cookie])  # the state was consumed
    assert reloaded.status == 400 and 'href="/launch"' in reloaded.body
    assert app.install(INSTALLATION).status == 200


# ============================================================ event store: lookup
def test_unprocessed_keys_are_fetched_again_and_duplicates_still_found(world: World) -> None:
    deps, faults = world.events()
    world.install()
    first = order_event("322-LOOKUP-0001")
    assert [r.verdict for r in process(deps, first)] == [Verdict.PROCESSED]
    faults.attempts.clear()
    faults.unprocessed(2)
    second, third = order_event("322-LOOKUP-0002"), order_event("322-LOOKUP-0003")
    results = process(deps, first, second, third)
    assert [r.verdict for r in results] == [Verdict.DUPLICATE, Verdict.PROCESSED, Verdict.PROCESSED]
    assert faults.attempts["BatchGetItem"] == 3
    assert world.store_sleeps.sleeps == [0.05, 0.1]  # the store's own backoff


def test_keys_left_unprocessed_every_time_send_the_whole_batch_back(world: World) -> None:
    deps, faults = world.events()
    world.install()
    faults.unprocessed(100)
    bodies = [order_event(f"322-LOOKUP-{n:04d}") for n in range(3)]
    records = [sqs_record(body) for body in bodies]
    answer = events_handler.handle({"Records": records}, LambdaContext("EventsFunction"), deps)
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(r["messageId"] for r in records)
    assert faults.attempts["BatchGetItem"] == 8
    assert world.store_sleeps.sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert all(world.event(event_id(body)) is None for body in bodies)


def test_a_lookup_throttled_through_every_attempt_sends_the_whole_batch_back(world: World) -> None:
    deps, faults = world.events()
    world.install()
    faults.fail("BatchGetItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    bodies = [order_event("322-LOOKUP-0009"), order_event("322-LOOKUP-0010")]
    records = [sqs_record(body) for body in bodies]
    answer = events_handler.handle({"Records": records}, LambdaContext("EventsFunction"), deps)
    assert len(answer["batchItemFailures"]) == 2 and faults.attempts["BatchGetItem"] == ATTEMPTS
    assert all(world.event(event_id(body)) is None for body in bodies)


# ============================================================ event store: record
def test_a_snapshot_write_throttled_through_every_attempt_records_nothing_and_is_retried(world: World) -> None:
    """The snapshot is written before its event counts as processed: when it cannot be stored, no
    event record is written, so the retry hydrates again instead of ending as a duplicate."""
    deps, faults = world.events()
    world.install()
    body = order_event("322-RECORD-0001")
    faults.fail("BatchWriteItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    (result,) = process(deps, body)
    assert result.verdict is Verdict.RETRY and result.reason == "store: ProvisionedThroughputExceededException"
    assert world.event(event_id(body)) is None and world.snapshot("322-RECORD-0001") is None
    (again,) = process(deps, body)  # SQS delivers it again: it goes through
    assert again.verdict is Verdict.PROCESSED and world.snapshot("322-RECORD-0001") is not None


def test_a_snapshot_write_whose_answer_is_lost_is_written_once_and_counted_processed(world: World) -> None:
    """Applied, answer lost, retried by botocore: a snapshot version is immutable, so the retry
    changes nothing and succeeds."""
    deps, faults = world.events()
    world.install()
    body = order_event("322-RECORD-0003")
    faults.fail("BatchWriteItem", "InternalServerError", applied=True)
    (result,) = process(deps, body)
    assert result.verdict is Verdict.PROCESSED and faults.attempts["BatchWriteItem"] == 2
    record = world.event(event_id(body))
    assert record is not None and record["outcome"] == "processed"
    assert world.snapshot("322-RECORD-0003") is not None


def test_snapshots_left_unprocessed_are_sent_again_and_their_events_then_count(world: World) -> None:
    deps, faults = world.events()
    world.install()
    bodies = [order_event(f"322-UNWRITTEN-{i:04d}") for i in range(3)]
    faults.unwritten(2)
    results = process(deps, *bodies)
    assert [r.verdict for r in results] == [Verdict.PROCESSED] * 3
    assert faults.attempts["BatchWriteItem"] == 3  # the three snapshots together, twice left unprocessed
    assert all(world.snapshot(f"322-UNWRITTEN-{i:04d}") is not None for i in range(3))


def test_snapshots_dynamodb_keeps_leaving_unprocessed_send_their_events_back_unrecorded(world: World) -> None:
    """Bounded: UNPROCESSED_ATTEMPTS calls, then the events go back to SQS with nothing recorded
    (a record without its snapshot would make the retry a duplicate)."""
    deps, faults = world.events()
    world.install()
    body = order_event("322-UNWRITTEN-0100")
    faults.unwritten(100)
    (result,) = process(deps, body)
    assert result.verdict is Verdict.RETRY and result.reason == "store: UnwrittenSnapshotError"
    assert faults.attempts["BatchWriteItem"] == UNPROCESSED_ATTEMPTS
    assert world.event(event_id(body)) is None and world.snapshot("322-UNWRITTEN-0100") is None


def test_an_attention_record_refused_by_its_condition_is_a_duplicate(world: World) -> None:
    """Attention outcomes keep their conditional transaction: they never overwrite a processed record."""
    deps, faults = world.events()
    body = order_event("322-RECORD-0005")  # no installation: unroutable
    faults.fail("TransactWriteItems", "TransactionCanceledException", reasons=["ConditionalCheckFailed", "None"])
    (result,) = process(deps, body)
    assert result.verdict is Verdict.DUPLICATE and world.event(event_id(body)) is None


def test_a_throttled_store_identity_check_never_holds_the_batch_back(world: World) -> None:
    """The store identity is a side job of hydration: its failure is counted and a later batch
    fetches it; the batch's events are processed and written as they finish, never sent back."""
    deps, faults = world.events()
    world.install()
    assert deps.tokens.access_token(INSTALLATION)  # cached: the next GetItem is the store check
    faults.fail("GetItem", "ProvisionedThroughputExceededException", times=ATTEMPTS)
    bodies = [order_event("322-STORE-0001"), order_event("322-STORE-0002")]
    records = [sqs_record(body) for body in bodies]
    answer = events_handler.handle({"Records": records}, LambdaContext("EventsFunction"), deps)
    assert answer["batchItemFailures"] == []
    assert all(world.event(event_id(body)) is not None for body in bodies)
    later = [order_event("322-STORE-0003")]
    assert [r.verdict for r in process(deps, *later)] == [Verdict.PROCESSED]
    store_key = {"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "STORE"}}
    assert "Item" in world.dynamodb.get_item(TableName=world.table, Key=store_key)  # the later batch stored it
