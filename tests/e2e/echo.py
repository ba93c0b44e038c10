"""The fixture template's function: answers with the event it received, with two cookies and,
on request, a binary body (so the front's event building and answer writing can be checked)."""

from __future__ import annotations

import base64
import json
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if (event.get("queryStringParameters") or {}).get("binary") == "1":
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/octet-stream"},
            "cookies": ["first=1; Path=/", "second=2; Path=/; HttpOnly"],
            "body": base64.b64encode(bytes(range(256))).decode("ascii"),
            "isBase64Encoded": True,
        }
    if (event.get("queryStringParameters") or {}).get("raise") == "1":
        raise RuntimeError("the function failed")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"event": event, "function": context.function_name}),
    }
