"""bwpctl: operate a Buy with Prime integration, deployed (--stack NAME or $BWP_STACK) or local
(--local: the stack `make dev` is running). `make install` puts it in .venv/bin; `python -m bwpctl`
works too. A mistake is one line on stderr and exit status 1; --debug shows the traceback.

    bwpctl --stack my-stack installations
    bwpctl --stack my-stack token <installationId>          # prints a live access token
    bwpctl --stack my-stack graphql <installationId> 'query { buyWithPrimeStore { siteId } }'
    bwpctl --local publish ORDER_CONFIRMED --business-product <id> --order <orderId>
    bwpctl --stack my-stack redrive
    bwpctl --stack my-stack attention unroutable
    bwpctl --stack my-stack link <businessProductId> <installationId>
    bwpctl --stack my-stack reauth <installationId>
    bwpctl --stack my-stack purge <installationId> --dry-run
    bwpctl --stack my-stack replay unroutable
    bwpctl --stack my-stack replay failed --installation <id> --type ORDER_CONFIRMED --since 6h --dry-run
    bwpctl --stack my-stack replay-archive --since 6h --wait
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "src")]

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError  # noqa: E402

from bwpctl import installations as inst  # noqa: E402
from bwpctl.replay import AttentionFilter, peek, redrive, replay_attention, select_attention, start_move_task  # noqa: E402
from bwpctl.target import Target, resolve_target  # noqa: E402
from shared.models import InstallationStatus  # noqa: E402
from shared.store.event_records import ATTENTION_OUTCOMES, AttentionItem, EventStore  # noqa: E402

OUTCOMES = sorted(o.value for o in ATTENTION_OUTCOMES)


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="bwpctl", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    top.add_argument("--debug", action="store_true", help="show the traceback of a failure (default: one line)")
    top.add_argument("--stack", help="the deployed stack (default: $BWP_STACK)")
    top.add_argument("--local", action="store_true", help="the local stack of `make dev` (or BWP_LOCAL=1)")
    top.add_argument("--table", help="table name (default: the stack's InstallationsTableName output)")
    top.add_argument("--queue-url", help="events queue URL (default: the stack's EventsQueueUrl output)")
    top.add_argument("--dlq-url", help="dead-letter queue URL (default: the stack's EventsDeadLetterQueueUrl)")
    top.add_argument("--endpoint-url", help="AWS endpoint (default: $AWS_ENDPOINT_URL)")
    top.add_argument("--archive-arn", help="partner event archive (default: the stack's PartnerEventArchiveArn)")
    top.add_argument("--rule-arn", help="the events rule (default: the stack's PartnerEventsRuleArn)")
    commands = top.add_subparsers(dest="command", required=True)
    _installation_commands(commands)
    _event_commands(commands)
    for command in commands.choices.values():  # `bwpctl replay failed --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return top


def _installation_commands(commands: Any) -> None:
    listing = commands.add_parser(
        "installations", help="installations per status (from the index); --list one status with token health"
    )
    listing.add_argument("--list", choices=[s.value for s in inst.LISTED_STATUSES], help="list this status")
    listing.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100)")
    show_one = commands.add_parser("show", help="one installation: status, install time, token health (never a token)")
    show_one.add_argument("installation_id")
    token = commands.add_parser("token", help="print a valid access token for one installation (refreshed if due)")
    token.add_argument("installation_id")
    graphql = commands.add_parser("graphql", help="run a GraphQL query as an installation")
    graphql.add_argument("installation_id")
    graphql.add_argument("query", help="the query, or @path/to/file.graphql")
    graphql.add_argument("--variables", default="{}", help="JSON object")
    reauth = commands.add_parser(
        "reauth", help="mark an installation as needing re-authorisation (its tokens are no longer used)"
    )
    reauth.add_argument("installation_id")
    purge = commands.add_parser(
        "purge", help="delete everything kept of an uninstalled installation now (the sweep does it later)"
    )
    purge.add_argument("installation_id")
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    link = commands.add_parser("link", help="register which installation a business product belongs to")
    link.add_argument("business_product_id")
    link.add_argument("installation_id")


def _event_commands(commands: Any) -> None:
    publish = commands.add_parser("publish", help="publish a sample Buy with Prime event onto the partner bus")
    publish.add_argument("event_type")
    publish.add_argument("--business-product", required=True)
    publish.add_argument("--order")
    publish.add_argument("--format", choices=["2024-11-01", "2024-01-01", "legacy"], default="2024-11-01")
    publish.add_argument("--installation", help="contextKeys.installationId (legacy format)")
    move = commands.add_parser(
        "redrive", help="move the DLQ's messages back to the events queue (on AWS: SQS's StartMessageMoveTask)"
    )
    move.add_argument("--limit", type=int, default=1000, help="with --loop: at most this many")
    move.add_argument("--loop", action="store_true", help="move them one by one here (default with an endpoint URL)")
    dlq = commands.add_parser("dlq", help="look at the dead-letter queue without moving anything")
    dlq.add_argument("action", choices=["peek"])
    dlq.add_argument("--limit", type=int, default=10)
    event = commands.add_parser("event", help="the record of one processed event (outcome, reason, times)")
    event.add_argument("event_id")
    event.add_argument("--key", help="its scoped idempotency key, for events recorded under one")
    show = commands.add_parser("attention", help="list events kept for an operator, oldest first")
    show.add_argument("outcome", choices=OUTCOMES)
    show.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    replay = commands.add_parser(
        "replay", help="send kept events back to the queue (after fixing the cause), oldest first"
    )
    replay.add_argument("outcome", choices=OUTCOMES)
    replay.add_argument("--limit", type=int, default=100, help="at most this many matching events (default 100)")
    replay.add_argument("--installation", help="only this installation's events")
    replay.add_argument("--type", dest="event_type", help="only events of this type, e.g. ORDER_CONFIRMED")
    replay.add_argument("--since", help="only events that happened at or after: ISO 8601 (UTC by default) or 6h, 2d")
    replay.add_argument("--until", help="only events that happened before this time")
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed; send and delete nothing")
    archive = commands.add_parser("replay-archive", help="re-send archived Buy with Prime events of a time span")
    archive.add_argument("--since", required=True, help="ISO 8601 time (UTC by default) or a span: 90m, 6h, 2d")
    archive.add_argument("--until", default=None, help="ISO 8601 time (default: now)")
    archive.add_argument("--wait", action="store_true", help="follow the replay until it ends (at most 10 min)")


class Parser(argparse.ArgumentParser):
    """A usage mistake is one line too (argparse's own prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    """Every mistake ends as one line on stderr (`bwpctl <command>: <message>`) and exit status 1;
    `--debug` shows the traceback instead."""
    args = parser().parse_args(argv)
    try:
        target = resolve_target(
            args.stack,
            local=args.local,
            table=args.table,
            queue_url=args.queue_url,
            dlq_url=args.dlq_url,
            endpoint_url=args.endpoint_url,
            archive_arn=args.archive_arn,
            rule_arn=args.rule_arn,
        )
        print(COMMANDS[args.command](target, args))
    except SystemExit as stop:  # a mistake this CLI names itself
        if not isinstance(stop.code, str):
            raise
        if args.debug:  # Python prints no traceback for a SystemExit: this one, and its cause
            traceback.print_exception(stop, file=sys.stderr)
        return _said(args, stop.code)
    except BrokenPipeError:  # `bwpctl attention failed | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        return _said(args, "interrupted", status=130)
    except (BotoCoreError, ClientError) as error:  # an AWS answer, said plainly: no traceback
        if args.debug:
            raise
        return _said(args, f"{error}{_hint(args, error)}")
    except Exception as error:  # anything else, still one line: --debug for where it came from
        if args.debug:
            raise
        return _said(args, f"{type(error).__name__}: {error} (--debug shows the traceback)")
    return 0


def _said(args: argparse.Namespace, message: str, status: int = 1) -> int:
    print(f"bwpctl {args.command}: {' '.join(message.split())}", file=sys.stderr)
    return status


def _hint(args: argparse.Namespace, error: Exception) -> str:
    if isinstance(error, EndpointConnectionError) and (args.local or os.environ.get("BWP_LOCAL") == "1"):
        return " (is `make dev` still running? .local-stack.json may be left from a stack that stopped)"
    return ""


def _installations(target: Target, args: argparse.Namespace) -> str:
    if args.list:
        rows = [inst.describe(i) for i in inst.installations(target, InstallationStatus(args.list), args.limit)]
        return "\n".join([*rows, f"{len(rows)} {args.list} installation(s) listed (--limit {args.limit})"])
    found = inst.counts(target)
    lines = [f"{status.value}: {number}" for status, number in found.items()]
    return "\n".join([*lines, "(uninstalled: waiting for their purge, TenantPurgeDays after the uninstall)"])


def _show(target: Target, args: argparse.Namespace) -> str:
    installation = inst.store_of(target).get(args.installation_id)
    if installation is None:
        raise SystemExit(f"no installation {args.installation_id} in {target.table_name}")
    return inst.describe(installation)


def _token(target: Target, args: argparse.Namespace) -> str:
    service, _ = inst.token_service(target)
    return str(service.access_token(args.installation_id))


def _graphql(target: Target, args: argparse.Namespace) -> str:
    query = args.query
    if query.startswith("@"):
        try:
            query = Path(query[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SystemExit(f"cannot read the query file {query[1:]}: {error}") from error
    try:
        variables = json.loads(args.variables)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--variables is not JSON: {error}") from error
    if not isinstance(variables, dict):
        raise SystemExit("--variables must be a JSON object, such as '{\"first\": 10}'")
    data = inst.run_graphql(target, args.installation_id, query, variables)
    return json.dumps(data, indent=2)


def _publish(target: Target, args: argparse.Namespace) -> str:
    from sandbox.events import partner_event, resource_path

    ids = {"order_id": args.order} if args.order else {}
    event = partner_event(
        args.event_type,
        [resource_path(args.business_product, **ids)],
        event_format=args.format,
        installation_id=args.installation,
    )
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
        "EventBusName": target.need("bus_name"),
    }
    answer = target.client("events").put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        raise SystemExit(f"EventBridge refused the event: {answer['Entries']}")
    return f"published {args.event_type} as {answer['Entries'][0]['EventId']} on {entry['EventBusName']}"


def _redrive(target: Target, args: argparse.Namespace) -> str:
    if not (args.loop or target.endpoint_url):  # AWS itself: let SQS move them
        handle = start_move_task(target.client("sqs"), target.need("dead_letter_queue_url"), target.need("queue_url"))
        return f"SQS is moving the DLQ's messages back to the events queue (task {handle})"
    moved = redrive(
        target.client("sqs"), target.need("dead_letter_queue_url"), target.need("queue_url"), limit=args.limit
    )
    return f"redrove {moved.moved} message(s) from the dead-letter queue; {moved.skipped} not accepted"


def _dlq(target: Target, args: argparse.Namespace) -> str:
    rows = []
    for message in peek(target.client("sqs"), target.need("dead_letter_queue_url"), args.limit):
        try:
            parsed = json.loads(message["Body"])
        except json.JSONDecodeError:
            parsed = None
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else None
        attributes = message.get("Attributes", {})
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(attributes.get("SentTimestamp", 0)) // 1000))
        kind = body.get("detail-type", "?") if body else "not an EventBridge event"
        event_id = (detail or {}).get("eventId") or body.get("id", "-")
        received = attributes.get("ApproximateReceiveCount", "?")
        rows.append(f"{message['MessageId']}  sent {sent} UTC  received {received}x  {kind}  eventId={event_id}")
    return "\n".join([*rows, f"{len(rows)} message(s) shown; nothing moved"])


def _event(target: Target, args: argparse.Namespace) -> str:
    record = EventStore(target.client("dynamodb"), target.table_name).event(args.event_id, args.key)
    if record is None:
        hint = "" if args.key else " (an event processed with an idempotency key is recorded under it: --key)"
        raise SystemExit(f"no record of event {args.event_id}{hint}")
    record.pop("raw", None)  # the body as received: `attention` and `replay` handle it
    return json.dumps(record, indent=2, sort_keys=True, default=str)


def _attention(target: Target, args: argparse.Namespace) -> str:
    store = EventStore(target.client("dynamodb"), target.table_name)
    items = list(select_attention(store, args.outcome, limit=args.limit))
    more = f" (--limit {args.limit} reached: more may wait)" if len(items) == args.limit else ""
    return "\n".join([*map(_attention_row, items), f"{len(items)} {args.outcome} event(s){more}"])


def _attention_row(item: AttentionItem) -> str:
    return (
        f"{item.sort_key}  {item.reason or '-'}  {item.event_type or '-'}  installation={item.installation_id or '-'}  "
        f"businessProduct={item.business_product_id or '-'}"
    )


def _replay(target: Target, args: argparse.Namespace) -> str:
    from bwpctl.archive import parse_time

    only = AttentionFilter(
        installation_id=args.installation,
        event_type=args.event_type,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
    )
    if only.since and only.until and only.since >= only.until:
        raise SystemExit(f"--since {args.since} is not before --until {args.until}: nothing would match")
    store = EventStore(target.client("dynamodb"), target.table_name)
    if args.dry_run:
        items = list(select_attention(store, args.outcome, only, limit=args.limit))
        rows = [_attention_row(i) + ("" if i.raw else "  (no body: would be skipped)") for i in items]
        more = f" (--limit {args.limit} reached: more may match)" if len(items) == args.limit else ""
        summary = f"{len(items)} {args.outcome} event(s) would be replayed{more}; dry run: nothing sent or deleted"
        return "\n".join([*rows, summary])
    queue_url = target.need("queue_url")
    moved = replay_attention(store, target.client("sqs"), queue_url, args.outcome, limit=args.limit, only=only)
    return f"replayed {moved.moved} {args.outcome} event(s); {moved.skipped} had no body to replay"


def _replay_archive(target: Target, args: argparse.Namespace) -> str:
    from datetime import UTC, datetime

    from bwpctl.archive import parse_time, start_replay

    until = parse_time(args.until) if args.until else datetime.now(UTC)
    events = target.client("events")
    return start_replay(
        events, target.need("archive_arn"), target.need("rule_arn"), parse_time(args.since), until, wait=args.wait
    )


def _reauth(target: Target, args: argparse.Namespace) -> str:
    return inst.force_reauthorization(target, args.installation_id)


def _purge(target: Target, args: argparse.Namespace) -> str:
    from shared.budget import Deadline
    from shared.store.purge import TenantPurge

    installation = inst.store_of(target).get(args.installation_id)
    if installation is None:
        raise SystemExit(f"no installation {args.installation_id} in {target.table_name} (purged already?)")
    if installation.status is not InstallationStatus.UNINSTALLED:
        raise SystemExit(
            f"installation {args.installation_id} is {installation.status.value}: only an uninstalled one is purged"
        )
    purge = TenantPurge(target.client("dynamodb"), target.table_name)
    if args.dry_run:
        found = purge.plan(args.installation_id, Deadline.after(PURGE_SECONDS))
        return f"would delete {found} item(s) of {args.installation_id}; nothing deleted (--dry-run)"
    report = purge.purge(args.installation_id, Deadline.after(PURGE_SECONDS))
    if not report.done:
        raise SystemExit(f"deleted {report.deleted} item(s) of {args.installation_id}; not finished: run it again")
    return f"purged {args.installation_id}: {report.deleted} item(s) deleted"


def _link(target: Target, args: argparse.Namespace) -> str:
    EventStore(target.client("dynamodb"), target.table_name).put_link(
        args.business_product_id, args.installation_id, "operator"
    )
    return f"linked {args.business_product_id} -> {args.installation_id}"


COMMANDS = {
    "installations": _installations,
    "show": _show,
    "token": _token,
    "graphql": _graphql,
    "publish": _publish,
    "redrive": _redrive,
    "dlq": _dlq,
    "event": _event,
    "attention": _attention,
    "replay": _replay,
    "replay-archive": _replay_archive,
    "link": _link,
    "reauth": _reauth,
    "purge": _purge,
}
PURGE_SECONDS = 600  # one `bwpctl purge` run; a larger tenant: run it again (it resumes)

if __name__ == "__main__":
    sys.exit(main())
