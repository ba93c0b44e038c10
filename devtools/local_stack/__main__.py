"""`python -m devtools.local_stack` (what `make dev` runs): start the whole stack on fixed ports,
print the URLs to open, print each event published on the app bus, and run until Ctrl-C. Type
commands to act as Buy with Prime (devtools/local_stack/console.py; `help` lists them)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import requests

from devtools.local_stack.console import run_command
from devtools.local_stack.stack import LocalStack

DEFAULT_INSTALLATION = "amzn1.bwp.installation.local-0001"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.local_stack", description=__doc__)
    parser.add_argument(
        "--front-port", type=int, default=_port("LOCAL_FRONT_PORT", 8710), help="the app (default 8710)"
    )
    parser.add_argument(
        "--sandbox-port", type=int, default=_port("LOCAL_SANDBOX_PORT", 8711), help="Buy with Prime sandbox"
    )
    parser.add_argument("--moto-port", type=int, default=_port("LOCAL_MOTO_PORT", 8712), help="moto (AWS)")
    parser.add_argument(
        "--front-host",
        default=os.environ.get("LOCAL_FRONT_HOST", "localhost"),
        help="host name of the app's URLs: localhost (default: another site than the sandbox, as in production) "
        "or 127.0.0.1",
    )
    parser.add_argument("--installation-id", default=DEFAULT_INSTALLATION, help="pre-filled on the consent page")
    parser.add_argument(
        "--retry-delay",
        type=int,
        default=2,
        help="seconds before a failed event is retried locally (Lambda: visibility timeout)",
    )
    parser.add_argument("--no-events", action="store_true", help="do not poll the event queue")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    stack = LocalStack(
        front_port=args.front_port,
        sandbox_port=args.sandbox_port,
        moto_port=args.moto_port,
        front_host=args.front_host,
        installation_id=args.installation_id,
        events=False if args.no_events else None,
        retry_delay_seconds=args.retry_delay,
        on_app_event=print_app_event,
        route_throttling=True,
    )
    running = running_stack(STATE_FILE)
    if running:
        print(f"a local stack is already running ({running}): use it, or stop it first (Ctrl-C there)", file=sys.stderr)
        return 1
    try:
        stack.start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        ports = f"{args.front_port}, {args.sandbox_port}, {args.moto_port}"
        print(
            f"a port make dev needs is in use ({ports}): free it or pass --front-port/--sandbox-port/"
            "--moto-port (DEV_FLAGS=...)",
            file=sys.stderr,
        )
        return 1
    try:
        write_state_file(stack)
        return _serve(stack, args)
    finally:
        STATE_FILE.unlink(missing_ok=True)  # bwpctl --local must not find a stack that is gone
        stack.stop()


def running_stack(path: Path) -> str | None:
    """The Launch URL of a stack whose state file is there and whose moto still answers, else None
    (a file left by a killed run is stale: it is replaced)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        requests.get(f"{state['endpoint_url']}/moto-api/", timeout=2)
    except (OSError, ValueError, KeyError, requests.RequestException):
        return None
    return str(state.get("launch_url") or state["endpoint_url"])


def _serve(stack: LocalStack, args: argparse.Namespace) -> int:
    print(_banner(stack, args.installation_id), flush=True)
    stopped = threading.Event()
    # commands from a terminal, or piped in; closing a terminal's input stops the stack
    threading.Thread(
        target=_read_commands, args=(stack, args.installation_id, stopped, sys.stdin.isatty()), daemon=True
    ).start()
    try:
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    return 0


STATE_FILE = Path(__file__).resolve().parents[2] / ".local-stack.json"


def write_state_file(stack: LocalStack, path: Path = STATE_FILE) -> None:
    """Where a running `make dev` is, for `bwpctl --local` (names and endpoints only, no secret)."""
    aws = stack.aws
    state = {
        "endpoint_url": aws.endpoint_url,
        "region": aws.region,
        "table_name": aws.table_name(),
        "queue_url": aws.queue_url("EventsQueue"),
        "dead_letter_queue_url": aws.queue_url("EventsDeadLetterQueue"),
        "bus_name": aws.bus_name,
        "rule_arn": aws.resources["PartnerEventsRule"].attributes["Arn"],
        "archive_arn": aws.resources["PartnerEventArchive"].attributes["Arn"],
        "secret_arn": aws.secret_arn(),
        "token_url": stack.sandbox.token_url,
        "graphql_url": stack.sandbox.graphql_url,
        "launch_url": stack.launch_url,
    }
    path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def _banner(stack: LocalStack, installation_id: str) -> str:
    aws = stack.aws
    lines = [
        "Local stack running (Ctrl-C stops it).",
        f"  Launch URL (open in a browser): {stack.launch_url}",
        f"  Settings, once installed with the pre-filled ID {installation_id} (valid 1 h; Enter prints a new one):",
        f"    {stack.signed_settings_url(installation_id, expires_in=3600)}",
        f"  Health:   {stack.health_url}",
        f"  Buy with Prime sandbox: {stack.sandbox.base_url}",
        f"  moto (AWS_ENDPOINT_URL): {aws.endpoint_url}  table {aws.table_name()}",
    ]
    if stack.pollers:
        lines.append(f"  events: bus {aws.bus_name}, polling {', '.join(stack.pollers)}")
    if stack.stream_pollers:
        lines.append(f"  app events: bus {aws.app_bus_name} (printed below), via {', '.join(stack.stream_pollers)}")
    for name, url in stack.function_urls.items():
        lines.append(f"  {name} URL (SigV4, local credentials): {url.url}")
    if sys.stdin.isatty():
        lines.append("  Type `help` for commands that act as Buy with Prime (order, uninstall, revoke, fail...).")
    lines += [f"  note: {note}" for note in stack.notes + aws.notes]
    return "\n".join(lines)


def print_app_event(event: dict[str, Any]) -> None:
    """One line per event on the app bus: what the partner's code would receive."""
    detail = event.get("detail") or {}
    facts = [f"installation={detail.get('installationId')}", f"eventId={detail.get('eventId')}"]
    if detail.get("resourceId"):
        facts.append(f"resource={detail['resourceId']}")
    if detail.get("reason"):
        facts.append(f"reason={detail['reason']}")
    print(f"app event: {event.get('detail-type')} {' '.join(facts)}", flush=True)


def _read_commands(stack: LocalStack, installation_id: str, stopped: threading.Event, stop_at_end: bool) -> None:
    for line in sys.stdin:
        print(run_command(stack, line, installation_id), flush=True)
    if stop_at_end:
        stopped.set()  # the terminal's input closed (Ctrl-D)


if __name__ == "__main__":
    sys.exit(main())
