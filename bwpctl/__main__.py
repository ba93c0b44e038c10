"""bwpctl: operate a deployed Buy with Prime integration.

python -m bwpctl --stack my-stack redrive
python -m bwpctl --stack my-stack attention unroutable
python -m bwpctl --stack my-stack link amzn1.bp.product.x amzn1.bwp.installation.y
python -m bwpctl --stack my-stack replay unroutable
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "src")]

from bwpctl.replay import redrive, replay_attention  # noqa: E402
from bwpctl.target import resolve_target  # noqa: E402
from shared.store.event_records import ATTENTION_OUTCOMES, EventStore  # noqa: E402

OUTCOMES = sorted(o.value for o in ATTENTION_OUTCOMES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bwpctl", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--stack", help="the deployed stack (default: $BWP_STACK)")
    parser.add_argument("--table", help="table name (default: the stack's InstallationsTableName output)")
    parser.add_argument("--queue-url", help="events queue URL (default: the stack's EventsQueueUrl output)")
    parser.add_argument("--dlq-url", help="dead-letter queue URL (default: the stack's EventsDeadLetterQueueUrl)")
    parser.add_argument("--endpoint-url", help="AWS endpoint, e.g. a local moto server (default: $AWS_ENDPOINT_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    move = commands.add_parser("redrive", help="move the dead-letter queue's messages back to the events queue")
    move.add_argument("--limit", type=int, default=1000)
    show = commands.add_parser("attention", help="list events kept for an operator")
    show.add_argument("outcome", choices=OUTCOMES)
    replay = commands.add_parser("replay", help="send kept events back to the queue (after fixing the cause)")
    replay.add_argument("outcome", choices=OUTCOMES)
    replay.add_argument("--limit", type=int, default=100)
    link = commands.add_parser("link", help="register which installation a business product belongs to")
    link.add_argument("business_product_id")
    link.add_argument("installation_id")
    args = parser.parse_args(argv)

    target = resolve_target(
        args.stack, table=args.table, queue_url=args.queue_url, dlq_url=args.dlq_url, endpoint_url=args.endpoint_url
    )
    store = EventStore(target.client("dynamodb"), target.table_name)
    if args.command == "redrive":
        moved = redrive(target.client("sqs"), target.dead_letter_queue_url, target.queue_url, limit=args.limit)
        print(f"redrove {moved.moved} message(s) from the dead-letter queue; {moved.skipped} not accepted")
    elif args.command == "attention":
        items = store.attention(args.outcome, limit=1000)
        for item in items:
            print(
                f"{item.sort_key}  {item.reason or '-'}  installation={item.installation_id or '-'}"
                f"  businessProduct={item.business_product_id or '-'}"
            )
        print(f"{len(items)} {args.outcome} event(s)")
    elif args.command == "replay":
        moved = replay_attention(store, target.client("sqs"), target.queue_url, args.outcome, limit=args.limit)
        print(f"replayed {moved.moved} {args.outcome} event(s); {moved.skipped} had no body to replay")
    else:
        store.put_link(args.business_product_id, args.installation_id, "operator")
        print(f"linked {args.business_product_id} -> {args.installation_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
