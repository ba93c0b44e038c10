"""The local stack built from the real template.yaml: what it provisions, the events its front
sends to the unchanged OAuth handler, API Gateway's 404, and one event through the pipeline."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools import template as project_template
from devtools.local_stack import LocalStack
from devtools.local_stack.functions import function_environment, function_events, functions
from devtools.local_stack.poller import sqs_source_from_properties
from sandbox.events import partner_event, resource_path
from tests.e2e.merchant import install

pytestmark = pytest.mark.e2e
TIMEOUT = 15


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(background_polling=False, retry_delay_seconds=0) as running:
        running.front.record_events = True
        yield running


@pytest.fixture
def template() -> dict[str, Any]:
    return project_template.load_template()


def last_event(stack: LocalStack) -> dict[str, Any]:
    assert stack.front.events, "the front sent no event to a function"
    return stack.front.events[-1]


# --- provisioning from the template ---------------------------------------------------------------
def test_table_is_created_from_the_template_properties(stack: LocalStack, template: dict[str, Any]) -> None:
    properties = template["Resources"]["InstallationsTable"]["Properties"]
    dynamodb = stack.client("dynamodb")
    table = dynamodb.describe_table(TableName=stack.aws.table_name())["Table"]
    assert table["KeySchema"] == properties["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(properties["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == properties["BillingMode"]
    ttl = dynamodb.describe_time_to_live(TableName=stack.aws.table_name())["TimeToLiveDescription"]
    assert ttl == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": properties["TimeToLiveSpecification"]["AttributeName"],
    }


def test_queue_redrive_and_timeouts_come_from_the_template(stack: LocalStack, template: dict[str, Any]) -> None:
    properties = template["Resources"]["EventsQueue"]["Properties"]
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.aws.queue_url("EventsQueue"), AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == properties["RedrivePolicy"]["maxReceiveCount"]
    assert redrive["deadLetterTargetArn"] == stack.aws.queue_arn("EventsDeadLetterQueue")
    assert int(attributes["VisibilityTimeout"]) == properties["VisibilityTimeout"]
    assert int(attributes["MessageRetentionPeriod"]) == properties["MessageRetentionPeriod"]


def test_rule_on_the_local_bus_has_the_template_pattern_and_targets(
    stack: LocalStack, template: dict[str, Any]
) -> None:
    rule = template["Resources"]["PartnerEventsRule"]["Properties"]
    events = stack.client("events")
    described = events.describe_rule(Name=stack.aws.rule_name(), EventBusName=stack.aws.bus_name)
    assert "/" not in stack.aws.bus_name  # moto cannot take the partner bus's real name
    assert json.loads(described["EventPattern"]) == rule["EventPattern"]
    (target,) = events.list_targets_by_rule(Rule=stack.aws.rule_name(), EventBusName=stack.aws.bus_name)["Targets"]
    assert target["Arn"] == stack.aws.queue_arn("EventsQueue")
    assert target["DeadLetterConfig"] == {"Arn": stack.aws.queue_arn("EventsDeadLetterQueue")}
    assert target["RetryPolicy"] == rule["Targets"][0]["RetryPolicy"]


def test_functions_get_exactly_the_template_variables(stack: LocalStack, template: dict[str, Any]) -> None:
    for function in functions(template):
        # the local reader agrees with devtools.template's (one source of truth, no drift)
        assert function_environment(template, function) == project_template.function_environment(function)
        env = stack.env_for(function)
        assert set(env) == set(project_template.function_environment(function))
        if function == "OutboxPublisherFunction":  # reads the stream, publishes on the app bus: nothing else
            assert env["APP_EVENT_BUS_NAME"] == stack.aws.app_bus_name
            continue
        if function == "ExampleConsumerFunction":  # the partner's code: the broker's URL, no table or secret
            assert env["TOKEN_BROKER_URL"] == stack.function_urls["TokenBrokerFunction"].url
            assert not {"TABLE_NAME", "CLIENT_CREDENTIALS_SECRET_ARN"} & set(env)
            continue
        assert env["TABLE_NAME"] == stack.aws.table_name()
        assert env["CLIENT_CREDENTIALS_SECRET_ARN"] == stack.aws.secret_arn()
        assert env["BWP_TOKEN_URL"] == stack.sandbox.token_url
    oauth = stack.functions["OAuthFunction"].environment
    assert oauth["PUBLIC_BASE_URL"] == stack.front.origin
    assert oauth["BWP_VERIFICATION_PUBLIC_KEY"] == stack.sandbox.signer.public_key_pem
    with pytest.raises(ValueError, match="LOCAL_ONLY"):
        stack.aws.env_for("OAuthFunction", {"LOCAL_ONLY": "x"})


def test_the_process_points_every_boto3_client_at_moto(stack: LocalStack) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == stack.aws.endpoint_url
    assert "AWS_PROFILE" not in os.environ


def test_event_source_settings_come_from_the_template(stack: LocalStack, template: dict[str, Any]) -> None:
    (raw,) = function_events(template, "EventsFunction", "SQS").values()
    source = sqs_source_from_properties(stack.aws.resolve(raw))
    parameters = template["Parameters"]
    assert source.batch_size == parameters["EventBatchSize"]["Default"]
    assert source.batching_window == parameters["EventBatchWindowSeconds"]["Default"]
    assert source.report_batch_item_failures
    assert source.queue_arn == stack.aws.queue_arn("EventsQueue")
    assert stack.pollers["EventsFunction.PartnerEventsQueue"].source == source


# --- the front: API Gateway's payload 2.0 ----------------------------------------------------------
def test_raw_path_and_query_arrive_untouched(stack: LocalStack) -> None:
    raw_query = "b=%2Fslash%20space&a=1&a=2&empty=&plus=a+b&t%C3%A9=%E2%9C%93"
    answer = requests.get(f"{stack.health_url}?{raw_query}", headers={"X-Custom": "One"}, timeout=TIMEOUT)
    assert answer.json() == {"status": "ok"}
    event = last_event(stack)
    assert event["rawPath"] == "/health"
    assert event["rawQueryString"] == raw_query
    assert event["queryStringParameters"]["a"] == "1,2"
    assert event["queryStringParameters"]["b"] == "/slash space"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /health"
    assert event["headers"]["x-custom"] == "One"
    assert all(name == name.lower() for name in event["headers"])
    assert event["requestContext"]["domainName"] == stack.front.origin.removeprefix("http://")
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["version"] == "2.0"


def test_cookies_move_from_the_header_to_the_cookies_array(stack: LocalStack) -> None:
    requests.get(stack.health_url, headers={"Cookie": "a=1; __Host-bwp-oauth=xyz;b=2"}, timeout=TIMEOUT)
    event = last_event(stack)
    assert event["cookies"] == ["a=1", "__Host-bwp-oauth=xyz", "b=2"]
    assert "cookie" not in event["headers"]


def test_a_binary_body_arrives_base64_encoded_and_a_json_body_as_text(stack: LocalStack) -> None:
    binary = bytes(range(256))
    answer = requests.post(stack.uninstall_url, data=binary, timeout=TIMEOUT)
    assert answer.status_code == 401  # reached the handler, which wants a verification token
    event = last_event(stack)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary
    text = '{"installationId": "x", "note": "caf\u00e9"}'.encode()
    requests.post(stack.uninstall_url, data=text, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    event = last_event(stack)
    assert event["isBase64Encoded"] is False
    assert event["body"].encode() == text


def test_unknown_routes_and_methods_get_api_gateways_404(stack: LocalStack) -> None:
    sent = len(stack.front.events)
    for method, url in (
        ("GET", stack.front.origin + "/nope"),
        ("GET", stack.uninstall_url),
        ("POST", stack.launch_url),
    ):
        answer = requests.request(method, url, timeout=TIMEOUT)
        assert answer.status_code == 404
        assert answer.json() == {"message": "Not Found"}
    assert len(stack.front.events) == sent  # no function was invoked


def test_launch_redirects_to_the_sandbox_with_the_binding_cookie(stack: LocalStack) -> None:
    answer = requests.get(stack.launch_url, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(stack.sandbox.authorize_url + "?")
    assert f"redirect_uri={requests.utils.quote(stack.install_url, safe='')}" in answer.headers["Location"]
    assert answer.headers["Set-Cookie"].startswith("__Host-bwp-oauth=")


# --- the whole flow, and one event through bus -> rule -> queue -> events function -----------------
def test_install_then_an_order_event_is_recorded_by_the_events_function(stack: LocalStack) -> None:
    installation_id = "amzn1.bwp.installation.e2e-events"
    installed = install(stack, installation_id)
    assert installed.status == 200 and "App installed" in installed.body
    item = stack.installation(installation_id)
    assert item is not None and item["status"] == "active"
    envelope = partner_event(
        "ORDER_CONFIRMED",
        [resource_path("bp-e2e", order_id="322-E2E-0000001")],
        event_format="legacy",
        installation_id=installation_id,
    )
    event_id = stack.publish(envelope)
    poller = stack.pollers["EventsFunction.PartnerEventsQueue"]
    stats = poller.run_until_idle(timeout=30)
    assert stats.records >= 1 and stats.failed == 0
    from tests.events_driver import find_event_record

    record = find_event_record(stack.client("dynamodb"), stack.aws.table_name(), event_id)
    assert record is not None, "the events function recorded nothing for the published event"
    assert record["installation_id"] == installation_id
    assert stack.functions["EventsFunction"].invocations >= 1


def test_an_event_from_another_source_never_reaches_the_queue(stack: LocalStack) -> None:
    stack.publish({"source": "com.example.other", "detail-type": "ORDER_CONFIRMED", "detail": {}})
    depth = stack.pollers["EventsFunction.PartnerEventsQueue"].queue_depth()
    assert depth == 0


def test_the_dev_banner_prints_working_urls(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools.local_stack.__main__ import _banner, parse_arguments

    monkeypatch.setenv("LOCAL_FRONT_PORT", "9710")
    arguments = parse_arguments(["--moto-port", "9712"])
    assert (arguments.front_port, arguments.sandbox_port, arguments.moto_port) == (9710, 8711, 9712)
    assert arguments.front_host == "localhost"
    installation_id = "amzn1.bwp.installation.e2e-banner"
    banner = _banner(stack, installation_id)
    assert stack.launch_url in banner
    settings_url = next(word for word in banner.split() if word.startswith(stack.settings_url + "?"))
    assert install(stack, installation_id).status == 200
    page = requests.get(settings_url, timeout=TIMEOUT)
    assert page.status_code == 200 and "Connected" in page.text
