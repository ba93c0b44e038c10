"""The local stack's machinery against a small template of its own (tests/e2e/fixtures): generic
provisioning, intrinsics and conditions, parameter checks, the front's routing and answers, and
the two concurrency guards (one request at a time in moto, one invocation at a time per function)."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.local_stack import LocalAws, LocalFront, LocalFunction, start_local_aws
from devtools.local_stack.http_api import routes_from_template
from devtools.local_stack.intrinsics import LocalResource, Resolver, UnresolvableError
from devtools.template import load_template
from tests.e2e.conftest import FIXTURE_TEMPLATE

pytestmark = pytest.mark.e2e
TIMEOUT = 15


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with start_local_aws(FIXTURE_TEMPLATE) as running:
        yield running


@pytest.fixture(scope="module")
def front(aws: LocalAws) -> Iterator[LocalFront]:
    template = load_template(FIXTURE_TEMPLATE)
    front = LocalFront(routes_from_template(template), account_id=aws.account_id)
    echo = LocalFunction.from_template(
        template, "Echo", aws.env_for("Echo"), aws.region, aws.account_id, template_dir=FIXTURE_TEMPLATE.parent
    )
    front.serve({"Echo": echo})
    yield front
    front.stop()


def request(front: LocalFront, method: str, target: str, body: bytes = b"") -> tuple[int, list[tuple[str, str]], bytes]:
    parts = urlsplit(front.origin)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        connection.request(method, target, body=body or None)
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        connection.close()


def echoed(front: LocalFront, method: str, target: str, body: bytes = b"") -> dict[str, Any]:
    status, _, raw = request(front, method, target, body)
    assert status == 200, raw
    answer: dict[str, Any] = json.loads(raw)
    return answer


# --- provisioning --------------------------------------------------------------------------------
def test_every_supported_type_is_created_and_the_rest_is_listed(aws: LocalAws) -> None:
    assert {r.type for r in aws.resources.values()} == {
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
        "AWS::SQS::Queue",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
    }
    assert aws.skipped == {"Echo": "AWS::Serverless::Function is not needed locally"}
    assert any("CreateBus is false but treated as true" in note for note in aws.notes)
    assert any("moto never expires" in note for note in aws.notes)


def test_the_rule_sits_on_the_local_bus_mapped_from_the_template_name(aws: LocalAws) -> None:
    assert aws.bus_names == {"aws.partner/buywithprime/fixture": "bwp-local-partner-bus"}
    rule = aws.client("events").describe_rule(Name=aws.rule_name(), EventBusName=aws.bus_name)
    assert json.loads(rule["EventPattern"]) == {
        "source": [{"prefix": "aws.partner/buywithprime/"}],
        "detail-type": ["ORDER_CONFIRMED"],
    }


def test_a_matching_event_is_delivered_to_the_queue_without_account(aws: LocalAws) -> None:
    events = aws.client("events")
    for source, kind in (("aws.partner/buywithprime/fixture", "ORDER_CONFIRMED"), ("other", "ORDER_CONFIRMED")):
        entry = {"Source": source, "DetailType": kind, "Detail": "{}", "EventBusName": aws.bus_name}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url("Work"), MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert [b["source"] for b in bodies] == ["aws.partner/buywithprime/fixture"]
    assert "account" not in bodies[0]  # moto's gap (toolchain.md): consumers must not require it
    for message in messages["Messages"]:
        sqs.delete_message(QueueUrl=aws.queue_url("Work"), ReceiptHandle=message["ReceiptHandle"])


def test_the_environment_resolves_every_intrinsic_to_local_names(aws: LocalAws) -> None:
    env = aws.env_for("Echo")
    assert env == {
        "POWERTOOLS_SERVICE_NAME": "fixture",
        "TABLE_NAME": aws.table_name(),
        "SECRET_ARN": aws.secret_arn(),
        "QUEUE_URL": aws.queue_url("Work"),
        "BUS": aws.bus_name,
        "DLQ_NAME": aws.resources["DeadLetters"].attributes["QueueName"],
        "REGION_AND_TABLE": f"{aws.region}/{aws.table_name()}",
        "OPTIONAL": "bus",
    }
    assert aws.env_for("Echo", {"TABLE_NAME": "other"})["TABLE_NAME"] == "other"


def test_a_secret_without_a_given_value_is_generated_as_the_template_says(aws: LocalAws) -> None:
    value = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=aws.secret_arn())["SecretString"])
    assert value["client_id"] == "REPLACE_ME"
    assert len(value["client_secret"]) == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SourceName": "not-a-partner-source"}, "AllowedPattern"),
        ({"BusMode": "shared"}, "is not one of"),
        ({"BatchSize": "11"}, "MaxValue"),
        ({"Typo": "1"}, "lacks"),
    ],
)
def test_parameter_overrides_are_checked_like_cloudformation(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(UnresolvableError, match=message):
        start_local_aws(FIXTURE_TEMPLATE, parameter_overrides=overrides).stop()


def test_resources_whose_condition_is_false_are_not_created() -> None:
    with start_local_aws(FIXTURE_TEMPLATE, parameter_overrides={"SourceName": ""}) as aws:
        assert aws.skipped["Rule"] == "condition HasSource is false"
        assert "Rule" not in aws.resources
        assert aws.client("events").list_rules(EventBusName=aws.bus_name)["Rules"] == []


def test_the_resolver_handles_the_other_intrinsics() -> None:
    template = {
        "Parameters": {"P": {"Type": "String", "Default": "a,b,c"}},
        "Mappings": {"M": {"k": {"v": "mapped"}}},
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
    }
    names = {"Q": LocalResource("Q", "AWS::SQS::Queue", "url", {"Arn": "arn:q"})}
    resolver = Resolver(template, names.__getitem__, pseudo={"AWS::Region": "r"})
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "AWS::Region"}, "x"]]}) == "r-x"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "P"}]}]}) == "b"
    assert resolver.resolve({"Fn::Sub": ["${A}/${Q.Arn}/${!Literal}", {"A": {"Ref": "Q"}}]}) == "url/arn:q/${Literal}"
    assert resolver.resolve({"Fn::FindInMap": ["M", "k", "v"]}) == "mapped"
    assert resolver.resolve([{"Ref": "AWS::NoValue"}, "kept"]) == ["kept"]
    with pytest.raises(UnresolvableError, match="Fn::Base64"):
        resolver.resolve({"Fn::Base64": "x"})


# --- the front -------------------------------------------------------------------------------------
def test_route_keys_and_path_parameters_follow_the_template(front: LocalFront) -> None:
    item = echoed(front, "POST", "/items/42?x=%41", b"{}")
    assert item["function"] == "Echo"
    assert item["event"]["routeKey"] == "POST /items/{id}"
    assert item["event"]["pathParameters"] == {"id": "42"}
    assert item["event"]["rawQueryString"] == "x=%41"
    greedy = echoed(front, "DELETE", "/files/a/b%20c/d")["event"]
    assert greedy["routeKey"] == "ANY /files/{proxy+}"
    assert greedy["rawPath"] == "/files/a/b%20c/d"
    assert greedy["pathParameters"] == {"proxy": "a/b c/d"}


def test_cookies_become_separate_set_cookie_headers_and_base64_bodies_bytes(front: LocalFront) -> None:
    status, headers, body = request(front, "GET", "/echo?binary=1")
    assert status == 201
    assert [v for k, v in headers if k.lower() == "set-cookie"] == ["first=1; Path=/", "second=2; Path=/; HttpOnly"]
    assert body == bytes(range(256))


def test_a_failing_function_gets_api_gateways_500(front: LocalFront) -> None:
    status, _, body = request(front, "GET", "/echo?raise=1")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_routes_the_template_does_not_have_get_404(front: LocalFront) -> None:
    for method, target in (("GET", "/items/1"), ("POST", "/echo"), ("GET", "/"), ("GET", "/items/1/more")):
        status, _, body = request(front, method, target)
        assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_an_empty_or_text_body_is_not_base64(front: LocalFront) -> None:
    event = echoed(front, "POST", "/items/1", "plain t\u00e9xt".encode())["event"]
    assert event["isBase64Encoded"] is False and event["body"] == "plain t\u00e9xt"
    event = echoed(front, "POST", "/items/1", b"\xff\xfe\x00")["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xfe\x00"


# --- concurrency guards ------------------------------------------------------------------------------
def take_lease(
    client: Any, table: str, key: dict[str, Any], *, owner: str, start: threading.Barrier, won: list[str]
) -> None:
    """The token service's lease, reduced: take it if nobody holds it and the token is unchanged."""
    start.wait(TIMEOUT)
    try:
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET lease_owner = :me",
            ConditionExpression="attribute_not_exists(lease_owner) AND refresh_token = :rt",
            ExpressionAttributeValues={":me": {"S": owner}, ":rt": {"S": "r1"}},
        )
        won.append(owner)
    except client.exceptions.ConditionalCheckFailedException:
        pass


def test_moto_answers_one_dynamodb_request_at_a_time_so_conditional_writes_are_atomic(aws: LocalAws) -> None:
    table = aws.table_name()
    clients = [aws.client("dynamodb") for _ in range(8)]
    for trial in range(15):
        key = {"pk": {"S": f"lease-{trial}"}}
        clients[0].put_item(TableName=table, Item={**key, "refresh_token": {"S": "r1"}})
        start, won = threading.Barrier(len(clients)), []
        threads = [
            threading.Thread(
                target=take_lease, args=(c, table, key), kwargs={"owner": f"owner-{i}", "start": start, "won": won}
            )
            for i, c in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert len(won) == 1, f"trial {trial}: {won} all took the lease"
    assert aws._server.app.max_in_flight == 1


def test_one_function_runs_one_invocation_at_a_time(aws: LocalAws) -> None:
    template = load_template(FIXTURE_TEMPLATE)
    function = LocalFunction.from_template(
        template, "Echo", aws.env_for("Echo"), aws.region, aws.account_id, template_dir=FIXTURE_TEMPLATE.parent
    )
    inside, peak, lock = [0], [0], threading.Lock()

    def slow(event: dict[str, Any], context: Any) -> str:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return str(context.aws_request_id)

    function.handler = slow
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(function({}))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert peak[0] == 1
    assert len(set(results)) == 6  # a fresh context (request ID) per invocation
    assert function.invocations == 6


def test_an_sqs_long_poll_does_not_hold_up_dynamodb(aws: LocalAws) -> None:
    sqs = aws.client("sqs")
    poll = threading.Thread(
        target=sqs.receive_message, kwargs={"QueueUrl": aws.queue_url("DeadLetters"), "WaitTimeSeconds": 2}
    )
    poll.start()
    try:
        time.sleep(0.3)  # the long poll is now waiting inside moto
        started = time.monotonic()
        aws.client("dynamodb").get_item(TableName=aws.table_name(), Key={"pk": {"S": "none"}})
        assert time.monotonic() - started < 1.5
    finally:
        poll.join(TIMEOUT)
