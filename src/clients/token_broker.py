"""A client for the token broker (the stack's TokenBrokerUrl output), for the partner's own code.

Requests are signed with the caller's AWS credentials (SigV4, service `lambda`), as the broker's
function URL (AuthType AWS_IAM) requires; the role needs the stack's TokenBrokerInvokePolicy.
Copy this file into your code; it needs boto3 (botocore) and requests.

    broker = TokenBrokerClient(url)            # e.g. from the stack output TokenBrokerUrl
    token = broker.access_token(installation_id)              # {"accessToken", "expiresAt", ...}
    data = broker.graphql(installation_id, "query { buyWithPrimeStore { siteId } }")

Never cache the token past `expiresAt`; never refresh it yourself: the broker does, under the
integration's lease (a refresh token redeemed twice would be revoked).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


class TokenBrokerError(RuntimeError):
    """The broker refused: `code` is one of installation_not_found, uninstalled,
    needs_reauthorization, refresh_in_progress, upstream_unavailable, upstream_refused,
    bad_request, not_found, method_not_allowed, internal (or forbidden: not allowed by IAM)."""

    def __init__(self, status: int, code: str, message: str, retry_after: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class TokenBrokerClient:
    def __init__(
        self,
        url: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        http: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._url = url.rstrip("/")
        self._session = session or boto3.Session()
        self._region = region or self._session.region_name or "us-east-1"
        self._http = http or requests.Session()
        self._timeout = timeout

    def access_token(self, installation_id: str) -> dict[str, Any]:
        return self._call("token", {"installationId": installation_id})

    def graphql(self, installation_id: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Buy with Prime's `data`; raises TokenBrokerError("graphql_errors") with its errors."""
        answer = self._call("graphql", {"installationId": installation_id, "query": query, "variables": variables})
        if answer.get("errors"):
            raise TokenBrokerError(200, "graphql_errors", json.dumps(answer["errors"])[:1000])
        data: dict[str, Any] = answer.get("data") or {}
        return data

    def _call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload)
        request = AWSRequest(
            method="POST", url=f"{self._url}/{action}", data=body, headers={"Content-Type": "application/json"}
        )
        credentials = self._session.get_credentials()
        if credentials is None:
            raise TokenBrokerError(0, "no_credentials", "no AWS credentials to sign the request with")
        SigV4Auth(credentials.get_frozen_credentials(), "lambda", self._region).add_auth(request)
        answer = self._http.post(request.url, data=body, headers=dict(request.headers.items()), timeout=self._timeout)
        try:
            document = answer.json()
        except ValueError:
            document = {}
        if answer.status_code != 200:
            code = str(document.get("error") or ("forbidden" if answer.status_code == 403 else "unexpected_answer"))
            message = str(document.get("message") or document.get("Message") or answer.reason)
            raise TokenBrokerError(answer.status_code, code, message, answer.headers.get("Retry-After"))
        if not isinstance(document, dict):
            raise TokenBrokerError(answer.status_code, "unexpected_answer", "not a JSON object")
        return document
