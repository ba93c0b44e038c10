"""The template's AWS resources, created in moto (server mode) on this machine.

    with start_local_aws(default_secret_value=credentials_json) as aws:
        aws.table_name(), aws.queue_url("EventsQueue"), aws.bus_name, aws.env_for("OAuthFunction")

Everything comes from template.yaml: each resource is created from its own Properties with
Ref/GetAtt/Sub/If resolved to local names, and a function's environment is exactly the template's
variables resolved the same way. What differs locally is listed in `notes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from devtools.local_stack.functions import function_environment
from devtools.local_stack.intrinsics import NO_VALUE, LocalResource
from devtools.local_stack.moto_server import SerialisedMotoServer
from devtools.local_stack.provision import DEFAULT_BUS_NAME, Provisioner
from devtools.template import TEMPLATE_PATH, load_template

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class LocalAws:
    """moto server + the resources provisioned from a template; stop() (or `with`) ends it."""

    def __init__(self, server: SerialisedMotoServer, provisioner: Provisioner, region: str) -> None:
        self._server = server
        self._provisioner = provisioner
        self.endpoint_url = server.endpoint_url
        self.region = region
        self.account_id = provisioner.account_id
        self.template: Mapping[str, Any] = provisioner.template

    # --- what was created ----------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, LocalResource]:
        return dict(self._provisioner.resources)

    @property
    def skipped(self) -> dict[str, str]:
        return dict(self._provisioner.skipped)

    @property
    def notes(self) -> list[str]:
        return list(self._provisioner.notes)

    @property
    def bus_names(self) -> dict[str, str]:
        """Template bus name (e.g. aws.partner/buywithprime/x) -> local bus name."""
        return dict(self._provisioner.bus_names)

    def deployed(self, logical_id: str) -> bool:
        """Whether the template's resource exists with these parameters (its Condition holds)."""
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self._provisioner.resolver.condition(str(condition))

    def queue_url_of(self, arn: str) -> str:
        """The local URL of a created queue, by its ARN."""
        for resource in self._provisioner.resources.values():
            if resource.type == "AWS::SQS::Queue" and resource.attributes["Arn"] == arn:
                return resource.ref
        raise LookupError(f"no queue of this template has the ARN {arn}")

    def _only(self, kind: str, logical_id: str | None) -> LocalResource:
        if logical_id is not None:
            resource = self._provisioner.resources[logical_id]
            if resource.type != kind:
                raise ValueError(f"{logical_id} is a {resource.type}, not a {kind}")
            return resource
        found = [r for r in self._provisioner.resources.values() if r.type == kind]
        if len(found) != 1:
            raise LookupError(f"{len(found)} resources of type {kind}: name the logical ID")
        return found[0]

    def table_name(self, logical_id: str | None = None) -> str:
        return self._only("AWS::DynamoDB::Table", logical_id).ref

    def secret_arn(self, logical_id: str | None = None) -> str:
        return self._only("AWS::SecretsManager::Secret", logical_id).ref

    def queue_url(self, logical_id: str) -> str:
        return self._only("AWS::SQS::Queue", logical_id).ref

    def queue_arn(self, logical_id: str) -> str:
        return self._only("AWS::SQS::Queue", logical_id).attributes["Arn"]

    def rule_name(self, logical_id: str | None = None) -> str:
        return self._only("AWS::Events::Rule", logical_id).ref

    @property
    def bus_name(self) -> str:
        """The partner bus's local name (the app event bus: `app_bus_name`)."""
        buses = [r for r in self._provisioner.resources.values() if r.type == "AWS::Events::EventBus"]
        partner = [r for r in buses if r.logical_id != "AppEventBus"]
        if len(partner) != 1:
            raise LookupError(f"{len(partner)} partner buses")
        return partner[0].ref

    @property
    def app_bus_name(self) -> str:
        return self._only("AWS::Events::EventBus", "AppEventBus").ref

    def resolve(self, value: Any) -> Any:
        """Resolve any template value (intrinsics included) to its local value."""
        return self._provisioner.resolver.resolve(value)

    def local_bus_name(self, name_or_arn: str | None) -> str:
        return self._provisioner.local_bus_name(name_or_arn)

    # --- clients and environments ------------------------------------------------------------
    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region, **LOCAL_CREDENTIALS)

    def process_environment(self) -> dict[str, str]:
        """What a Lambda's process has besides the template's variables, pointed at moto."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        }

    def env_for(self, function_logical_id: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The function's environment as the template sets it, resolved to local names; overrides
        may only replace variables the template gives the function (no local-only settings)."""
        variables = function_environment(self.template, function_logical_id)
        unknown = set(overrides or {}) - set(variables)
        if unknown:
            raise ValueError(f"{function_logical_id} has no variables {sorted(unknown)} in the template")
        env: dict[str, str] = {}
        for name, value in variables.items():
            resolved = self.resolve(value)
            if resolved is NO_VALUE:
                continue
            if isinstance(resolved, (dict, list)):
                raise ValueError(f"{function_logical_id}.{name} resolves to {resolved!r}, not a string")
            env[name] = str(resolved).lower() if isinstance(resolved, bool) else str(resolved)
        env.update(overrides or {})
        return env

    # --- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalAws:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_local_aws(
    template: Mapping[str, Any] | str | Path = TEMPLATE_PATH,
    *,
    port: int = 0,
    region: str = DEFAULT_REGION,
    stack_name: str = "bwp-local",
    bus_name: str = DEFAULT_BUS_NAME,
    secret_values: Mapping[str, str] | None = None,
    default_secret_value: str | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
    function_urls: Mapping[str, str] | None = None,
) -> LocalAws:
    """Start moto on 127.0.0.1:`port` (0 = free port), reset it, provision `template`'s resources.

    moto's state is global to the process: run one LocalAws per process at a time.
    """
    loaded = load_template(template) if isinstance(template, (str, Path)) else template
    server = SerialisedMotoServer(port=port)
    server.start()
    try:
        _reset(server.endpoint_url)
        provisioner = Provisioner(
            loaded,
            lambda service: boto3.client(
                service, endpoint_url=server.endpoint_url, region_name=region, **LOCAL_CREDENTIALS
            ),
            region=region,
            account_id=ACCOUNT_ID,
            stack_name=stack_name,
            bus_name=bus_name,
            secret_values=secret_values,
            default_secret_value=default_secret_value,
            parameter_overrides=parameter_overrides,
            function_urls=function_urls,
        )
        provisioner.provision_all()
    except BaseException:
        server.stop()
        raise
    return LocalAws(server, provisioner, region)


def _reset(endpoint_url: str) -> None:
    import requests

    requests.post(f"{endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
