"""The example consumer (src/example_consumer/): an OrderHydrated app event reaches it, it asks the
store through the real token broker behind a SigV4-checking function URL, and it tells apart what a
retry can fix (raise: EventBridge retries, then dead-letters) from what it cannot (skip)."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from clients.token_broker import TokenBrokerClient, TokenBrokerError
from devtools.local_invoke import EVENTS
from devtools.template import load_template
from example_consumer import handler
from tests.events_driver import EventsDriver
from tests.test_token_broker import SECRET_KEY, broker_url  # noqa: F401 - the fixture

INSTALLATION = "amzn1.bwp.installation.broker"
SAMPLE = json.loads((EVENTS / "example-order-hydrated.json").read_text(encoding="utf-8"))


def order_event(installation_id: str = INSTALLATION, detail_type: str = "OrderHydrated") -> dict[str, Any]:
    event = copy.deepcopy(SAMPLE)
    event["detail-type"] = detail_type
    event["detail"]["installationId"] = installation_id
    return event


@pytest.fixture
def client(broker_url: str) -> TokenBrokerClient:  # noqa: F811 - the imported fixture
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    return TokenBrokerClient(broker_url, session=session, timeout=handler.BROKER_TIMEOUT_SECONDS)


def test_an_order_is_handled_with_the_store_fetched_as_the_installation(
    events: EventsDriver, client: TokenBrokerClient
) -> None:
    events.install(INSTALLATION)
    answer = handler.handle(order_event(), client)
    assert answer["outcome"] == "handled" and answer["site_id"]
    assert (answer["installation_id"], answer["order_state"]) == (INSTALLATION, "CONFIRMED")
    assert answer["event_id"] == SAMPLE["detail"]["eventId"]
    assert events.sandbox.calls["token:refresh_token"] == 0  # the stored token was still valid


def test_gone_and_revoked_installations_are_skipped_not_retried(
    events: EventsDriver, client: TokenBrokerClient
) -> None:
    assert handler.handle(order_event("amzn1.bwp.installation.never"), client)["reason"] == "installation_not_found"
    events.install(INSTALLATION, expired=True)
    events.sandbox.revoke_refresh_tokens(INSTALLATION)
    answer = handler.handle(order_event(), client)
    assert (answer["outcome"], answer["reason"]) == ("skipped", "needs_reauthorization")
    # a second event for it does not redeem anything again: the broker knows it needs the merchant
    handler.handle(order_event(), client)
    assert events.sandbox.calls["token:refresh_token"] == 1


def test_a_failing_buy_with_prime_raises_so_eventbridge_retries(
    events: EventsDriver, client: TokenBrokerClient
) -> None:
    events.install(INSTALLATION)
    events.sandbox.fail_next("graphql", 503, times=10)
    with pytest.raises(TokenBrokerError) as failure:
        handler.handle(order_event(), client)
    assert failure.value.code not in handler.SKIPPED


def test_other_app_events_are_ignored_without_a_broker_call(events: EventsDriver, client: TokenBrokerClient) -> None:
    events.install(INSTALLATION)
    before = dict(events.sandbox.calls)
    assert handler.handle(order_event(detail_type="InstallationCreated"), client) == {"outcome": "ignored"}
    assert handler.handle({"detail-type": "OrderHydrated", "detail": {}}, client) == {"outcome": "ignored"}
    assert dict(events.sandbox.calls) == before


def test_the_broker_call_fits_in_the_function_timeout() -> None:
    # the client gives up on the broker before Lambda would stop the consumer mid-call
    function = load_template()["Resources"]["ExampleConsumerFunction"]
    assert function["Properties"]["Timeout"] >= handler.BROKER_TIMEOUT_SECONDS + 5
