"""Where the commands act: a deployed stack (its outputs), or explicit names and endpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    table_name: str
    queue_url: str
    dead_letter_queue_url: str
    endpoint_url: str | None = None

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url) if self.endpoint_url else boto3.client(service)


OUTPUTS = {
    "table_name": "InstallationsTableName",
    "queue_url": "EventsQueueUrl",
    "dead_letter_queue_url": "EventsDeadLetterQueueUrl",
}


def resolve_target(
    stack: str | None,
    *,
    table: str | None = None,
    queue_url: str | None = None,
    dlq_url: str | None = None,
    endpoint_url: str | None = None,
) -> Target:
    """Explicit values win; the rest come from the stack's outputs (`--stack` or BWP_STACK)."""
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    explicit = {"table_name": table, "queue_url": queue_url, "dead_letter_queue_url": dlq_url}
    stack = stack or os.environ.get("BWP_STACK")
    if not all(explicit.values()):
        if not stack:
            raise SystemExit("name the stack (--stack or BWP_STACK) or give --table, --queue-url and --dlq-url")
        import boto3

        cloudformation = (
            boto3.client("cloudformation", endpoint_url=endpoint_url)
            if endpoint_url
            else boto3.client("cloudformation")
        )
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        }
        for field, output in OUTPUTS.items():
            if not explicit[field]:
                if output not in outputs:
                    raise SystemExit(f"stack {stack} has no output {output}")
                explicit[field] = outputs[output]
    return Target(
        table_name=str(explicit["table_name"]),
        queue_url=str(explicit["queue_url"]),
        dead_letter_queue_url=str(explicit["dead_letter_queue_url"]),
        endpoint_url=endpoint_url,
    )
