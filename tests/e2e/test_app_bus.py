"""The partner's side end to end on the local stack: lifecycle changes and hydrated orders leave the
table's stream through the real outbox publisher onto the app bus (a tap shows each one once); the
template's OrderHydrated rule invokes the real example consumer, which asks the store through the
real token broker behind its SigV4-checking function URL; a consumer that keeps failing ends, after
its retries, in its on-failure queue with the whole event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devtools.local_stack import LocalStack
from devtools.local_stack.__main__ import print_app_event
from devtools.local_stack.console import run_command
from sandbox.events import partner_event, resource_path
from tests.e2e.merchant import install
from tests.e2e.test_event_flow import run_bwpctl

pytestmark = pytest.mark.e2e

INSTALLATION = "amzn1.bwp.installation.e2e-app-bus"
PRODUCT = "amzn1.bp.product.e2e-app-bus"
WAIT = 40.0  # seconds: the longest a test waits for an event to go round


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(retry_delay_seconds=1) as running:
        assert install(running, INSTALLATION).status == 200
        assert run_bwpctl(running, "link", PRODUCT, INSTALLATION) == 0
        yield running


@pytest.fixture(autouse=True)
def _no_fault_outlives_its_test(stack: LocalStack) -> Iterator[None]:
    yield
    stack.sandbox.faults.clear()


def wait_for(found: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT} s: {what}")


def app_events(stack: LocalStack, kind: str, installation_id: str = INSTALLATION) -> list[dict[str, Any]]:
    return [
        e for e in stack.app_events if e["detail-type"] == kind and e["detail"].get("installationId") == installation_id
    ]


def consumer(stack: LocalStack) -> Any:
    return stack.relays["ExampleConsumerFunction.OrderHydrated"]


def test_the_install_is_one_installation_created_event(stack: LocalStack) -> None:
    (created,) = wait_for(lambda: app_events(stack, "InstallationCreated"), "InstallationCreated")
    assert created["source"] == "buy-with-prime.integration" and created["detail"]["eventId"]
    item = stack.installation(INSTALLATION) or {}
    assert item["access_token"] not in json.dumps(created) and item["refresh_token"] not in json.dumps(created)


def test_a_hydrated_order_reaches_the_example_consumer_which_queries_through_the_broker(stack: LocalStack) -> None:
    order_id = "322-3000001-0000001"
    stack.publish(partner_event("ORDER_CONFIRMED", [resource_path(PRODUCT, order_id=order_id)]))
    hydrated = wait_for(
        lambda: [e for e in app_events(stack, "OrderHydrated") if e["detail"]["resourceId"] == order_id],
        "OrderHydrated",
    )
    assert hydrated[0]["detail"]["data"]["id"] == order_id
    handled = wait_for(
        lambda: [r for r in consumer(stack).results if r.get("order_id") == order_id], "the consumer's answer"
    )
    assert handled == [
        {
            "outcome": "handled",
            "installation_id": INSTALLATION,
            "event_id": hydrated[0]["detail"]["eventId"],
            "order_id": order_id,
            "order_state": hydrated[0]["detail"]["data"].get("state"),
            "version": hydrated[0]["detail"]["version"],
            "site_id": handled[0]["site_id"],
        }
    ]
    assert handled[0]["site_id"]  # Buy with Prime's answer, through the broker


def test_a_consumer_that_keeps_failing_ends_in_its_on_failure_queue_with_the_event(stack: LocalStack) -> None:
    # an OrderHydrated event as the integration publishes it, while Buy with Prime is down
    stack.sandbox.fail_next("graphql", 503, times=10_000)
    event = {"schemaVersion": "1", "eventId": "e2e-failing", "installationId": INSTALLATION, "resourceId": "322-x"}
    stack.client("events").put_events(
        Entries=[
            {
                "Source": "buy-with-prime.integration",
                "DetailType": "OrderHydrated",
                "Detail": json.dumps(event),
                "EventBusName": stack.aws.app_bus_name,
            }
        ]
    )
    queue = stack.aws.queue_url("ExampleConsumerDeadLetterQueue")
    sqs = stack.client("sqs")
    messages = wait_for(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), "the on-failure record")
    record = json.loads(messages[0]["Body"])
    assert record["requestPayload"]["detail"] == event  # the whole event, to replay
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    invoke_config = stack.template["Resources"]["ExampleConsumerFunction"]["Properties"]["EventInvokeConfig"]
    assert record["requestContext"]["approximateInvokeCount"] == invoke_config["MaximumRetryAttempts"] + 1
    assert "upstream" in record["responsePayload"]["errorMessage"]


def test_an_uninstall_is_one_installation_uninstalled_event(stack: LocalStack) -> None:
    other = "amzn1.bwp.installation.e2e-app-bus-gone"
    assert install(stack, other).status == 200
    assert stack.uninstall(other).status_code == 200
    (gone,) = wait_for(lambda: app_events(stack, "InstallationUninstalled", other), "InstallationUninstalled")
    assert gone["detail"]["schemaVersion"] == "1"
    assert len(app_events(stack, "InstallationCreated", other)) == 1


# --------------------------------------------------------------------------- acting as Buy with Prime


def test_the_console_order_command_goes_all_the_way_to_the_consumer(stack: LocalStack) -> None:
    order_id = "322-4000001-0000001"
    said = run_command(stack, f"order {order_id}", INSTALLATION)
    assert said.startswith(f"published ORDER_CONFIRMED for order {order_id} of {INSTALLATION}")
    handled = wait_for(lambda: [r for r in consumer(stack).results if r.get("order_id") == order_id], "handled")
    assert handled[0]["outcome"] == "handled"


def test_the_console_revokes_and_uninstalls_as_buy_with_prime_would(stack: LocalStack) -> None:
    other = "amzn1.bwp.installation.e2e-console"
    assert install(stack, other).status == 200
    assert run_command(stack, f"revoke {other}", INSTALLATION) == f"revoked 1 access and 1 refresh token(s) of {other}"
    assert run_command(stack, f"uninstall {other}", INSTALLATION).startswith(f"uninstall {other}: HTTP 200")
    assert (stack.installation(other) or {})["status"] == "uninstalled"
    wait_for(lambda: app_events(stack, "InstallationUninstalled", other), "InstallationUninstalled")


def test_console_faults_reach_the_sandbox_and_mistakes_are_told_not_raised(stack: LocalStack) -> None:
    assert run_command(stack, "fail graphql 503 2", INSTALLATION) == "the next 2 graphql request(s) get HTTP 503"
    answer = requests.post(stack.sandbox.graphql_url, json={"query": "{ x }"}, timeout=10)
    assert answer.status_code == 503
    assert run_command(stack, "clear", INSTALLATION) == "every fault cleared"
    for mistake, needle in [
        ("fail nothing 503", "say which endpoint"),
        ("fail token 200", "not a number from 400 to 599"),
        ("throttle lots", "not a number"),
        ("dance", "unknown command 'dance'"),
    ]:
        said = run_command(stack, mistake, INSTALLATION)
        assert needle in said and "commands (INSTALLATION" in said and "Traceback" not in said
    assert run_command(stack, "", INSTALLATION).startswith(f"Settings: {stack.settings_url}?")


def test_make_dev_prints_one_line_per_app_event(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    (created,) = wait_for(lambda: app_events(stack, "InstallationCreated"), "InstallationCreated")
    print_app_event(created)
    line = capsys.readouterr().out
    assert (
        line == f"app event: InstallationCreated installation={INSTALLATION} eventId={created['detail']['eventId']}\n"
    )
