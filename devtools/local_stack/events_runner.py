"""`python -m devtools.local_stack.events_runner`: the events function in a process of its own, fed
from an SQS queue on a moto server the way Lambda's event source mapping feeds it, so that a test
can kill it with SIGKILL mid-batch (a crashed, out-of-memory or timed-out Lambda) and start it
again.

- The function's configuration comes from the environment, exactly the template's variables of
  EventsFunction resolved to the local stack (TABLE_NAME, BWP_GRAPHQL_URL, ...) plus the process
  variables a Lambda has (AWS_ENDPOINT_URL -> moto, region, credentials): see `LocalStack.env_for`
  and `LocalAws.process_environment`.
- Messages left on the queue (reported failures, or a batch whose runner died) come back after the
  queue's visibility timeout, as with Lambda; `--retry-delay S` is the local stack's acceleration
  for reported failures only (they come back after S seconds; a dead runner's batch still waits
  for the visibility timeout).
- It always stops by itself: after `--max-seconds`, or once the queue has been empty for
  `--idle-seconds`.
- One JSON line per step on stderr: {"step": "batch", "messages": [{"id", "receive_count"}]} when a
  batch is handed to the function, {"step": "answered", "failed": [...]} when it answered, and
  {"step": "exit", ...}. The function's own logs and metrics (Powertools JSON) go to stdout, as
  in Lambda.
- `--graphql-read-timeout S` gives the function's GraphQL calls a read timeout of S seconds
  (production: 10 s), so that a test can make the sandbox slower than it without waiting 40 s.
  Token requests keep production's client: a read timeout on a refresh may lose a rotated
  refresh token (the documented hazard), which would blur a load test's expectations.
- With `--retry-delay S` the GraphQL circuit breaker's cool-down is S too (see
  `shorten_circuit_cool_down`).
- `--pause-after-answer S` waits S seconds between the function's answer and the deletion of the
  batch's messages: a kill in that window is a Lambda that finished its work but whose answer
  never reached the event source mapping, so the whole batch is delivered again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from devtools.local_stack.poller import SqsPoller, SqsSource

FUNCTION = "EventsFunction"


def _say(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, "pid": os.getpid(), "at": time.time(), **fields}), file=sys.stderr, flush=True)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.local_stack.events_runner", description=__doc__)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--queue-arn", required=True)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--batching-window", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop after this long whatever happens")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="stop once the queue was empty this long")
    parser.add_argument("--pause-after-answer", type=float, default=0.0, help="seconds between answer and delete")
    parser.add_argument("--retry-delay", type=int, default=None, help="reported failures come back after S s")
    parser.add_argument("--graphql-read-timeout", type=float, default=None, help="GraphQL calls' read timeout")
    arguments = parser.parse_args(argv)
    if arguments.max_seconds <= 0 or arguments.idle_seconds <= 0:
        parser.error("--max-seconds and --idle-seconds must be positive")
    return arguments


def traced(handler: Callable[[dict[str, Any], Any], Any], pause: float) -> Callable[[dict[str, Any], Any], Any]:
    """The function, announcing each batch before it runs and each answer after."""

    def run(event: dict[str, Any], context: Any) -> Any:
        records = event.get("Records") or []
        _say(
            "batch",
            messages=[
                {"id": r["messageId"], "receive_count": int(r["attributes"].get("ApproximateReceiveCount", "0"))}
                for r in records
            ],
        )
        answer = handler(event, context)
        failed = [f.get("itemIdentifier") for f in (answer or {}).get("batchItemFailures") or []]
        _say("answered", messages=[r["messageId"] for r in records], failed=failed)
        if pause > 0:
            time.sleep(pause)
        return answer

    return run


def shorten_graphql_read_timeout(function: Any, read_timeout: float) -> None:
    """Before the container's first use (like the tests' `deps.buy_with_prime = ...`): the pipeline
    gets a Buy with Prime client with this read timeout; the token service keeps the default one."""
    import requests
    from requests.adapters import HTTPAdapter

    from shared.budget import HttpBudget
    from shared.buy_with_prime import BuyWithPrimeClient

    deps = function.module.dependencies()
    tokens = deps.tokens  # built now, with the production client
    settings = deps.settings
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=max(10, settings.hydration_max_workers))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    deps.buy_with_prime = BuyWithPrimeClient(
        settings.bwp_token_url,
        settings.bwp_graphql_url,
        session=session,
        api_version=settings.bwp_api_version,
        graphql_budget=HttpBudget(read_timeout=read_timeout),
    )
    assert deps.tokens is tokens


def shorten_circuit_cool_down(function: Any, seconds: float) -> None:
    """The local acceleration of redelivery (a reported failure back after S s, not after its
    backoff of a minute or more) applies to the GraphQL circuit breaker too: its cool-down (30 s)
    is shortened to S, so a record sent back meets a probing breaker as in production, not an
    open one on every one of its receives."""
    deps = function.module.dependencies()
    deps.buy_with_prime.graphql_circuit.cool_down_seconds = seconds


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    import boto3

    from devtools.local_stack.functions import LocalFunction, function_environment
    from devtools.template import load_template

    template = load_template()
    variables = function_environment(template, FUNCTION)
    environment = {name: os.environ[name] for name in variables if name in os.environ}
    unset = sorted(set(variables) - set(environment))  # e.g. resolved to AWS::NoValue; settings judge
    region = os.environ.get("AWS_REGION", "us-east-1")
    function = LocalFunction.from_template(template, FUNCTION, environment, region, "123456789012")
    if arguments.graphql_read_timeout is not None:
        shorten_graphql_read_timeout(function, arguments.graphql_read_timeout)
    if arguments.retry_delay is not None:
        shorten_circuit_cool_down(function, arguments.retry_delay)
    source = SqsSource(
        arguments.queue_arn,
        batch_size=arguments.batch_size,
        batching_window=arguments.batching_window,
        report_batch_item_failures=True,
    )
    poller = SqsPoller(
        boto3.client("sqs"),
        arguments.queue_url,
        traced(function, arguments.pause_after_answer),
        source,
        region=region,
        context_factory=function.context,
        retry_delay_seconds=arguments.retry_delay,
    )
    started = time.monotonic()
    idle_since: float | None = None
    reason = "max_seconds"
    _say("started", unset_variables=unset)
    while time.monotonic() - started < arguments.max_seconds:
        try:
            received = poller.poll_once(wait_seconds=1)
        except Exception as error:  # noqa: BLE001 - like Lambda's poller: report, go on
            _say("error", error=repr(error))
            time.sleep(0.5)
            continue
        if received > 0:
            idle_since = None
            continue
        if poller.queue_depth() > 0:  # in flight or waiting out a visibility timeout
            idle_since = None
            time.sleep(0.1)
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since >= arguments.idle_seconds:
            reason = "idle"
            break
    stats = poller.stats
    _say("exit", reason=reason, batches=stats.batches, records=stats.records, deleted=stats.deleted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
