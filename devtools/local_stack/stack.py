"""`LocalStack`: the whole system on one machine, no Docker, no AWS account.

    with LocalStack() as stack:
        stack.launch_url            # open in a browser: consent on the sandbox, then "App installed"
        stack.signed_settings_url(installation_id)
        stack.uninstall(installation_id).json()   # {"status": "uninstalled"}
        stack.publish({...})        # onto the local bus -> rule -> queue -> events function

Started in this order, stopped in reverse (also when a start fails): the front's socket is bound
first (its origin is the Install URL the sandbox must know), the Buy with Prime sandbox, moto with
the template's resources, the functions behind the front, the SQS pollers.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import requests

from devtools.local_stack.aws import ACCOUNT_ID, DEFAULT_REGION, LOCAL_CREDENTIALS, LocalAws, start_local_aws
from devtools.local_stack.front import LocalFront
from devtools.local_stack.functions import (
    LocalFunction,
    add_code_root,
    function_events,
    function_properties,
    functions,
)
from devtools.local_stack.http_api import routes_from_template
from devtools.local_stack.poller import SqsPoller, SqsSource, sqs_source_from_properties
from devtools.local_stack.process_env import ProcessEnvironment
from devtools.local_stack.rule_relay import DEFAULT_ASYNC_RETRIES, BusTap, RelayedFunction, create_relay
from devtools.local_stack.stream_poller import StreamPoller, stream_source_from_properties
from devtools.local_stack.throttle import TokenBucket, route_buckets
from devtools.template import PROJECT_ROOT, TEMPLATE_PATH, load_template
from sandbox.events import SOURCE as SANDBOX_EVENT_SOURCE
from sandbox.server import BuyWithPrimeSandbox

if TYPE_CHECKING:  # devtools.function_url imports this package's front: imported when used
    from devtools.function_url import LocalFunctionUrl

log = logging.getLogger("devtools.local_stack")

LOCAL_CLIENT_ID = "amzn1.application-oa2-client.local"
# Template parameters the local stack sets (when the template has them): a partner event source
# name, so the bus and rule exist locally (the sandbox's events use this source); the example
# consumer, so `make dev` shows the partner's side too.
LOCAL_PARAMETERS = {"PartnerEventSourceName": SANDBOX_EVENT_SOURCE, "DeployExampleConsumer": "true"}
APP_EVENT_SOURCE = "buy-with-prime.integration"  # src/outbox/mapping.py: what the tap shows
_ACTIVE = threading.Lock()  # moto's state is per process: one stack at a time


class LocalStack:
    def __init__(
        self,
        *,
        front_port: int = 0,
        sandbox_port: int = 0,
        moto_port: int = 0,
        front_host: str = "localhost",
        template: Mapping[str, Any] | str | Path = TEMPLATE_PATH,
        client_id: str = LOCAL_CLIENT_ID,
        client_secret: str | None = None,
        installation_id: str | None = None,
        events: bool | None = None,
        background_polling: bool = True,
        retry_delay_seconds: int | None = 2,
        parameter_overrides: Mapping[str, str] | None = None,
        on_app_event: Callable[[dict[str, Any]], None] | None = None,
        app_events: bool = True,
        route_throttling: bool = False,
    ) -> None:
        """`front_host`: the app's host name; "localhost" (default) makes it another site than the
        sandbox on 127.0.0.1, as the app and Buy with Prime are in production (SameSite applies).
        `events`: None starts the SQS-fed functions whose handler module exists, True requires
        them, False never starts them. `retry_delay_seconds`: the poller's local acceleration (None
        = wait for the queue's visibility timeout, as Lambda does). `on_app_event`: called with
        every event the integration publishes on the app bus (`app_events` keeps the last 1000).
        `app_events=False`: the table's stream is not polled and the app bus's rules reach nothing
        (the demo, which counts every Buy with Prime call and log line, runs without them).
        `route_throttling`: the HttpApi's per-route limits on the front (`make dev` and the flood
        test turn it on; load tests that install thousands of merchants through Launch leave it off)."""
        self.template = load_template(template) if isinstance(template, (str, Path)) else template
        self._template_dir = Path(template).resolve().parent if isinstance(template, (str, Path)) else PROJECT_ROOT
        self._ports = (front_port, sandbox_port, moto_port)
        self._front_host = front_host
        self._client_id = client_id
        self._client_secret = client_secret or secrets.token_urlsafe(24)
        self._installation_id = installation_id
        self._events = events
        self._background_polling = background_polling
        self._retry_delay = retry_delay_seconds
        declared = self.template.get("Parameters", {})
        self._parameter_overrides = {
            **{name: value for name, value in LOCAL_PARAMETERS.items() if name in declared},
            **(parameter_overrides or {}),
        }
        self._exit = ExitStack()
        self._front: LocalFront | None = None
        self._sandbox: BuyWithPrimeSandbox | None = None
        self._aws: LocalAws | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: dict[str, SqsPoller] = {}
        self.stream_pollers: dict[str, StreamPoller] = {}
        self.relays: dict[str, RelayedFunction] = {}  # functions invoked by rules, by "Function.Event"
        self.function_urls: dict[str, LocalFunctionUrl] = {}
        self._tap = BusTap(on_app_event)
        self._app_events = app_events
        self._route_throttling = route_throttling
        self.notes: list[str] = []

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalStack:
        if not _ACTIVE.acquire(blocking=False):
            raise RuntimeError("another LocalStack runs in this process (moto's state is per process)")
        self._exit.callback(_ACTIVE.release)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        front_port, sandbox_port, moto_port = self._ports
        routes = routes_from_template(self.template)
        self._front = front = LocalFront(routes, port=front_port, account_id=ACCOUNT_ID, public_host=self._front_host)
        self._exit.callback(front.stop)
        self._sandbox = BuyWithPrimeSandbox(
            self._client_id,
            self._client_secret,
            redirect_uri=f"{front.origin}/install",
            port=sandbox_port,
            default_installation_id=self._installation_id,
        ).start()
        self._exit.callback(self._sandbox.stop)
        credentials = json.dumps({"client_id": self._client_id, "client_secret": self._client_secret})
        self._bind_function_urls()
        self._aws = aws = start_local_aws(
            self.template,
            port=moto_port,
            default_secret_value=credentials,
            parameter_overrides=self._parameter_overrides,
            function_urls={f"{name}Url": url.url for name, url in self.function_urls.items()},
        )
        self._exit.callback(aws.stop)
        environment = ProcessEnvironment()
        self._exit.callback(environment.restore)
        environment.unset("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
        environment.set(aws.process_environment(), "the local stack")
        for function in sorted({route.function for route in routes}):
            self._start_function(function, environment)
        if self._route_throttling:
            front.throttles = self._route_throttles(routes)
        front.serve(self.functions)
        for name, url in self.function_urls.items():
            if aws.deployed(name):
                url.serve(self._start_function(name, environment))
        for function in functions(self.template):
            if function_events(self.template, function, "SQS") and self._wants_events(function):
                try:
                    self._start_pollers(function, environment)
                except ImportError as error:
                    if self._events:
                        raise
                    self.notes.append(f"{function}: its handler does not import ({error!r}); its queue is not polled")
                    log.warning("%s", self.notes[-1])
        if self._events is not False and self._app_events:
            self._start_app_event_delivery(environment)

    def _route_throttles(self, routes: list[Any]) -> dict[str, TokenBucket]:
        """API Gateway's per-route limits, from the template's HttpApi (one HttpApi, or none)."""
        apis = [r for r in self.template["Resources"].values() if r.get("Type") == "AWS::Serverless::HttpApi"]
        if len(apis) != 1:
            return {}
        properties = self.aws.resolve(apis[0].get("Properties", {}))
        buckets = route_buckets(properties, [route.key for route in routes])
        if buckets:
            self.notes.append("route throttles as the template sets them, counted by this one process")
        return buckets

    def _bind_function_urls(self) -> None:
        """Each FunctionUrlConfig's URL on loopback, bound first (the URL is in other functions'
        environments); requests must carry a valid SigV4 signature of the local credentials."""
        from devtools.function_url import LocalFunctionUrl

        for function in functions(self.template):
            if "FunctionUrlConfig" in function_properties(self.template, function):
                url = LocalFunctionUrl(
                    function,
                    secrets={LOCAL_CREDENTIALS["aws_access_key_id"]: LOCAL_CREDENTIALS["aws_secret_access_key"]},
                    region=DEFAULT_REGION,
                    account_id=ACCOUNT_ID,
                )
                self.function_urls[function] = url
                self._exit.callback(url.stop)

    def _start_app_event_delivery(self, environment: ProcessEnvironment) -> None:
        """The table's stream into its function (the outbox), the app bus's rules into theirs, and
        a tap on the app bus (`app_events`, `on_app_event`)."""
        for function in functions(self.template):
            if not self.aws.deployed(function):
                continue
            streams = function_events(self.template, function, "DynamoDB")
            rules = function_events(self.template, function, "EventBridgeRule")
            if (streams or rules) and self._wants_events(function):
                for name, raw in streams.items():
                    self._start_stream_poller(function, name, raw, environment)
                for name, raw in rules.items():
                    self._start_rule_relay(function, name, raw, environment)
        try:
            bus = self.aws.app_bus_name
        except LookupError:
            return
        url, arn = create_relay(
            self.client("events"),
            self.client("sqs"),
            bus=bus,
            rule="local-app-bus-tap",
            pattern={"source": [APP_EVENT_SOURCE]},
        )
        self._poll(f"tap.{bus}", url, self._tap, SqsSource(arn, batch_size=10), None)

    @property
    def app_events(self) -> list[dict[str, Any]]:
        """The events published on the app bus so far (the last 1000), oldest first."""
        return list(self._tap.seen)

    def _start_stream_poller(
        self, function: str, name: str, raw: dict[str, Any], environment: ProcessEnvironment
    ) -> None:
        local = self._start_function(function, environment)
        poller = StreamPoller(
            self.client("dynamodbstreams"),
            self.client("sqs"),
            local,
            stream_source_from_properties(self.aws.resolve(raw)),
            region=self.aws.region,
            function_arn=str(self.aws.resolve({"Fn::GetAtt": [function, "Arn"]})),
            queue_url_of=self.aws.queue_url_of,
            context_factory=local.context,
            retry_delay_seconds=float(self._retry_delay if self._retry_delay is not None else 1),
        )
        self.stream_pollers[f"{function}.{name}"] = poller
        if self._background_polling and poller.source.enabled:
            poller.start()
            self._exit.callback(poller.stop)

    def _start_rule_relay(self, function: str, name: str, raw: dict[str, Any], environment: ProcessEnvironment) -> None:
        local = self._start_function(function, environment)
        properties = self.aws.resolve(raw)
        bus = self.aws.local_bus_name(properties.get("EventBusName"))
        url, arn = create_relay(
            self.client("events"), self.client("sqs"), bus=bus, rule=f"{function}-{name}", pattern=properties["Pattern"]
        )
        invoke = self.aws.resolve(function_properties(self.template, function).get("EventInvokeConfig") or {})
        destination = ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        sqs = self.client("sqs")
        relayed = RelayedFunction(
            local,
            str(self.aws.resolve({"Fn::GetAtt": [function, "Arn"]})),
            int(invoke.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES)),
            (lambda body: sqs.send_message(QueueUrl=self.aws.queue_url_of(destination), MessageBody=body))
            if destination
            else None,
            context_factory=local.context,
        )
        self.relays[f"{function}.{name}"] = relayed
        self._poll(f"{function}.{name}", url, relayed, SqsSource(arn, batch_size=1), self._retry_delay)

    def _poll(self, key: str, url: str, handler: Any, source: SqsSource, retry_delay: int | None) -> None:
        poller = SqsPoller(
            self.client("sqs"), url, handler, source, region=self.aws.region, retry_delay_seconds=retry_delay
        )
        self.pollers[key] = poller
        if self._background_polling:
            poller.start()
            self._exit.callback(poller.stop)

    def _local_overrides(self) -> dict[str, str]:
        """Everything local is configuration: Buy with Prime is the sandbox, the app is the front."""
        assert self._sandbox is not None and self._front is not None
        return {
            "BWP_AUTHORIZE_URL": self._sandbox.authorize_url,
            "BWP_TOKEN_URL": self._sandbox.token_url,
            "BWP_GRAPHQL_URL": self._sandbox.graphql_url,
            "BWP_VERIFICATION_PUBLIC_KEY": self._sandbox.signer.public_key_pem,
            "PUBLIC_BASE_URL": self._front.origin,
        }

    def env_for(self, function: str) -> dict[str, str]:
        variables = set(self.aws.env_for(function))
        overrides = {k: v for k, v in self._local_overrides().items() if k in variables}
        return self.aws.env_for(function, overrides)

    def _start_function(self, function: str, environment: ProcessEnvironment) -> LocalFunction:
        if function in self.functions:
            return self.functions[function]
        env = self.env_for(function)
        environment.set(env, function)
        local = LocalFunction.from_template(
            self.template, function, env, self.aws.region, self.aws.account_id, template_dir=self._template_dir
        )
        self.functions[function] = local
        self._exit.callback(local.close)
        return local

    def _wants_events(self, function: str) -> bool:
        if self._events is not None:
            return self._events
        properties = function_properties(self.template, function)
        add_code_root(properties, self._template_dir)
        module = str(properties["Handler"]).rpartition(".")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            self.notes.append(f"{function}: {module} does not exist yet, its queue is not polled")
        return found

    def _start_pollers(self, function: str, environment: ProcessEnvironment) -> None:
        local = self._start_function(function, environment)
        if self._retry_delay is not None:
            from devtools.local_stack.events_runner import shorten_circuit_cool_down

            shorten_circuit_cool_down(local, self._retry_delay)
        for name, raw in function_events(self.template, function, "SQS").items():
            properties = self.aws.resolve(raw)
            source = sqs_source_from_properties(properties)
            concurrency = (properties.get("ScalingConfig") or {}).get("MaximumConcurrency")
            if concurrency:
                self.notes.append(f"{function}.{name}: one batch at a time locally (MaximumConcurrency {concurrency})")
            queue = next(
                r
                for r in self.aws.resources.values()
                if r.type == "AWS::SQS::Queue" and r.attributes["Arn"] == source.queue_arn
            )
            poller = SqsPoller(
                self.aws.client("sqs"),
                queue.ref,
                local,
                source,
                region=self.aws.region,
                context_factory=local.context,
                retry_delay_seconds=self._retry_delay,
            )
            self.pollers[f"{function}.{name}"] = poller
            if self._background_polling and source.enabled:
                poller.start()
                self._exit.callback(poller.stop)

    def stop(self) -> None:
        self._exit.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- parts ---------------------------------------------------------------------------------
    @property
    def aws(self) -> LocalAws:
        if self._aws is None:
            raise RuntimeError("the stack is not started")
        return self._aws

    @property
    def sandbox(self) -> BuyWithPrimeSandbox:
        if self._sandbox is None:
            raise RuntimeError("the stack is not started")
        return self._sandbox

    @property
    def front(self) -> LocalFront:
        if self._front is None:
            raise RuntimeError("the stack is not started")
        return self._front

    def client(self, service: str) -> Any:
        """A boto3 client bound to the local moto endpoint."""
        return self.aws.client(service)

    # --- URLs ----------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        if not any(route.path == path for route in self.front.routes):
            raise LookupError(f"the template has no HttpApi route for {path}")
        return self.front.origin + path

    @property
    def launch_url(self) -> str:
        return self.url("/launch")

    @property
    def install_url(self) -> str:
        return self.url("/install")

    @property
    def settings_url(self) -> str:
        return self.url("/settings")

    @property
    def uninstall_url(self) -> str:
        return self.url("/uninstall")

    @property
    def health_url(self) -> str:
        return self.url("/health")

    # --- acting as Buy with Prime ----------------------------------------------------------------
    def signed_settings_url(self, installation_id: str, *, expires_in: int = 300) -> str:
        """The Settings URL as Buy with Prime opens it: with a verification-token for this URL."""
        return self.sandbox.signer.sign_url(self.settings_url, installation_id, expires_in=expires_in)

    def uninstall(self, installation_id: str, body: bytes | None = None) -> requests.Response:
        """POST the Uninstall URL as Buy with Prime does: a JSON body, the token signed over URL + body."""
        payload = body if body is not None else json.dumps({"installationId": installation_id}).encode()
        url = self.sandbox.signer.sign_url(self.uninstall_url, installation_id, body=payload)
        return requests.post(url, data=payload, headers={"Content-Type": "application/json"}, timeout=15)

    def publish(self, event: Mapping[str, Any]) -> str:
        """Put a Buy with Prime event envelope on the local bus; its EventBridge event ID."""
        entry: dict[str, Any] = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event.get("detail", {})),
            "Resources": list(event.get("resources", [])),
            "EventBusName": self.aws.bus_name,
        }
        if event.get("time"):
            entry["Time"] = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        answer = self.client("events").put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"put_events failed: {answer['Entries']}")
        return str(answer["Entries"][0]["EventId"])

    def installation(self, installation_id: str) -> dict[str, Any] | None:
        """The installation's item in the local table (plain values), or None."""
        from shared.store.keys import installation_key

        key = installation_key(installation_id)
        item = self.client("dynamodb").get_item(TableName=self.aws.table_name(), Key=key, ConsistentRead=True)
        found = item.get("Item")
        if found is None:
            return None
        return {name: next(iter(value.values())) for name, value in found.items()}
