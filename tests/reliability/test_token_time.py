"""The token store under time (issue 8): slow and failing token endpoints, a lease held by another
container, DynamoDB throttling right after a redeem, revoked tokens and re-installs.

Each `_container()` is one Lambda container: its own DynamoDB client, HTTP session, in-memory cache
and token service, sharing only the table (a moto server, serialised like DynamoDB's per-request atomicity)
and the sandbox. Budgets are the production ones scaled down (same code, same formulas), and every
test ends by asserting that no refresh token was ever presented twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from devtools.atomic_dynamodb import AtomicDynamoDB
from devtools.template import load_template, table_create_arguments
from sandbox.server import BuyWithPrimeSandbox
from shared.budget import DEFAULT_BUDGET, Deadline, HttpBudget, TimeBudget
from shared.buy_with_prime import BuyWithPrimeClient, OutOfTimeError
from shared.errors import TokenRefreshBusyError
from shared.models import ClientCredentials, TokenSet
from shared.store.installations import InstallationStore
from shared.store.keys import rescued_tokens_key
from shared.tokens import TokenCache, TokenService
from tests.conftest import CLIENT_ID, CLIENT_SECRET, TABLE_NAME
from tests.reliability.wire_faults import WireFaults

INSTALLATION = "amzn1.bwp.installation.time"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)  # type: ignore[arg-type]
# Production's shape at a tenth of the time: 1.3 s per token attempt, 4 attempts.
SCALED = TimeBudget(
    token=HttpBudget(connect_timeout=0.3, read_timeout=1.0, attempts=4, backoff_base=0.01, backoff_cap=0.05),
    graphql=HttpBudget(connect_timeout=0.3, read_timeout=1.0, attempts=4, backoff_base=0.01, backoff_cap=0.05),
    store_reserve_seconds=0.6,
    clock_skew_seconds=0.2,
    max_wait_seconds=8.0,
    poll_seconds=0.05,
)


class StaticCredentials:
    def get(self) -> ClientCredentials:
        return CREDENTIALS


class Container:
    """One Lambda container's token service; `client` is its own DynamoDB client."""

    def __init__(self, sandbox: BuyWithPrimeSandbox, budget: TimeBudget, clock: Callable[[], float]) -> None:
        self.raw_client = boto3.client("dynamodb")
        self.dynamodb = AtomicDynamoDB(self.raw_client)
        self.store = InstallationStore(self.dynamodb, TABLE_NAME)
        client = BuyWithPrimeClient(
            sandbox.token_url,
            sandbox.graphql_url,
            session=requests.Session(),
            token_budget=budget.token,
            graphql_budget=budget.graphql,
        )
        self.tokens = TokenService(self.store, client, StaticCredentials(), TokenCache(), budget=budget, clock=clock)

    def writes(self) -> int:
        return sum(call in {"update_item", "put_item"} for call in self.dynamodb.calls)


@pytest.fixture
def dynamodb(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The table on the shared moto server (fresh for each test): faults injected at the HTTP layer
    of one container's client never reach the table, as in DynamoDB (in-process moto would still
    apply the request it was told failed)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    client = boto3.client("dynamodb")
    client.create_table(**table_create_arguments(name=TABLE_NAME))
    return client


@pytest.fixture
def container(sandbox: BuyWithPrimeSandbox, dynamodb: Any) -> Iterator[Callable[..., Container]]:
    def make(budget: TimeBudget = SCALED, clock: Callable[[], float] = time.time) -> Container:
        return Container(sandbox, budget, clock)

    yield make
    assert sandbox.replayed_refresh_tokens == 0, "a refresh token was presented after it had been redeemed"


def _install(sandbox: BuyWithPrimeSandbox, dynamodb: Any, *, valid_for: int) -> TokenSet:
    pair = sandbox.issue_tokens(INSTALLATION)
    tokens = TokenSet(access_token=pair["access_token"], refresh_token=pair["refresh_token"], expires_in=900)  # type: ignore[arg-type]
    store = InstallationStore(dynamodb, TABLE_NAME)
    store.save_installation(INSTALLATION, tokens, int(time.time()))
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET access_token_expires_at = :e",
        ExpressionAttributeValues={":e": {"N": str(int(time.time()) + valid_for)}},
    )
    return tokens


def _in_thread(work: Callable[[], str]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except Exception as error:  # noqa: BLE001 - asserted by the caller
            out.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_the_budget_holds_for_the_production_constants() -> None:
    """The lease outlives anything its holder can spend, for any remaining time; refresh ahead
    covers one dead holder's lease; the OAuth function's Timeout fits one whole token attempt
    plus the store reserve and the margin (read from template.yaml)."""
    budget = DEFAULT_BUDGET
    for remaining in (0.5, 5, 14, 28, 59, 600):
        deadline = Deadline.after(remaining)
        lease = budget.lease_seconds(deadline)
        spend = min(remaining, budget.worst_case_refresh_seconds)  # at most what the holder can spend
        assert lease > spend + budget.clock_skew_seconds
    assert budget.refresh_ahead_seconds > budget.longest_lease_seconds + budget.min_validity_seconds
    resources = load_template()["Resources"]
    oauth_timeout = resources["OAuthFunction"]["Properties"]["Timeout"]
    needed = budget.token.attempt_seconds + budget.store_reserve_seconds + budget.lambda_margin_seconds
    assert oauth_timeout >= needed, f"OAuthFunction Timeout {oauth_timeout} s < {needed} s for one refresh"
    assert oauth_timeout < 30, "API Gateway HTTP API integrations end at 30 s"


def test_case_1_a_slow_failing_endpoint_never_lets_a_second_container_present_the_token(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    """Slow answers (0.8 s; production 8 s) and three 503s: A's refresh runs ~3.3 s, far past the old
    fixed lease's share of it. B asks meanwhile and waits by reading (no conditional writes); both
    end with A's pair, the installation active."""
    _install(sandbox, dynamodb, valid_for=1)  # expired: nobody can serve the stored token
    sandbox.latency("token", 0.8)
    sandbox.fail_next("token", 503, times=3)
    a, b = container(), container()
    thread_a, out_a = _in_thread(lambda: a.tokens.access_token(INSTALLATION, deadline=Deadline.after(20)))
    time.sleep(0.5)  # A holds the lease now
    writes_before = b.writes()
    token_b = b.tokens.access_token(INSTALLATION, deadline=Deadline.after(20))
    thread_a.join(30)
    assert out_a == [token_b]
    assert b.writes() == writes_before  # B only read
    assert sandbox.calls["token:refresh_token"] == 4  # three 503s and one success, all from A
    stored = a.store.get(INSTALLATION)
    assert stored is not None and stored.status == "active" and stored.access_token == token_b
    assert stored.lease_owner is None


def test_stale_while_revalidate_serves_the_stored_token_while_another_container_refreshes(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    old = _install(sandbox, dynamodb, valid_for=100)  # due (inside refresh-ahead) but still valid
    sandbox.latency("token", 0.6)  # well inside the 1 s read timeout, even on a loaded machine
    a, b = container(), container()
    thread_a, out_a = _in_thread(lambda: a.tokens.access_token(INSTALLATION, deadline=Deadline.after(20)))
    time.sleep(0.2)
    started = time.monotonic()
    served = b.tokens.access_token(INSTALLATION, deadline=Deadline.after(20))
    waited = time.monotonic() - started
    thread_a.join(30)
    assert served == old.access_token.get_secret_value()  # no waiting for A's refresh
    assert waited < 0.5, f"B waited {waited:.2f} s for a refresh it did not need"
    assert out_a and out_a[0] != served and sandbox.calls["token:refresh_token"] == 1


def test_case_3_a_waiter_gives_up_by_its_deadline_not_after_the_lease(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    tokens = _install(sandbox, dynamodb, valid_for=1)
    other = container()
    assert other.store.acquire_refresh_lease(
        INSTALLATION, "another-container", tokens.refresh_token.get_secret_value(), int(time.time()), 60
    )
    waiter = container(TimeBudget(poll_seconds=0.05))  # production budget: max wait 10 s
    started = time.monotonic()
    with pytest.raises(TokenRefreshBusyError):
        waiter.tokens.access_token(INSTALLATION, deadline=Deadline.after(1.0))
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"waited {elapsed:.1f} s with 1 s left"  # wide margin: a hard limit, not a speed
    assert sandbox.calls["token:refresh_token"] == 0


def test_case_3_no_token_attempt_starts_that_the_deadline_cannot_hold(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    """With less time left than one whole attempt, Buy with Prime is not called at all (a call cut
    short by a Lambda timeout may redeem the token and lose the new pair); the lease is released."""
    _install(sandbox, dynamodb, valid_for=1)
    short = container()
    with pytest.raises(OutOfTimeError):
        short.tokens.access_token(INSTALLATION, deadline=Deadline.after(1.5))  # 1.3 s attempt + 0.6 s reserve
    assert sandbox.calls["token:refresh_token"] == 0
    stored = short.store.get(INSTALLATION)
    assert stored is not None and stored.lease_owner is None and stored.status == "active"


def test_fencing_an_invalid_grant_after_the_stored_token_changed_uses_the_newer_pair(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    """B holds the lease and is told invalid_grant, but the stored refresh token changed meanwhile
    (another container's pair landed): not a rejection; B returns the newer pair, status active."""
    old = _install(sandbox, dynamodb, valid_for=1)
    b = container()
    newer = TokenSet.model_validate(sandbox.issue_tokens(INSTALLATION))

    class RejectingAfterAnotherStore:
        def refresh(self, credentials: ClientCredentials, refresh_token: str, deadline: Deadline | None = None) -> Any:
            from shared.buy_with_prime import InvalidGrantError

            assert refresh_token == old.refresh_token.get_secret_value()
            dynamodb.update_item(  # another container's store, as it lands
                TableName=TABLE_NAME,
                Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
                UpdateExpression="SET access_token = :a, refresh_token = :r, access_token_expires_at = :e",
                ExpressionAttributeValues={
                    ":a": {"S": newer.access_token.get_secret_value()},
                    ":r": {"S": newer.refresh_token.get_secret_value()},
                    ":e": {"N": str(int(time.time()) + 900)},
                },
            )
            raise InvalidGrantError(400, "invalid_grant")

    b.tokens._endpoint = RejectingAfterAnotherStore()
    assert b.tokens.access_token(INSTALLATION) == newer.access_token.get_secret_value()
    stored = b.store.get(INSTALLATION)
    assert stored is not None and stored.status == "active"


def test_case_2_a_pair_redeemed_while_dynamodb_throttles_survives_the_container(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    """Every installation-item write right after the redeem is throttled past A's deadline: the pair
    is parked in the rescue item (another partition). A is then recycled (forgotten); B, a new
    container, finds the rescued pair once A's lease ends and stores it without redeeming."""
    _install(sandbox, dynamodb, valid_for=1)
    a = container()
    faults = WireFaults(a.raw_client)
    faults.fail("UpdateItem", "ProvisionedThroughputExceededException", times=10_000, after=1)  # lease passes
    token_a = a.tokens.access_token(INSTALLATION, deadline=Deadline.after(3.0))
    assert sandbox.calls["token:refresh_token"] == 1
    assert faults.served["UpdateItem"] >= 2  # the store was tried more than once
    rescued = dynamodb.get_item(TableName=TABLE_NAME, Key=rescued_tokens_key(INSTALLATION)).get("Item")
    assert rescued is not None and rescued["access_token"]["S"] == token_a
    del a  # the container is recycled: its memory is gone
    later = container(clock=lambda: time.time() + 120)  # after A's lease has run out
    assert later.tokens.access_token(INSTALLATION) == token_a
    assert sandbox.calls["token:refresh_token"] == 1  # never redeemed again
    stored = later.store.get(INSTALLATION)
    assert stored is not None and stored.access_token == token_a and stored.status == "active"
    assert dynamodb.get_item(TableName=TABLE_NAME, Key=rescued_tokens_key(INSTALLATION)).get("Item") is None


def test_an_ordinary_refresh_does_not_read_the_rescue_item(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    """A lease taken where none was left (the last refresh stored its pair) cannot follow a parked
    pair: the refresh is GetItem, the lease, the redeem and the store, and no read of the rescue item."""
    _install(sandbox, dynamodb, valid_for=1)
    a = container()
    faults = WireFaults(a.raw_client)
    a.tokens.access_token(INSTALLATION, deadline=Deadline.after(5.0))
    assert sandbox.calls["token:refresh_token"] == 1
    assert faults.attempts["GetItem"] == 1 and faults.attempts["UpdateItem"] == 2


def test_a_parked_pair_survives_a_follower_that_failed_and_released_its_lease(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    """A parks its pair; B takes the stale lease, cannot read the rescue item (throttled) and
    releases its lease; C then still looks for the parked pair (a release keeps the lease's trace)
    and adopts it: the redeemed refresh token is never presented again."""
    _install(sandbox, dynamodb, valid_for=1)
    a = container()
    WireFaults(a.raw_client).fail("UpdateItem", "ProvisionedThroughputExceededException", times=10_000, after=1)
    token_a = a.tokens.access_token(INSTALLATION, deadline=Deadline.after(3.0))
    del a
    b = container(clock=lambda: time.time() + 120)
    on_b = WireFaults(b.raw_client)
    on_b.fail("GetItem", "ProvisionedThroughputExceededException", times=10_000, after=1)  # the rescue read
    with pytest.raises(ClientError):
        b.tokens.access_token(INSTALLATION, deadline=Deadline.after(3.0))
    assert on_b.attempts["UpdateItem"] == 2  # the lease, then its release
    c = container(clock=lambda: time.time() + 240)
    released = c.store.get(INSTALLATION)
    assert released is not None and released.lease_owner is None and released.lease_expires_at == 0
    assert c.tokens.access_token(INSTALLATION) == token_a
    assert sandbox.calls["token:refresh_token"] == 1  # never redeemed again


def test_a_short_throttling_window_after_the_redeem_is_outlasted_by_the_store_retries(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    _install(sandbox, dynamodb, valid_for=1)
    a = container()
    faults = WireFaults(a.raw_client)
    faults.fail("UpdateItem", "ThrottlingException", times=6, after=1)  # botocore's 4 attempts, then ours
    token = a.tokens.access_token(INSTALLATION, deadline=Deadline.after(10.0))
    stored = a.store.get(INSTALLATION)
    assert stored is not None and stored.access_token == token and stored.lease_owner is None
    assert dynamodb.get_item(TableName=TABLE_NAME, Key=rescued_tokens_key(INSTALLATION)).get("Item") is None


def test_case_5_a_reinstall_is_never_served_the_previous_installations_cached_token(
    sandbox: BuyWithPrimeSandbox, dynamodb: Any, container: Callable[..., Container]
) -> None:
    first = _install(sandbox, dynamodb, valid_for=900)
    warm = container()
    before = warm.store.get(INSTALLATION)
    assert before is not None
    assert warm.tokens.access_token(INSTALLATION, generation=before.generation) == first.access_token.get_secret_value()
    store = InstallationStore(dynamodb, TABLE_NAME)
    store.uninstall(INSTALLATION, requested_at_ms=int(time.time() * 1000) + 1000, now=int(time.time()))
    second = TokenSet.model_validate(sandbox.issue_tokens(INSTALLATION))
    store.save_installation(INSTALLATION, second, int(time.time()) + 2)  # the re-install
    after = store.get(INSTALLATION)
    assert after is not None and after.generation != before.generation
    assert warm.tokens.access_token(INSTALLATION, generation=after.generation) == second.access_token.get_secret_value()
