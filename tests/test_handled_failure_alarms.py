"""Each handled failure class, driven for real through a function, emits a metric (its EMF line)
that an alarm in template.yaml watches: namespace, name and every dimension."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from devtools.template import load_template, resources_of_type
from shared.failures import failure_class
from tests.app_driver import API_ORIGIN, AppDriver
from tests.events_driver import EventsDriver


def emitted(output: str) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of every EMF line printed."""
    found = set()
    for line in output.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = frozenset((name, str(blob[name])) for name in dimension_set)
                found |= {(directive["Namespace"], metric["Name"], dims) for metric in directive["Metrics"]}
    return found


def watched() -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of every metric an alarm watches, plain or in metric math."""
    found = set()
    for alarm in resources_of_type(load_template(), "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        metrics = [properties] + [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        for metric in metrics:
            dimensions = metric.get("Dimensions", [])
            if "MetricName" in metric and all(isinstance(d["Value"], str) for d in dimensions):
                dims = frozenset((d["Name"], d["Value"]) for d in dimensions)
                found.add((metric["Namespace"], metric["MetricName"], dims))
    return found


def handled_failures(output: str) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    return {metric for metric in emitted(output) if metric[1] == "HandledFailures"}


def _class_of(metrics: set[tuple[str, str, frozenset[tuple[str, str]]]]) -> set[str]:
    return {dict(dims)["class"] for _, _, dims in metrics}


class _Failing:
    """A DynamoDB client whose reads fail as `error`; everything else is the real (moto) client."""

    def __init__(self, client: Any, error: Exception) -> None:
        self._client, self._error = client, error

    def batch_get_item(self, **_: Any) -> Any:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "test"}}, "BatchGetItem")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("AccessDeniedException"), "permissions"),
        (_client_error("ResourceNotFoundException"), "configuration"),
        (_client_error("ProvisionedThroughputExceededException"), "aws_unavailable"),
        (EndpointConnectionError(endpoint_url="https://dynamodb.example"), "aws_unavailable"),
        (KeyError("surprise"), "unexpected"),
    ],
)
def test_an_events_batch_failing_on_the_table_is_counted_by_class_and_alarmed(
    events: EventsDriver, capsys: pytest.CaptureFixture[str], error: Exception, expected: str
) -> None:
    deps = events.new_lambda()
    deps.dynamodb = _Failing(deps.dynamodb, error)
    capsys.readouterr()
    answer, ids = events.handle(events.order_event("bp-1", "order-1"), deps=deps)
    assert events.failed_ids(answer) == sorted(ids)  # back to SQS, so Lambda's Errors stays at 0
    metrics = handled_failures(capsys.readouterr().out)
    assert _class_of(metrics) == {expected}
    assert metrics <= watched(), f"no alarm watches {metrics}"


def test_an_oauth_misconfiguration_is_counted_and_alarmed(
    app: AppDriver, secret_arn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps({"client_id": "REPLACE_ME", "client_secret": "generated"})
    )
    capsys.readouterr()
    response = app.call("GET", f"{API_ORIGIN}/launch")
    assert response.status == 500  # the merchant's page; Lambda's Errors metric stays at 0
    metrics = handled_failures(capsys.readouterr().out)
    assert _class_of(metrics) == {"configuration"}
    assert metrics <= watched()


def test_buy_with_prime_failures_are_left_to_their_own_counters() -> None:
    from shared.buy_with_prime import BuyWithPrimeError

    assert failure_class(BuyWithPrimeError("token endpoint down")) is None


def test_every_failure_class_has_an_alarm() -> None:
    from shared.failures import CLASSES

    alarmed = {dict(dims).get("class") for _, name, dims in watched() if name == "HandledFailures"}
    assert alarmed == set(CLASSES)
