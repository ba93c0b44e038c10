"""DynamoDB faults injected at the HTTP layer of one boto3 client.

A handler on botocore's `before-send` event answers chosen attempts itself, with exactly the
status, headers and JSON body DynamoDB sends, so everything above the wire is the real thing:
botocore parses the error and its own retry policy decides whether to try again (each retry
passes through `before-send` again and is counted), and the code under test sees what it would
see in AWS. Requests that are not faulted go to the moto server unchanged.

Three kinds of fault:
- `fail(operation, code)`: the request never reaches the table and DynamoDB answers `code`;
- `fail(..., applied=True)`: the request IS applied (sent to moto) and the answer is then lost
  (a 500 InternalServerError instead): what a retry after a timeout meets in DynamoDB;
- `unprocessed(times)`: BatchGetItem answers with some of its keys in UnprocessedKeys.
- `unwritten(times)`: BatchWriteItem answers with every item in UnprocessedItems, none applied.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Any

import requests
from botocore.awsrequest import AWSResponse, HeadersDict

JSON = "application/x-amz-json-1.0"


@dataclass
class _Fault:
    code: str
    status: int
    reasons: list[str] | None
    applied: bool
    remaining: int
    after: int  # attempts of the operation to let through first


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _response(url: str, status: int, document: dict[str, Any]) -> AWSResponse:
    headers = HeadersDict({"Content-Type": JSON, "x-amzn-RequestId": uuid.uuid4().hex})
    return AWSResponse(url, status, headers, _Body(json.dumps(document).encode()))


def error_document(code: str, reasons: list[str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
        "message": f"injected {code}",
    }
    if reasons is not None:
        document["Message"] = f"Transaction cancelled, please refer cancellation reasons for specific reasons {reasons}"
        document["CancellationReasons"] = [
            {"Code": reason, **({"Message": f"injected {reason}"} if reason != "None" else {})} for reason in reasons
        ]
    return document


class WireFaults:
    def __init__(self, client: Any) -> None:
        self.attempts: Counter[str] = Counter()  # every attempt botocore sent, by operation
        self.bodies: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)  # request bodies, by operation
        self.served: Counter[str] = Counter()  # faults served, by operation
        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._unprocessed = 0
        self._unwritten = 0
        client.meta.events.register_first("before-send.dynamodb", self._before_send)

    def fail(
        self,
        operation: str,
        code: str,
        times: int = 1,
        *,
        status: int | None = None,
        reasons: list[str] | None = None,
        applied: bool = False,
        after: int = 0,
    ) -> None:
        """`times` attempts of `operation`, after letting `after` through, answer `code` (HTTP 500
        for InternalServerError, 503 for ServiceUnavailable, else 400)."""
        default = {"InternalServerError": 500, "ServiceUnavailable": 503}.get(code, 400)
        self._faults[operation].append(_Fault(code, status or default, reasons, applied, times, after))

    def unwritten(self, times: int) -> None:
        """The next `times` BatchWriteItem requests apply nothing: every item comes back unprocessed."""
        self._unwritten += times

    def unprocessed(self, times: int) -> None:
        """The next `times` BatchGetItem answers keep only their first item: the rest unprocessed."""
        self._unprocessed += times

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2]
        self.attempts[operation] += 1
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "{}")
        self.bodies[operation].append(json.loads(body or "{}"))
        queue = self._faults.get(operation)
        if queue and queue[0].after > 0:
            queue[0].after -= 1
        elif queue:
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            self.served[operation] += 1
            if fault.applied:
                self._forward(request)
                return _response(request.url, 500, error_document("InternalServerError"))
            return _response(request.url, fault.status, error_document(fault.code, fault.reasons))
        if operation == "BatchWriteItem" and self._unwritten > 0:
            self._unwritten -= 1
            self.served[operation] += 1
            return _response(request.url, 200, {"UnprocessedItems": json.loads(request.body)["RequestItems"]})
        if operation == "BatchGetItem" and self._unprocessed > 0:
            self._unprocessed -= 1
            self.served[operation] += 1
            return self._partially_processed(request)
        return None

    @staticmethod
    def _forward(request: Any) -> requests.Response:
        answer = requests.request(
            request.method, request.url, data=request.body, headers=dict(request.headers.items()), timeout=10
        )
        answer.raise_for_status()
        return answer

    def _partially_processed(self, request: Any) -> AWSResponse:
        """The real answer, cut to its first item; every other requested key comes back in
        UnprocessedKeys (whether or not the table holds it, as DynamoDB may do)."""
        document = self._forward(request).json()
        requested = json.loads(request.body)["RequestItems"]
        unprocessed: dict[str, Any] = {}
        for table, wanted in requested.items():
            kept = document.get("Responses", {}).get(table, [])[:1]
            document.setdefault("Responses", {})[table] = kept
            kept_keys = {(item["pk"]["S"], item["sk"]["S"]) for item in kept}
            rest = [k for k in wanted["Keys"] if (k["pk"]["S"], k["sk"]["S"]) not in kept_keys]
            if rest:
                unprocessed[table] = {"Keys": rest, "ConsistentRead": True}
        document["UnprocessedKeys"] = unprocessed
        return _response(request.url, 200, document)
