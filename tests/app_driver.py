"""Drives the OAuth function in-process: plays the merchant's browser (cookies) and Buy with
Prime (signed calls, via the sandbox), and reads the table to check side effects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.apigw import LambdaContext, http_event
from oauth import handler
from oauth.dependencies import Dependencies
from sandbox.server import BuyWithPrimeSandbox

API_ORIGIN = "https://abc123.execute-api.us-east-1.amazonaws.com"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Launched:
    response: Response
    state: str
    code_challenge: str
    cookie: str  # "name=value" as a browser would send it back


class AppDriver:
    def __init__(self, deps: Dependencies, sandbox: BuyWithPrimeSandbox, dynamodb: Any, table: str) -> None:
        self.deps = deps
        self.sandbox = sandbox
        self.dynamodb = dynamodb
        self.table = table
        self.origin = API_ORIGIN

    def call(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        cookies: list[str] | None = None,
        base64_body: bool | None = None,
        via_lambda_handler: bool = False,
    ) -> Response:
        event = http_event(method, url, body=body, headers=headers, cookies=cookies, base64_body=base64_body)
        if via_lambda_handler:
            handler.reset_dependencies(self.deps)
            raw = handler.lambda_handler(event, LambdaContext())
        else:
            raw = handler.handle(event, self.deps)
        return Response(raw["statusCode"], raw.get("headers", {}), raw.get("body", ""), raw.get("cookies", []))

    def launch(self) -> Launched:
        response = self.call("GET", f"{self.origin}/launch")
        query = {k: v[0] for k, v in parse_qs(urlsplit(response.location).query).items()}
        cookie = response.cookies[0].split(";")[0] if response.cookies else ""
        return Launched(response, query.get("state", ""), query.get("code_challenge", ""), cookie)

    def approve(self, launched: Launched, installation_id: str) -> str:
        """What the consent page does: the signed Install URL Buy with Prime redirects to."""
        return self.sandbox.authorize(
            installation_id=installation_id,
            code_challenge=launched.code_challenge,
            redirect_uri=f"{self.origin}/install",
            state=launched.state,
        )

    def install(self, installation_id: str = "amzn1.bwp.installation.one") -> Response:
        launched = self.launch()
        return self.call("GET", self.approve(launched, installation_id), cookies=[launched.cookie])

    def signed_url(self, path: str, installation_id: str, *, body: bytes = b"", query: str = "", **kw: Any) -> str:
        url = f"{self.origin}{path}" + (f"?{query}" if query else "")
        return self.sandbox.signer.sign_url(url, installation_id, body=body, **kw)

    def settings(self, installation_id: str) -> Response:
        return self.call("GET", self.signed_url("/settings", installation_id))

    def uninstall(
        self, installation_id: str, body: bytes = b'{"reason":"merchant uninstalled"}', **kw: Any
    ) -> Response:
        return self.call("POST", self.signed_url("/uninstall", installation_id, body=body, **kw), body=body)

    def items(self) -> list[dict[str, Any]]:
        """Every item in the table, sorted: compare before/after to prove 'no side effect'."""
        items = self.dynamodb.scan(TableName=self.table, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))

    def installation_item(self, installation_id: str) -> dict[str, Any] | None:
        key = {"pk": {"S": f"INSTALLATION#{installation_id}"}, "sk": {"S": "INSTALLATION"}}
        item: dict[str, Any] | None = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item
