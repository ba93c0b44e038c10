"""What a person types in `make dev`'s terminal to act as Buy with Prime (`help` lists it)."""

from __future__ import annotations

import time

from devtools.local_stack.stack import LocalStack

HELP = """commands (INSTALLATION defaults to the pre-filled one):
  <Enter>                            a freshly signed Settings URL
  order [ORDER_ID] [INSTALLATION]    publish ORDER_CONFIRMED (the installation's business product linked first)
  uninstall [INSTALLATION]           POST the signed Uninstall URL, as Buy with Prime does
  revoke [INSTALLATION]              revoke the installation's access and refresh tokens
  fail token|graphql STATUS [TIMES]  answer the next TIMES (1) requests with HTTP STATUS
  throttle [TIMES]                   a GraphQL ThrottlingError for the next TIMES (1) requests
  clear                              end every injected fault
  help                               this list"""


class UsageError(ValueError):
    pass


def business_product_of(installation_id: str) -> str:
    """The local business product of an installation (Buy with Prime's events name products)."""
    return f"amzn1.bp.product.{installation_id.rsplit('.', 1)[-1]}"


def run_command(stack: LocalStack, line: str, installation_id: str) -> str:
    """Do what the line says; what happened, in a line or two (a mistake is told, never raised)."""
    words = line.split()
    if not words:
        return f"Settings: {stack.signed_settings_url(installation_id, expires_in=3600)}"
    command, arguments = words[0].lower(), words[1:]
    action = _COMMANDS.get(command)
    if action is None:
        return f"unknown command {command!r}\n{HELP}"
    try:
        return action(stack, arguments, installation_id)
    except UsageError as error:
        return f"{command}: {error}\n{HELP}"


def _order(stack: LocalStack, arguments: list[str], default: str) -> str:
    from sandbox.events import partner_event, resource_path
    from shared.store.event_records import EventStore

    order_id = arguments[0] if arguments else f"322-{int(time.time()) % 10_000_000:07d}-0000001"
    installation_id = arguments[1] if len(arguments) > 1 else default
    product = business_product_of(installation_id)
    EventStore(stack.client("dynamodb"), stack.aws.table_name()).put_link(product, installation_id, "local console")
    event_id = stack.publish(partner_event("ORDER_CONFIRMED", [resource_path(product, order_id=order_id)]))
    return f"published ORDER_CONFIRMED for order {order_id} of {installation_id} (EventBridge ID {event_id})"


def _uninstall(stack: LocalStack, arguments: list[str], default: str) -> str:
    installation_id = arguments[0] if arguments else default
    answer = stack.uninstall(installation_id)
    return f"uninstall {installation_id}: HTTP {answer.status_code} {answer.text[:200]}"


def _revoke(stack: LocalStack, arguments: list[str], default: str) -> str:
    installation_id = arguments[0] if arguments else default
    access = stack.sandbox.revoke_access_tokens(installation_id)
    refresh = stack.sandbox.revoke_refresh_tokens(installation_id)
    return f"revoked {access} access and {refresh} refresh token(s) of {installation_id}"


def _fail(stack: LocalStack, arguments: list[str], _default: str) -> str:
    if len(arguments) not in (2, 3) or arguments[0] not in ("token", "graphql"):
        raise UsageError("say which endpoint (token or graphql) and the HTTP status")
    status, times = _number(arguments[1], 400, 599), _number(arguments[2], 1, 10_000) if len(arguments) == 3 else 1
    stack.sandbox.fail_next(arguments[0], status, times)
    return f"the next {times} {arguments[0]} request(s) get HTTP {status}"


def _throttle(stack: LocalStack, arguments: list[str], _default: str) -> str:
    times = _number(arguments[0], 1, 10_000) if arguments else 1
    stack.sandbox.throttle_next(times)
    return f"the next {times} GraphQL request(s) are throttled"


def _clear(stack: LocalStack, _arguments: list[str], _default: str) -> str:
    stack.sandbox.faults.clear()
    return "every fault cleared"


def _help(_stack: LocalStack, _arguments: list[str], _default: str) -> str:
    return HELP


def _number(text: str, lowest: int, highest: int) -> int:
    if not text.isdigit() or not lowest <= int(text) <= highest:
        raise UsageError(f"{text!r} is not a number from {lowest} to {highest}")
    return int(text)


_COMMANDS = {
    "order": _order,
    "uninstall": _uninstall,
    "revoke": _revoke,
    "fail": _fail,
    "throttle": _throttle,
    "clear": _clear,
    "help": _help,
}
