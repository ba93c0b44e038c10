"""Run a sample event through a function's handler in-process, against moto and the Buy with
Prime sandbox, with the environment template.yaml gives the function: the Docker-free stand-in
for `sam local invoke`. `events/sqs-*.json` go to EventsFunction, `events/sweep*.json` to SweepFunction,
`events/broker-*.json` to TokenBrokerFunction, `events/outbox-*.json` to OutboxPublisherFunction,
`events/example-*.json` to ExampleConsumerFunction (calling TokenBrokerFunction through a loopback
function URL that checks its SigV4 signature),
the others to OAuthFunction."""

from __future__ import annotations

import importlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from devtools.apigw import LambdaContext
from devtools.atomic_dynamodb import AtomicDynamoDB
from devtools.template import function_environment, function_timeout, table_create_arguments

EVENTS = Path(__file__).resolve().parent.parent / "events"
SAMPLE_INSTALLATION = "amzn1.bwp.installation.sample-0001"
SAMPLE_BUSINESS_PRODUCT = "amzn1.bp.product.sample-0001"
SAMPLE_INSTALLED_AT = 1_767_225_600 - 86_400  # a day before the samples were signed
HANDLERS = {
    "OAuthFunction": "oauth.handler",
    "EventsFunction": "events.handler",
    "SweepFunction": "sweep.handler",
    "TokenBrokerFunction": "broker.handler",
    "OutboxPublisherFunction": "outbox.handler",
    "ExampleConsumerFunction": "example_consumer.handler",
}
PREFIXES = {
    "sqs-": "EventsFunction",
    "sweep": "SweepFunction",
    "broker-": "TokenBrokerFunction",
    "outbox-": "OutboxPublisherFunction",
    "example-": "ExampleConsumerFunction",
}


def function_for(event_file: Path) -> str:
    return next((f for prefix, f in PREFIXES.items() if event_file.name.startswith(prefix)), "OAuthFunction")


def function_env(function: str, local_names: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """The function's environment resolved with the local stack's resolver: parameters at their
    defaults, conditions evaluated (`!If`), resources by their local names."""
    from devtools.local_stack.intrinsics import LocalResource, Resolver
    from devtools.template import load_template

    def lookup(name: str) -> LocalResource:
        # the broker's function URL is served by the invoke itself (_invoke_consumer)
        return LocalResource(name, "", local_names.get(name, name), {"FunctionUrl": "http://127.0.0.1/"})

    resolver = Resolver(load_template(), lookup, pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"})
    env = {name: str(resolver.resolve(value)) for name, value in function_environment(function).items()}
    env.update(overrides)
    return env


def seed_local_resources(client_id: str, client_secret: str) -> dict[str, str]:
    """Create the table (from the template), the client-credentials secret and the app bus in the
    AWS the boto3 clients point at (moto); the names the template's Refs resolve to."""
    import boto3

    table = table_create_arguments(name="local-installations")
    boto3.client("dynamodb").create_table(**table)
    secret = boto3.client("secretsmanager").create_secret(
        Name="local-client-credentials",
        SecretString=json.dumps({"client_id": client_id, "client_secret": client_secret}),
    )
    bus = boto3.client("events").create_event_bus(Name="local-app-events")["EventBusArn"]
    return {
        "InstallationsTable": table["TableName"],
        "ClientCredentialsSecret": secret["ARN"],
        "EventsQueue": "",  # no queue in an invoke: records sent back keep the queue's own timeout
        "AppEventBus": bus.rpartition("/")[2],
    }


def invoke(event_file: Path, function: str | None = None) -> dict[str, Any]:
    """Create the table and secret in moto, start the sandbox, seed the sample installation, invoke."""
    import boto3
    from moto import mock_aws

    from sandbox.server import BuyWithPrimeSandbox

    function = function or function_for(event_file)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "local")
    event = json.loads(event_file.read_text(encoding="utf-8"))
    overrides: dict[str, str] = json.loads((EVENTS / "env.json").read_text(encoding="utf-8")).get(function, {})
    client_id, client_secret = "amzn1.application-oa2-client.local", secrets.token_urlsafe(24)
    with mock_aws(), BuyWithPrimeSandbox(client_id=client_id, client_secret=client_secret) as sandbox:
        dynamodb = boto3.client("dynamodb")
        local_names = seed_local_resources(client_id, client_secret)
        sandbox_endpoints = {
            "BWP_AUTHORIZE_URL": sandbox.authorize_url,
            "BWP_TOKEN_URL": sandbox.token_url,
            "BWP_GRAPHQL_URL": sandbox.graphql_url,
        }
        env = function_env(function, local_names, {**sandbox_endpoints, **overrides})
        _seed_sample_installation(dynamodb, local_names["InstallationsTable"], sandbox)
        os.environ.update({k: v for k, v in env.items() if k.startswith("POWERTOOLS_")})
        if function == "ExampleConsumerFunction":
            broker_env = function_env("TokenBrokerFunction", local_names, sandbox_endpoints)
            return _invoke_consumer(event, _container("TokenBrokerFunction", broker_env, dynamodb))
        handler = importlib.import_module(HANDLERS[function])
        handler.reset_dependencies(_container(function, env, dynamodb))
        try:
            answer: dict[str, Any] = handler.lambda_handler(event, LambdaContext(function, function_timeout(function)))
        finally:
            handler.reset_dependencies()
        if function == "EventsFunction":
            answer = {"response": answer, "stored": _stored_summary(dynamodb, local_names["InstallationsTable"])}
        return answer


def _container(function: str, env: dict[str, str], dynamodb: Any) -> Any:
    dependencies = importlib.import_module(HANDLERS[function].replace(".handler", ".dependencies"))
    deps = dependencies.Dependencies(env)
    deps.dynamodb = AtomicDynamoDB(dynamodb)  # in-process moto is not thread-safe; DynamoDB is atomic
    return deps


def _invoke_consumer(event: dict[str, Any], broker_deps: Any) -> dict[str, Any]:
    """The example consumer, its broker behind a loopback function URL signed for with local keys."""
    import boto3

    from broker import handler as broker
    from clients.token_broker import TokenBrokerClient
    from devtools.function_url import LocalFunctionUrl
    from example_consumer import handler

    keys = {"aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": "local-invoke"}
    url = LocalFunctionUrl(
        "TokenBrokerFunction",
        secrets={keys["aws_access_key_id"]: keys["aws_secret_access_key"]},
        region="us-east-1",
        account_id="123456789012",
    )
    timeout = function_timeout("TokenBrokerFunction")
    url.serve(lambda e: broker.handle(e, broker_deps, LambdaContext("TokenBrokerFunction", timeout)))
    try:
        handler.reset_dependencies(TokenBrokerClient(url.url, session=boto3.Session(**keys, region_name="us-east-1")))
        context = LambdaContext("ExampleConsumerFunction", function_timeout("ExampleConsumerFunction"))
        return handler.lambda_handler(event, context)
    finally:
        handler.reset_dependencies()
        url.stop()


def _local_bus(name: str) -> str:
    """The app event bus in moto (the outbox sample publishes on it); its name, as !Ref gives."""
    import boto3

    boto3.client("events").create_event_bus(Name=name)
    return name


def _seed_sample_installation(dynamodb: Any, table: str, sandbox: Any) -> None:
    """The installation the samples are signed for, with tokens the sandbox really issued."""
    from shared.models import TokenSet
    from shared.store.event_records import EventStore
    from shared.store.installations import InstallationStore

    tokens = TokenSet.model_validate(sandbox.issue_tokens(SAMPLE_INSTALLATION))
    InstallationStore(dynamodb, table).save_installation(SAMPLE_INSTALLATION, tokens, SAMPLE_INSTALLED_AT)
    EventStore(dynamodb, table).put_link(SAMPLE_BUSINESS_PRODUCT, SAMPLE_INSTALLATION, "sample")


def _stored_summary(dynamodb: Any, table: str) -> list[str]:
    """One line per event-pipeline item: what a reader of the table would see (no token)."""
    lines = []
    for item in dynamodb.scan(TableName=table)["Items"]:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk in ("EVENT", "EVENT_KEY"):  # under its ID, or under its idempotency key once processed
            lines.append(
                f"event {item['event_id']['S']}: {item.get('event_type', {}).get('S', '?')} -> {item['outcome']['S']}"
                + (f" ({item['reason']['S']})" if "reason" in item else "")
            )
        elif "kind" in item or sk == "STORE" or pk.startswith("ATTENTION#"):  # snapshots, store, attention
            lines.append(f"{pk} / {sk}")
    return sorted(lines)
