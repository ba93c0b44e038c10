"""An example of the partner's own code (template.yaml: ExampleConsumerFunction, deployed when the
stack's DeployExampleConsumer parameter is true): a rule on the app event bus invokes it with every
OrderHydrated event; it asks Buy with Prime for the store through the token broker (so it never
holds a refresh token, and never races the integration's refresh lease) and logs one line per order.

Copy it as the start of your own consumer. What it shows:
- the event is the snapshot the integration already fetched (`detail.data`) and its version: no
  second order query is needed;
- for anything else, `TokenBrokerClient.graphql` runs a query as the installation;
- an installation that is gone or needs the merchant's permission again is not an error to retry:
  it is skipped (the lifecycle events tell you about it); anything else raises, and EventBridge's
  asynchronous invocation retries it (RetryPolicy), then keeps it in the rule's dead-letter queue;
- delivery is at least once: this example only reads, so a repeat is harmless; code that writes
  keeps `detail.eventId` with its write (a conditional put) and drops IDs it has seen.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from clients.token_broker import TokenBrokerClient, TokenBrokerError

STORE_QUERY = "query BuyWithPrimeStore { buyWithPrimeStore { siteId } }"
# The broker's typed refusals that retrying cannot fix (src/clients/token_broker.py).
SKIPPED = frozenset({"installation_not_found", "uninstalled", "needs_reauthorization"})
# The broker's own limit is 30 s; the function's Timeout (template) leaves room for one call.
BROKER_TIMEOUT_SECONDS = 20.0

logger = Logger(service="example-consumer")
_broker: TokenBrokerClient | None = None


def broker() -> TokenBrokerClient:
    global _broker  # noqa: PLW0603 - one client per warm container
    if _broker is None:
        _broker = TokenBrokerClient(os.environ["TOKEN_BROKER_URL"], timeout=BROKER_TIMEOUT_SECONDS)
    return _broker


def reset_dependencies(replacement: TokenBrokerClient | None = None) -> None:
    """For tests and the local stack: a fresh client (or a given one)."""
    global _broker  # noqa: PLW0603
    _broker = replacement


@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, broker())


def handle(event: dict[str, Any], client: TokenBrokerClient) -> dict[str, Any]:
    detail = event.get("detail") or {}
    if event.get("detail-type") != "OrderHydrated" or not detail.get("installationId"):
        logger.warning("not an OrderHydrated app event", extra={"detail_type": event.get("detail-type")})
        return {"outcome": "ignored"}
    installation_id = str(detail["installationId"])
    order = detail.get("data") or {}
    facts = {
        "installation_id": installation_id,
        "event_id": detail.get("eventId"),
        "order_id": detail.get("resourceId"),
        "order_state": order.get("state") if isinstance(order, dict) else None,
        "version": detail.get("version"),
    }
    try:
        store = client.graphql(installation_id, STORE_QUERY).get("buyWithPrimeStore") or {}
    except TokenBrokerError as error:
        if error.code in SKIPPED:
            logger.info("order skipped", extra={**facts, "reason": error.code})
            return {"outcome": "skipped", "reason": error.code, **facts}
        raise  # EventBridge retries the invocation, then dead-letters it
    facts["site_id"] = store.get("siteId")
    logger.info("order received", extra=facts)
    return {"outcome": "handled", **facts}
