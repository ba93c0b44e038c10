"""One Lambda container as its own OS process, for the token-store tests: `python -m
tests.reliability.token_container` with the environment of a function (moto server, sandbox).

It builds the production collaborators (`shared.wiring.SharedDependencies`) once, like a cold
start, then answers one JSON command per stdin line with one `ANSWER {json}` line on stdout:

    {"op": "token", "installation_id": "...", "seconds": 5.0}        -> {"token_sha256": "..."}
                                                                       or {"error": "TypeName"}
    {"op": "throttle", "operation": "UpdateItem", "times": 9, "after": 1}  -> {"ok": true}
    {"op": "events", "bodies": ["<SQS body>", ...], "seconds": 20.0}      -> {"failures": [...]}
      (the events function's handler, with its own collaborators, built on first use)

`seconds` is the invocation's remaining time. `BUDGET` (JSON of TimeBudget's token/graphql fields
and scalars) scales the production budget down; `CLOCK_OFFSET` moves this container's wall clock.
Tokens never leave the process: only their SHA-256 does.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

from shared.budget import Deadline, HttpBudget, TimeBudget
from shared.wiring import SharedDependencies

ANSWER = "ANSWER "  # other stdout lines are the function's own log lines


def _budget() -> TimeBudget:
    raw = json.loads(os.environ.get("BUDGET", "{}"))
    http = {name: HttpBudget(**raw.pop(name)) for name in ("token", "graphql") if name in raw}
    return TimeBudget(**http, **raw)


def main() -> int:
    deps = SharedDependencies()
    deps.budget = _budget()  # type: ignore[misc]
    offset = float(os.environ.get("CLOCK_OFFSET", "0"))
    if offset:
        from shared.tokens import TokenCache, TokenService

        deps.tokens = TokenService(  # type: ignore[misc]
            deps.installations,
            deps.buy_with_prime,
            deps.credentials,
            TokenCache(),
            budget=deps.budget,
            clock=lambda: time.time() + offset,
        )
    faults: Any = None
    events: Any = None
    print(ANSWER + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "events":
            events = events or _events_dependencies(deps)
            answer = _handle_events(events, command["bodies"], command["seconds"])
        elif command["op"] == "throttle":
            from tests.reliability.wire_faults import WireFaults

            faults = faults or WireFaults(deps.dynamodb)
            faults.fail(
                command["operation"],
                "ProvisionedThroughputExceededException",
                command["times"],
                after=command.get("after", 0),
            )
            answer: dict[str, Any] = {"ok": True}
        else:
            try:
                token = deps.tokens.access_token(
                    command["installation_id"], deadline=Deadline.after(command["seconds"])
                )
                answer = {"token_sha256": hashlib.sha256(token.encode()).hexdigest()}
            except Exception as error:  # noqa: BLE001 - reported to the test
                answer = {"error": type(error).__name__}
        print(ANSWER + json.dumps(answer), flush=True)
    return 0


def _events_dependencies(shared: SharedDependencies) -> Any:
    from events.dependencies import Dependencies

    deps = Dependencies()
    deps.budget = shared.budget  # type: ignore[misc]
    return deps


def _handle_events(deps: Any, bodies: list[str], seconds: float) -> dict[str, Any]:
    from devtools.apigw import LambdaContext
    from devtools.sqs import sqs_record
    from events import handler

    records = [sqs_record(body) for body in bodies]
    answer = handler.handle({"Records": records}, LambdaContext("EventsFunction", timeout=seconds), deps)
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    return {"failures": [i for i, record in enumerate(records) if record["messageId"] in failed]}


if __name__ == "__main__":
    sys.exit(main())
