"""Regenerate events/*.json: API Gateway HTTP API (payload 2.0) samples for every OAuth route.

The tokens are signed with a throw-away key generated here; only its public half is kept, in
events/env.json (for `sam local invoke --env-vars`). The samples carry no `exp`, and env.json turns
the token-age limit off (MAX_VERIFICATION_TOKEN_AGE_SECONDS=0: their `iat` is fixed), so they stay
verifiable; no private key is ever written to the repository.

    .venv/bin/python scripts/make_sample_events.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from datetime import UTC, datetime  # noqa: E402

from devtools.apigw import http_event  # noqa: E402
from devtools.sqs import sqs_record  # noqa: E402
from sandbox.events import partner_event, resource_path  # noqa: E402
from sandbox.signing import VerificationSigner  # noqa: E402

EVENTS = Path(__file__).resolve().parent.parent / "events"
ORIGIN = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
INSTALLATION = "amzn1.bwp.installation.sample-0001"
BUSINESS_PRODUCT = "amzn1.bp.product.sample-0001"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:buy-with-prime-integration-EventsQueue"
BROWSER_COOKIE = "__Host-bwp-oauth=sample-browser-binding"
FIXED_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: stable samples, no churn on regeneration


def main() -> None:
    signer = VerificationSigner()
    sign = {"expires_in": None, "now": FIXED_TIME}
    uninstall_body = json.dumps({"installationId": INSTALLATION}).encode()
    samples = {
        "launch": http_event("GET", f"{ORIGIN}/launch"),
        "install": http_event(
            "GET",
            signer.sign_url(
                f"{ORIGIN}/install?code=SAMPLE-AUTHORIZATION-CODE&state=SAMPLE-STATE", INSTALLATION, **sign
            ),
            cookies=[BROWSER_COOKIE],
        ),
        "settings": http_event("GET", signer.sign_url(f"{ORIGIN}/settings", INSTALLATION, **sign)),
        "uninstall": http_event(
            "POST",
            signer.sign_url(f"{ORIGIN}/uninstall", INSTALLATION, body=uninstall_body, **sign),
            body=uninstall_body,
            headers={"content-type": "application/json"},
        ),
        "health": http_event("GET", f"{ORIGIN}/health"),
    }
    for name, event in samples.items():
        event["requestContext"]["requestId"] = f"sample-{name}"
        event["requestContext"]["timeEpoch"] = FIXED_TIME * 1000
        event["requestContext"]["time"] = "01/Jan/2026:00:00:00 +0000"
        (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
    for name, bodies in _sqs_samples().items():
        records = [
            sqs_record(
                body, message_id=f"00000000-0000-4000-8000-{name[:4].encode().hex()}{i:04d}", queue_arn=QUEUE_ARN
            )
            for i, body in enumerate(bodies)
        ]
        for record in records:
            record["receiptHandle"] = f"sample-receipt-{record['messageId']}"
            record["attributes"].update(
                SentTimestamp=str(FIXED_TIME * 1000), ApproximateFirstReceiveTimestamp=str(FIXED_TIME * 1000)
            )
        (EVENTS / f"sqs-{name}.json").write_text(json.dumps({"Records": records}, indent=2) + "\n", encoding="utf-8")
    env = {
        "OAuthFunction": {
            "BWP_VERIFICATION_PUBLIC_KEY": signer.public_key_pem,
            "PUBLIC_BASE_URL": "",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
            "MAX_VERIFICATION_TOKEN_AGE_SECONDS": "0",  # signed once, with a fixed iat
        }
    }
    (EVENTS / "env.json").write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(samples)} API samples, {len(_sqs_samples())} SQS samples and env.json to {EVENTS}")


def _event(event_type: str, number: int, event_format: str = "2024-11-01", **ids: str) -> dict[str, object]:
    """A partner event with stable IDs and time, so regenerating changes nothing."""
    envelope = partner_event(
        event_type,
        [resource_path(BUSINESS_PRODUCT, **ids)],
        event_format=event_format,  # type: ignore[arg-type]
        installation_id=INSTALLATION,
        event_id=f"11111111-2222-4333-8444-{number:012d}",
        idempotency_key=f"sample-idempotency-key-{number}",
        time=datetime.fromtimestamp(FIXED_TIME, tz=UTC),
    )
    if event_format != "2024-11-01":
        envelope["id"] = f"11111111-2222-4333-8444-{number:012d}"
    else:
        envelope["id"] = f"99999999-2222-4333-8444-{number:012d}"
    return envelope


def _sqs_samples() -> dict[str, list[str | dict[str, object]]]:
    confirmed = _event("ORDER_CONFIRMED", 1, order_id="322-0000001-0000001")
    return {
        "order-confirmed": [confirmed],
        "mixed-formats": [
            _event("REFUND_REQUESTED", 2, order_id="322-0000001-0000002", refund_id="refund-0002"),
            _event("PACKAGE_DELIVERED", 3, "2024-01-01", order_id="322-0000001-0000003", delivery_id="delivery-3"),
            _event("ITEM_DELIVERED", 4, "legacy", order_id="322-0000001-0000004", delivery_id="delivery-4"),
            _event("INVENTORY_CHANGED", 5, item_id="item-0005"),
            _event("PACKAGE_TRACKER_MILESTONE_CHANGED", 6, carrier_code="AMZN_US", tracking_number="TBA000000006"),
        ],
        "duplicate": [confirmed, confirmed],
        "malformed": ["{this is not json", json.dumps({"id": "no-type", "source": "aws.partner/buywithprime/x"})],
        "unknown-type": [_event("SOMETHING_NEW_FROM_BUY_WITH_PRIME", 7, order_id="322-0000001-0000007")],
    }


if __name__ == "__main__":
    main()
