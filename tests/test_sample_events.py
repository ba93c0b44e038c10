"""Every sample in events/ runs through its function in-process (the Docker-free `sam local invoke`)
and does what its name says."""

from __future__ import annotations

import json

import pytest

from devtools.local_invoke import EVENTS, function_for, invoke
from oauth.http import HttpRequest
from oauth.verification import RequestVerifier

SAMPLES = sorted(p for p in EVENTS.glob("*.json") if p.name != "env.json")


@pytest.fixture(autouse=True)
def _no_leftover_aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_there_are_samples_for_every_function() -> None:
    assert {function_for(p) for p in SAMPLES} == {
        "OAuthFunction",
        "EventsFunction",
        "SweepFunction",
        "TokenBrokerFunction",
        "OutboxPublisherFunction",
        "ExampleConsumerFunction",
    }


def test_the_outbox_sample_publishes_its_two_changes() -> None:
    assert invoke(EVENTS / "outbox-stream.json") == {"batchItemFailures": []}


def test_broker_samples_answer_a_token_and_a_query_for_the_sample_installation() -> None:
    token = invoke(EVENTS / "broker-token.json")
    body = json.loads(token["body"])
    assert token["statusCode"] == 200 and body["accessToken"] and body["expiresAt"] > 0
    assert "refresh" not in token["body"].lower()
    query = invoke(EVENTS / "broker-graphql.json")
    assert query["statusCode"] == 200 and "siteId" in json.loads(query["body"])["data"]["buyWithPrimeStore"]


def test_the_example_consumer_sample_queries_the_store_through_the_signed_broker() -> None:
    answer = invoke(EVENTS / "example-order-hydrated.json")
    assert answer["outcome"] == "handled" and answer["site_id"]
    assert (answer["order_id"], answer["order_state"]) == ("322-1000001-0000001", "CONFIRMED")


def test_sweep_sample_refreshes_the_idle_sample_installation_and_reports_the_gauges() -> None:
    # the sample installation was installed (and last refreshed) long before today: it is idle
    answer = invoke(EVENTS / "sweep.json")
    assert answer["refreshed"] == answer["candidates"] == 1
    assert (answer["failed"], answer["deferred"]) == (0, False)
    assert (answer["active"], answer["needing_reauthorization"]) == (1, 0)


@pytest.mark.parametrize("name", ["install", "settings", "uninstall"])
def test_signed_samples_verify_with_the_key_in_env_json(name: str) -> None:
    env = json.loads((EVENTS / "env.json").read_text())["OAuthFunction"]
    event = json.loads((EVENTS / f"{name}.json").read_text())
    request = HttpRequest.from_event(event)
    verifier = RequestVerifier(
        env["BWP_VERIFICATION_PUBLIC_KEY"], max_age_seconds=int(env["MAX_VERIFICATION_TOKEN_AGE_SECONDS"])
    )
    verified = verifier.verify(request, f"https://{event['requestContext']['domainName']}")
    assert verified.installation_id == "amzn1.bwp.installation.sample-0001"


@pytest.mark.parametrize(
    "name,status,needle",
    [
        ("launch", 302, ""),
        ("install", 200, "App installed"),  # verified, its state spent or never launched here: what is installed
        ("settings", 200, "Connected"),
        ("uninstall", 200, "uninstalled"),
        ("health", 200, "ok"),
    ],
)
def test_oauth_samples(name: str, status: int, needle: str) -> None:
    answer = invoke(EVENTS / f"{name}.json")
    assert answer["statusCode"] == status
    assert needle in answer["body"]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("sqs-order-confirmed", ["ORDER_CONFIRMED -> processed"]),
        ("sqs-duplicate", ["ORDER_CONFIRMED -> processed"]),
        ("sqs-unknown-type", ["SOMETHING_NEW_FROM_BUY_WITH_PRIME -> processed"]),
        ("sqs-malformed", ["? -> failed (malformed_json)", "? -> failed (schema_violation)"]),
        (
            "sqs-mixed-formats",
            [
                "REFUND_REQUESTED -> processed",
                "PACKAGE_DELIVERED -> processed",
                "PACKAGE_DELIVERED -> processed",  # ITEM_DELIVERED, the legacy alias
                "INVENTORY_CHANGED -> processed",
                "PACKAGE_TRACKER_MILESTONE_CHANGED -> processed",
            ],
        ),
    ],
)
def test_sqs_samples(name: str, expected: list[str]) -> None:
    answer = invoke(EVENTS / f"{name}.json")
    assert answer["response"] == {"batchItemFailures": []}
    events = [line.split(": ", 1)[1] for line in answer["stored"] if line.startswith("event ")]
    assert sorted(events) == sorted(expected)
