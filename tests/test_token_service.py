"""The token service: refresh ahead of expiry, one refresh per installation across Lambdas,
rotation stored atomically, rejection marks the installation for re-authorisation."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from devtools.atomic_dynamodb import AtomicDynamoDB
from sandbox.server import BuyWithPrimeSandbox
from shared.budget import TimeBudget
from shared.buy_with_prime import BuyWithPrimeClient
from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError
from shared.models import ClientCredentials, TokenSet
from shared.store.installations import InstallationStore
from shared.tokens import TokenCache, TokenService
from tests.conftest import CLIENT_ID, CLIENT_SECRET, TABLE_NAME

INSTALLATION = "amzn1.bwp.installation.tokens"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)  # type: ignore[arg-type]


class StaticCredentials:
    def get(self) -> ClientCredentials:
        return CREDENTIALS


def _service(sandbox: BuyWithPrimeSandbox, **kw: Any) -> TokenService:
    """One 'Lambda container': its own DynamoDB client, HTTP session and in-memory cache."""
    store = InstallationStore(AtomicDynamoDB(), TABLE_NAME)
    client = BuyWithPrimeClient(
        sandbox.token_url, sandbox.graphql_url, session=requests.Session(), sleep=lambda _: None
    )
    return TokenService(store, client, StaticCredentials(), TokenCache(), **kw)


@pytest.fixture
def store(dynamodb: Any) -> InstallationStore:
    return InstallationStore(dynamodb, TABLE_NAME)


def _install(sandbox: BuyWithPrimeSandbox, store: InstallationStore, *, expires_at: int | None = None) -> TokenSet:
    """An installation whose tokens the sandbox really issued (so that refresh works)."""
    pair = sandbox.issue_tokens(INSTALLATION)
    tokens = TokenSet(access_token=pair["access_token"], refresh_token=pair["refresh_token"], expires_in=900)  # type: ignore[arg-type]
    now = int(time.time())
    store.save_installation(INSTALLATION, tokens, now)
    if expires_at is not None:
        store._client.update_item(
            TableName=TABLE_NAME,
            Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
            UpdateExpression="SET access_token_expires_at = :e",
            ExpressionAttributeValues={":e": {"N": str(expires_at)}},
        )
    return tokens


def test_a_valid_token_is_returned_without_refreshing_and_then_cached(
    sandbox: BuyWithPrimeSandbox, store: InstallationStore
) -> None:
    tokens = _install(sandbox, store)
    service = _service(sandbox)
    assert service.access_token(INSTALLATION) == tokens.access_token.get_secret_value()
    store.uninstall(INSTALLATION, requested_at_ms=int(time.time() * 1000) + 5000, now=int(time.time()))
    # warm invocation: served from memory, no table read needed
    assert service.access_token(INSTALLATION) == tokens.access_token.get_secret_value()
    assert sandbox.calls["token:refresh_token"] == 0


def test_a_token_close_to_expiry_is_refreshed_and_the_new_pair_stored(
    sandbox: BuyWithPrimeSandbox, store: InstallationStore
) -> None:
    old = _install(sandbox, store, expires_at=int(time.time()) + 60)  # inside the 120 s margin
    fresh = _service(sandbox).access_token(INSTALLATION)
    assert fresh != old.access_token.get_secret_value()
    assert sandbox.calls["token:refresh_token"] == 1
    stored = store.get(INSTALLATION)
    assert stored is not None
    assert stored.access_token == fresh
    assert stored.refresh_token != old.refresh_token.get_secret_value()  # rotated pair kept
    assert stored.lease_owner is None
    assert stored.access_token_expires_at >= int(time.time()) + 890


def test_expires_in_absent_means_900_seconds(store: InstallationStore, dynamodb: Any) -> None:
    with BuyWithPrimeSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, include_expires_in=False) as sandbox:
        _install(sandbox, store, expires_at=1)
        _service(sandbox).access_token(INSTALLATION)
    stored = store.get(INSTALLATION)
    assert stored is not None
    assert 895 <= stored.access_token_expires_at - int(time.time()) <= 900


def test_concurrent_refreshes_from_many_lambdas_call_the_token_endpoint_once(
    sandbox: BuyWithPrimeSandbox, store: InstallationStore
) -> None:
    # given an expired token and a slow token endpoint, and eight 'Lambdas' asking at once
    _install(sandbox, store, expires_at=1)
    sandbox.latency("token", 0.4)
    services = [_service(sandbox, budget=TimeBudget(poll_seconds=0.05)) for _ in range(8)]
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(services))

    def ask(service: TokenService) -> None:
        barrier.wait()
        try:
            results.append(service.access_token(INSTALLATION))
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then exactly one refresh, everybody got the same fresh token, and the installation is healthy
    assert errors == []
    assert sandbox.calls["token:refresh_token"] == 1
    assert len(results) == 8 and len(set(results)) == 1
    stored = store.get(INSTALLATION)
    assert stored is not None and stored.access_token == results[0] and stored.status == "active"


def test_a_rejected_refresh_token_marks_reauthorisation_and_is_not_retried(
    sandbox: BuyWithPrimeSandbox, store: InstallationStore
) -> None:
    _install(sandbox, store, expires_at=1)
    sandbox.revoke_refresh_tokens(INSTALLATION)
    service = _service(sandbox)
    with pytest.raises(ReauthorizationRequiredError):
        service.access_token(INSTALLATION)
    stored = store.get(INSTALLATION)
    assert stored is not None
    assert stored.status == "needs_reauthorization"
    assert stored.access_token is None and stored.lease_owner is None
    # a second caller (another Lambda) does not burn another token-endpoint call
    with pytest.raises(ReauthorizationRequiredError):
        _service(sandbox).access_token(INSTALLATION)
    assert sandbox.calls["token:refresh_token"] == 1


def test_a_transient_token_endpoint_failure_releases_the_lease(
    sandbox: BuyWithPrimeSandbox, store: InstallationStore
) -> None:
    from shared.buy_with_prime import TransientBuyWithPrimeError

    _install(sandbox, store, expires_at=1)
    sandbox.fail_next("token", 503, times=10)
    with pytest.raises(TransientBuyWithPrimeError):
        _service(sandbox).access_token(INSTALLATION)
    stored = store.get(INSTALLATION)
    assert stored is not None and stored.lease_owner is None and stored.status == "active"
    sandbox.faults.clear()
    assert _service(sandbox).access_token(INSTALLATION)


def test_a_stale_lease_of_a_crashed_lambda_is_taken_over(
    sandbox: BuyWithPrimeSandbox, store: InstallationStore
) -> None:
    tokens = _install(sandbox, store, expires_at=1)
    now = int(time.time())
    assert store.acquire_refresh_lease(INSTALLATION, "crashed", tokens.refresh_token.get_secret_value(), now - 60, 30)
    assert _service(sandbox).access_token(INSTALLATION)
    assert sandbox.calls["token:refresh_token"] == 1


def test_a_live_lease_makes_the_caller_wait_then_reread(sandbox: BuyWithPrimeSandbox, store: InstallationStore) -> None:
    from shared.errors import TokenRefreshBusyError

    tokens = _install(sandbox, store, expires_at=1)
    assert store.acquire_refresh_lease(
        INSTALLATION, "other", tokens.refresh_token.get_secret_value(), int(time.time()), 30
    )
    with pytest.raises(TokenRefreshBusyError):
        _service(sandbox, budget=TimeBudget(max_wait_seconds=0.3, poll_seconds=0.05)).access_token(INSTALLATION)
    assert sandbox.calls["token:refresh_token"] == 0  # never redeemed while someone else holds the lease


def test_unknown_and_uninstalled_installations(sandbox: BuyWithPrimeSandbox, store: InstallationStore) -> None:
    with pytest.raises(InstallationNotFoundError):
        _service(sandbox).access_token("amzn1.bwp.installation.never")
    _install(sandbox, store)
    store.uninstall(INSTALLATION, requested_at_ms=int(time.time() * 1000) + 1000, now=int(time.time()))
    with pytest.raises(InstallationNotFoundError):
        _service(sandbox).access_token(INSTALLATION)


def test_token_values_never_appear_in_reprs(sandbox: BuyWithPrimeSandbox, store: InstallationStore) -> None:
    tokens = _install(sandbox, store)
    installation = store.get(INSTALLATION)
    for text in (repr(tokens), str(tokens), repr(installation), repr(CREDENTIALS)):
        assert tokens.access_token.get_secret_value() not in text
        assert tokens.refresh_token.get_secret_value() not in text
        assert CLIENT_SECRET not in text
