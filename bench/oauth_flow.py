"""Launch + Install through the OAuth function's entry point (`lambda_handler`), server side only:
the merchant's consent (the sandbox's authorize step) happens between the two calls and is not
counted, and the time the handler waits on the sandbox's token endpoint is taken out.

The first flow runs on a fresh "container" (boto3 clients created, secret read, settings validated,
verification key loaded), its modules already imported (the cold-start rows count those); the
others are warm.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from bench.local import API_ORIGIN, Calls, SandboxTimer, World, instrumented
from bench.report import median
from devtools.apigw import LambdaContext, http_event

FIRST_REQUEST_MODULES = (
    "oauth.routes",
    "oauth.verification",
    "oauth.pages",
    "shared.buy_with_prime",
    "shared.credentials",
    "shared.settings",
    "shared.tokens",
    "shared.store.installations",
    "shared.store.oauth_states",
)


@dataclass
class FlowRun:
    handler_s: float  # launch + install, in the handler
    sandbox_s: float  # of which waiting on the sandbox (token endpoint)
    aws_s: float  # of which in AWS calls (moto)
    aws_requests: int
    clients_s: float = 0.0  # of which creating boto3 clients

    @property
    def server_s(self) -> float:
        return self.handler_s - self.sandbox_s


@dataclass
class OAuthResult:
    first: FlowRun
    warm: list[FlowRun] = field(default_factory=list)

    def median(self, what: str) -> float:
        return median([getattr(run, what) for run in self.warm])


def run(world: World, flows: int) -> OAuthResult:
    from oauth import handler
    from oauth.dependencies import Dependencies
    from shared.observability import logger

    for module in FIRST_REQUEST_MODULES:  # imported now: the cold-start rows count imports
        importlib.import_module(module)

    cast(logging.StreamHandler[Any], logger.registered_handler).setStream(
        io.StringIO()
    )  # logs at the template's level, not printed
    context = LambdaContext("OAuthFunction")
    calls = Calls()

    def invoke(event: dict[str, Any]) -> tuple[dict[str, Any], float]:
        with contextlib.redirect_stdout(io.StringIO()):  # the metrics' EMF lines
            start = time.perf_counter()
            answer = handler.lambda_handler(event, context)
            return answer, time.perf_counter() - start

    def flow(timer: SandboxTimer) -> FlowRun:
        clients_before = calls.clients_created_s
        calls.reset()
        timer.reset()
        launched, launch_s = invoke(http_event("GET", f"{API_ORIGIN}/launch"))
        assert launched["statusCode"] == 302, launched
        query = {k: v[0] for k, v in parse_qs(urlsplit(launched["headers"]["Location"]).query).items()}
        cookie = launched["cookies"][0].split(";")[0]
        aws_s, aws_requests = calls.busy(0, float("inf")), calls.total()
        calls.reset()
        redirect = world.sandbox.authorize(  # the merchant's consent: not the function's time
            installation_id=f"amzn1.bwp.installation.{uuid.uuid4().hex[:8]}",
            code_challenge=query["code_challenge"],
            redirect_uri=f"{API_ORIGIN}/install",
            state=query["state"],
        )
        installed, install_s = invoke(http_event("GET", redirect, cookies=[cookie]))
        assert installed["statusCode"] == 200, installed
        return FlowRun(
            handler_s=launch_s + install_s,
            sandbox_s=timer.spent(),
            aws_s=aws_s + calls.busy(0, float("inf")),
            aws_requests=aws_requests + calls.total(),
            clients_s=calls.clients_created_s - clients_before,
        )

    handler.reset_dependencies(instrumented(Dependencies, world.environ, calls))  # a fresh container
    with SandboxTimer() as timer:
        result = OAuthResult(first=flow(timer))
        for _ in range(flows):
            result.warm.append(flow(timer))
    handler.reset_dependencies()
    return result
