"""The token broker (src/broker/): the partner's code gets valid tokens through the integration's
token service and lease, never a refresh token; typed errors; one audit line per call; and the
client module (src/clients/token_broker.py) signing its requests, against a loopback function URL
that checks the SigV4 signature (devtools/function_url.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from broker import handler
from broker.dependencies import Dependencies
from clients.token_broker import TokenBrokerClient, TokenBrokerError
from devtools.apigw import LambdaContext
from devtools.atomic_dynamodb import AtomicDynamoDB
from devtools.function_url import LocalFunctionUrl
from tests.events_driver import EventsDriver

INSTALLATION = "amzn1.bwp.installation.broker"
CALLER = "arn:aws:sts::123456789012:assumed-role/partner-app/session"
STORE_QUERY = "query BuyWithPrimeStore { buyWithPrimeStore { siteId widgetId } }"


def container(events: EventsDriver) -> Dependencies:
    deps = Dependencies(events.environ)
    deps.dynamodb = AtomicDynamoDB()
    return deps


def url_event(path: str, body: Any, *, method: str = "POST", caller: str | None = CALLER) -> dict[str, Any]:
    context: dict[str, Any] = {"http": {"method": method, "path": path}}
    if caller:
        context["authorizer"] = {"iam": {"userArn": caller, "accountId": "123456789012"}}
    text = body if isinstance(body, str) else json.dumps(body)
    return {"version": "2.0", "rawPath": path, "requestContext": context, "body": text, "isBase64Encoded": False}


def call(deps: Dependencies, path: str, body: Any, **kw: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = handler.handle(url_event(path, body, **kw), deps, LambdaContext("TokenBrokerFunction", timeout=30.0))
    return answer["statusCode"], json.loads(answer["body"]), answer["headers"]


def stored(events: EventsDriver) -> dict[str, Any]:
    item = AtomicDynamoDB().get_item(
        TableName=events.table, Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}}
    )["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_a_token_call_returns_the_stored_token_and_its_expiry_never_the_refresh_token(
    events: EventsDriver, caplog: pytest.LogCaptureFixture
) -> None:
    events.install(INSTALLATION)
    status, body, headers = call(container(events), "/token", {"installationId": INSTALLATION})
    item = stored(events)
    assert status == 200 and body["accessToken"] == item["access_token"]
    assert body["expiresAt"] == int(item["access_token_expires_at"]) > time.time()
    assert item["refresh_token"] not in json.dumps(body) and "refresh" not in json.dumps(body).lower()
    assert headers["Cache-Control"] == "no-store"
    audit = [vars(r) for r in caplog.records if r.getMessage() == "token broker call"]
    assert len(audit) == 1 and audit[0]["caller"] == CALLER and audit[0]["installation_id"] == INSTALLATION
    assert audit[0]["outcome"] == "ok" and item["access_token"] not in json.dumps(audit, default=str)


def test_concurrent_callers_of_an_expired_token_share_one_refresh_under_the_lease(events: EventsDriver) -> None:
    events.install(INSTALLATION, expired=True)
    events.sandbox.latency("token", 0.3)  # the refresh takes a while: the others wait for it
    answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    containers = [container(events) for _ in range(4)]  # separate Lambda containers

    def run(deps: Dependencies) -> None:
        answers.append(call(deps, "/token", {"installationId": INSTALLATION}))

    threads = [threading.Thread(target=run, args=(deps,)) for deps in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert events.sandbox.calls["token:refresh_token"] == 1
    assert events.sandbox.replayed_refresh_tokens == 0
    assert [status for status, _, _ in answers] == [200] * 4
    assert len({body["accessToken"] for _, body, _ in answers}) == 1


def test_unknown_uninstalled_and_revoked_installations_get_typed_errors(events: EventsDriver) -> None:
    deps = container(events)
    assert call(deps, "/token", {"installationId": "amzn1.bwp.installation.never"})[:2] == (
        404,
        {"error": "installation_not_found", "message": "no installation with this ID"},
    )
    events.install(INSTALLATION, expired=True)
    events.sandbox.revoke_refresh_tokens(INSTALLATION)
    status, body, _ = call(deps, "/token", {"installationId": INSTALLATION})
    assert (status, body["error"]) == (409, "needs_reauthorization")
    other = "amzn1.bwp.installation.gone"
    events.install(other)
    AtomicDynamoDB().update_item(
        TableName=events.table,
        Key={"pk": {"S": f"INSTALLATION#{other}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET #s = :u REMOVE access_token, refresh_token",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":u": {"S": "uninstalled"}},
    )
    status, body, _ = call(deps, "/token", {"installationId": other})
    assert (status, body["error"]) == (410, "uninstalled")


def test_graphql_runs_as_the_installation_and_replaces_a_revoked_token_once(events: EventsDriver) -> None:
    events.install(INSTALLATION)
    deps = container(events)
    status, body, _ = call(deps, "/graphql", {"installationId": INSTALLATION, "query": STORE_QUERY})
    assert status == 200 and "siteId" in body["data"]["buyWithPrimeStore"]
    events.sandbox.revoke_access_tokens(INSTALLATION)  # the cached token is refused now
    status, body, _ = call(deps, "/graphql", {"installationId": INSTALLATION, "query": STORE_QUERY})
    assert status == 200 and "siteId" in body["data"]["buyWithPrimeStore"]
    assert events.sandbox.calls["token:refresh_token"] == 1
    status, body, _ = call(deps, "/graphql", {"installationId": INSTALLATION, "query": "query { nope }"})
    assert status == 200 and body["data"] is None and body["errors"]  # Buy with Prime's answer, as it is


@pytest.mark.parametrize(
    ("path", "body", "method", "expected"),
    [
        ("/refresh", {"installationId": INSTALLATION}, "POST", (404, "not_found")),
        ("/token", {"installationId": INSTALLATION}, "GET", (405, "method_not_allowed")),
        ("/token", "{not json", "POST", (400, "bad_request")),
        ("/token", "[1, 2]", "POST", (400, "bad_request")),
        ("/token", {"installationId": ""}, "POST", (400, "bad_request")),
        ("/token", {"installationId": "x" * 300}, "POST", (400, "bad_request")),
        ("/token", "\ud800", "POST", (400, "bad_request")),
        ("/graphql", {"installationId": INSTALLATION}, "POST", (400, "bad_request")),
        ("/graphql", {"installationId": INSTALLATION, "query": "q", "variables": [1]}, "POST", (400, "bad_request")),
        ("/graphql", {"installationId": INSTALLATION, "query": "x" * 40_000}, "POST", (400, "bad_request")),
    ],
)
def test_bad_requests_are_refused_clearly(
    events: EventsDriver, path: str, body: Any, method: str, expected: tuple[int, str]
) -> None:
    events.install(INSTALLATION)
    status, answer, _ = call(container(events), path, body, method=method)
    assert (status, answer["error"]) == expected and "Traceback" not in json.dumps(answer)


SECRET_KEY = "x" * 40


@pytest.fixture
def broker_url(events: EventsDriver) -> Iterator[str]:
    deps = container(events)
    url = LocalFunctionUrl(
        "TokenBrokerFunction", secrets={"AKIDEXAMPLE": SECRET_KEY}, region="us-east-1", account_id="123456789012"
    )
    url.serve(lambda event: handler.handle(event, deps, LambdaContext("TokenBrokerFunction", timeout=30.0)))
    try:
        yield url.url
    finally:
        url.stop()


def test_the_client_module_signs_its_calls_and_raises_typed_errors(events: EventsDriver, broker_url: str) -> None:
    events.install(INSTALLATION)
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    client = TokenBrokerClient(broker_url, session=session)
    token = client.access_token(INSTALLATION)
    assert token["accessToken"] == stored(events)["access_token"]
    assert "siteId" in client.graphql(INSTALLATION, STORE_QUERY)["buyWithPrimeStore"]
    with pytest.raises(TokenBrokerError) as refused:
        client.access_token("amzn1.bwp.installation.never")
    assert (refused.value.status, refused.value.code) == (404, "installation_not_found")
    with pytest.raises(TokenBrokerError) as errors:
        client.graphql(INSTALLATION, "query { nope }")
    assert errors.value.code == "graphql_errors"


@pytest.mark.parametrize(
    "session",
    [
        boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="y" * 40, region_name="us-east-1"),
        boto3.Session(aws_access_key_id="AKIDOTHER", aws_secret_access_key=SECRET_KEY, region_name="us-east-1"),
        boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET_KEY, region_name="eu-west-1"),
    ],
    ids=["wrong-secret", "unknown-key", "wrong-region"],
)
def test_a_badly_signed_call_is_forbidden_before_the_broker_runs(
    events: EventsDriver, broker_url: str, session: boto3.Session, caplog: pytest.LogCaptureFixture
) -> None:
    events.install(INSTALLATION)
    with pytest.raises(TokenBrokerError) as refused:
        TokenBrokerClient(broker_url, session=session).access_token(INSTALLATION)
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert not [r for r in caplog.records if r.getMessage() == "token broker call"]


def test_an_unsigned_or_tampered_call_is_forbidden(events: EventsDriver, broker_url: str) -> None:
    import requests

    events.install(INSTALLATION)
    assert requests.post(broker_url + "token", json={"installationId": INSTALLATION}, timeout=10).status_code == 403
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    signed: dict[str, Any] = {}

    class Tamper(requests.Session):
        def post(self, url: str, data: Any = None, **kw: Any) -> Any:  # type: ignore[override]
            signed.update(url=url, headers=kw["headers"])
            return super().post(url, data=data.replace(INSTALLATION, "amzn1.bwp.installation.other"), **kw)

    with pytest.raises(TokenBrokerError) as refused:
        TokenBrokerClient(broker_url, session=session, http=Tamper()).access_token(INSTALLATION)
    assert refused.value.status == 403 and signed["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256")
