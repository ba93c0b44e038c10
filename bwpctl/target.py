"""Where the commands act: a deployed stack (its outputs and parameters), a running local stack
(`make dev` writes `.local-stack.json`), or explicit names and endpoint."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_STATE = Path(__file__).resolve().parent.parent / ".local-stack.json"

OUTPUTS = {
    "table_name": "InstallationsTableName",
    "queue_url": "EventsQueueUrl",
    "dead_letter_queue_url": "EventsDeadLetterQueueUrl",
    "secret_arn": "ClientCredentialsSecretArn",
    "bus_name": "PartnerEventBusName",
    "rule_arn": "PartnerEventsRuleArn",
    "archive_arn": "PartnerEventArchiveArn",
}
PARAMETERS = {"token_url": "BwpTokenUrl", "graphql_url": "BwpGraphqlUrl", "api_version": "BwpApiVersion"}


@dataclass(frozen=True)
class Target:
    table_name: str
    queue_url: str = ""
    dead_letter_queue_url: str = ""
    secret_arn: str = ""
    bus_name: str = ""
    rule_arn: str = ""
    archive_arn: str = ""
    token_url: str = ""
    graphql_url: str = ""
    api_version: str = ""
    endpoint_url: str | None = None
    region: str | None = None

    def client(self, service: str) -> Any:
        import boto3

        options = {k: v for k, v in {"endpoint_url": self.endpoint_url, "region_name": self.region}.items() if v}
        return boto3.client(service, **options)

    def need(self, name: str) -> str:
        value = str(getattr(self, name))
        if not value:
            raise SystemExit(f"this command needs {name.replace('_', ' ')}, which the target does not give")
        return value


def local_target(path: Path | None = None) -> Target:
    path = path or LOCAL_STATE
    if not path.is_file():
        raise SystemExit(f"no local stack found ({path.name} is missing): start one with `make dev`")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SystemExit(f"{path.name} is unreadable ({error}): restart the local stack with `make dev`") from error
    if not isinstance(state, dict) or not state.get("table_name"):
        raise SystemExit(f"{path.name} names no table (stale or not written by `make dev`): restart `make dev`")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    known = set(Target.__dataclass_fields__)
    return Target(**{k: str(v) for k, v in state.items() if k in known and v is not None})


def resolve_target(
    stack: str | None,
    *,
    local: bool = False,
    table: str | None = None,
    queue_url: str | None = None,
    dlq_url: str | None = None,
    endpoint_url: str | None = None,
    archive_arn: str | None = None,
    rule_arn: str | None = None,
) -> Target:
    """`--local`, else explicit values over the stack's outputs (`--stack` or BWP_STACK)."""
    if local or os.environ.get("BWP_LOCAL") == "1":
        return local_target()
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    values: dict[str, Any] = {
        "table_name": table,
        "queue_url": queue_url,
        "dead_letter_queue_url": dlq_url,
        "archive_arn": archive_arn,
        "rule_arn": rule_arn,
    }
    stack = stack or os.environ.get("BWP_STACK")
    if stack:
        import boto3

        cloudformation = (
            boto3.client("cloudformation", endpoint_url=endpoint_url)
            if endpoint_url
            else boto3.client("cloudformation")
        )
        description = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in description.get("Parameters", [])}
        for name, output in OUTPUTS.items():
            values[name] = values.get(name) or outputs.get(output, "")
        for name, parameter in PARAMETERS.items():
            values[name] = parameters.get(parameter, "")
        if not values["table_name"]:
            raise SystemExit(f"stack {stack} has no {OUTPUTS['table_name']} output (not this project's stack?)")
    elif not table:
        raise SystemExit("name the stack (--stack or BWP_STACK), use --local, or give --table (and queue URLs)")
    from shared.settings import DEFAULT_GRAPHQL_URL, DEFAULT_TOKEN_URL

    values["token_url"] = values.get("token_url") or DEFAULT_TOKEN_URL
    values["graphql_url"] = values.get("graphql_url") or DEFAULT_GRAPHQL_URL
    clean: dict[str, str] = {k: str(v or "") for k, v in values.items()}
    return Target(**clean, endpoint_url=endpoint_url)
