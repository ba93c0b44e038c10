"""`LocalFunctionUrl`: a Lambda function URL with AuthType AWS_IAM on 127.0.0.1.

AWS checks each request's SigV4 signature (service `lambda`) and the caller's permission to
`lambda:InvokeFunctionUrl`, then sends the function the payload-2.0 event with the caller in
`requestContext.authorizer.iam`. Here the signature is checked for real, against the secret keys
given (the local stack's credentials): a wrong key, service, region, body or an unsigned request
gets AWS's 403 {"Message": "Forbidden"}. IAM permissions are not evaluated locally; the template's
policies are (tests/test_template.py). The caller's ARN is a local role named for the access key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devtools.local_stack.front import LocalFront
from devtools.local_stack.http_api import Route

FORBIDDEN = {"statusCode": 403, "headers": {"Content-Type": "application/json"}, "body": '{"Message":"Forbidden"}'}


def caller_arn(account_id: str, access_key: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/local-caller/{access_key}"


def signed_by(event: Mapping[str, Any], secrets: Mapping[str, str], region: str) -> str | None:
    """The access key that signed this payload-2.0 event's request (SigV4, service lambda), or None."""
    headers = event.get("headers") or {}
    authorization = str(headers.get("authorization", ""))
    fields = dict(
        part.strip().split("=", 1) for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",") if "=" in part
    )
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or not {"Credential", "SignedHeaders", "Signature"} <= set(
        fields
    ):
        return None
    access_key, _, scope = fields["Credential"].partition("/")
    if access_key not in secrets or scope.split("/")[1:] != [region, "lambda", "aws4_request"]:
        return None
    signed = fields["SignedHeaders"].split(";")
    query = f"?{event['rawQueryString']}" if event.get("rawQueryString") else ""
    url = f"http://{headers.get('host', '')}{event.get('rawPath', '/')}{query}"
    body = str(event.get("body") or "").encode()
    request = AWSRequest(
        method=event["requestContext"]["http"]["method"],
        url=url,
        data=body,
        headers={name: headers[name] for name in signed if name in headers and name != "x-amz-date"},
    )
    timestamp = str(headers.get("x-amz-date", ""))
    token = headers.get("x-amz-security-token")
    auth = SigV4Auth(Credentials(access_key, secrets[access_key], token), "lambda", region)
    request.context["timestamp"] = timestamp
    request.headers["X-Amz-Date"] = timestamp
    if "host" not in request.headers:
        request.headers["host"] = headers.get("host", "")
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return access_key if expected == fields["Signature"] else None


def iam_authorised(
    function: Callable[[dict[str, Any]], Any], secrets: Mapping[str, str], region: str, account_id: str
) -> Callable[[dict[str, Any]], Any]:
    """The function behind AWS_IAM auth: forged or unsigned requests never reach it."""

    def invoke(event: dict[str, Any]) -> Any:
        access_key = signed_by(event, secrets, region)
        if access_key is None:
            return FORBIDDEN
        event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
        event["requestContext"]["authorizer"] = {
            "iam": {"accessKey": access_key, "accountId": account_id, "userArn": caller_arn(account_id, access_key)}
        }
        return function(event)

    return invoke


class LocalFunctionUrl:
    """One function's URL: binds its socket on construction (its `url` is known before the
    function is), `serve(function)` answers, `stop()` closes."""

    def __init__(
        self,
        logical_id: str,
        *,
        secrets: Mapping[str, str],
        region: str,
        account_id: str,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.logical_id = logical_id
        self._secrets, self._region, self._account_id = dict(secrets), region, account_id
        self._front = LocalFront([Route("ANY", None, logical_id)], host=host, port=port, account_id=account_id)

    @property
    def url(self) -> str:
        return self._front.origin + "/"  # a function URL ends with a slash

    def serve(self, function: Callable[[dict[str, Any]], Any]) -> LocalFunctionUrl:
        guarded = iam_authorised(function, self._secrets, self._region, self._account_id)
        self._front.serve({self.logical_id: guarded})
        return self

    def stop(self) -> None:
        self._front.stop()
