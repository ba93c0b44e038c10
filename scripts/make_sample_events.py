"""Regenerate events/*.json: API Gateway HTTP API (payload 2.0) samples for every OAuth route.

The tokens are signed with a throw-away key generated here; only its public half is kept, in
events/env.json (for `sam local invoke --env-vars`). The samples carry no `exp`, so they stay
verifiable; no private key is ever written to the repository.

    .venv/bin/python scripts/make_sample_events.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from devtools.apigw import http_event  # noqa: E402
from sandbox.signing import VerificationSigner  # noqa: E402

EVENTS = Path(__file__).resolve().parent.parent / "events"
ORIGIN = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
INSTALLATION = "amzn1.bwp.installation.sample-0001"
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
    env = {
        "OAuthFunction": {
            "BWP_VERIFICATION_PUBLIC_KEY": signer.public_key_pem,
            "PUBLIC_BASE_URL": "",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
        }
    }
    (EVENTS / "env.json").write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(samples)} samples and env.json to {EVENTS}")


if __name__ == "__main__":
    main()
