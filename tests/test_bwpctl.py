"""The operator CLI: redrive the DLQ, list and replay kept events, register links."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from bwpctl.__main__ import main
from bwpctl.replay import redrive
from sandbox.events import partner_event, resource_path
from shared.store.event_records import EventRecord, EventStore, Outcome
from tests.conftest import TABLE_NAME


@pytest.fixture
def queues(aws: None) -> dict[str, str]:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    return {"queue": queue, "dlq": dlq}


def _args(queues: dict[str, str]) -> list[str]:
    return ["--table", TABLE_NAME, "--queue-url", queues["queue"], "--dlq-url", queues["dlq"]]


def _bodies(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return bodies


def test_redrive_moves_every_message_back_and_empties_the_dlq(
    queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs")
    sent = [json.dumps({"n": i}) for i in range(23)]
    for body in sent:
        sqs.send_message(QueueUrl=queues["dlq"], MessageBody=body)
    assert main([*_args(queues), "redrive"]) == 0
    assert "redrove 23 message(s)" in capsys.readouterr().out
    assert sorted(_bodies(queues["queue"])) == sorted(sent)
    assert _bodies(queues["dlq"]) == []


def test_redrive_stops_at_the_limit(queues: dict[str, str]) -> None:
    sqs = boto3.client("sqs")
    for i in range(5):
        sqs.send_message(QueueUrl=queues["dlq"], MessageBody=str(i))
    assert redrive(sqs, queues["dlq"], queues["queue"], limit=3).moved == 3
    assert len(_bodies(queues["queue"])) == 3


def test_attention_list_and_replay(queues: dict[str, str], dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store = EventStore(dynamodb, TABLE_NAME)
    envelope = partner_event("ORDER_CONFIRMED", [resource_path("bp-x", order_id="o-1")])
    store.record(
        EventRecord(
            event_id="e-1",
            outcome=Outcome.UNROUTABLE,
            message_id="m-1",
            processed_at=1,
            expires_at=2,
            business_product_id="bp-x",
            reason="no_installation_for_business_product",
            raw=json.dumps(envelope),
            event_time="2026-01-01T00:00:00Z",
        )
    )
    assert main([*_args(queues), "attention", "unroutable"]) == 0
    out = capsys.readouterr().out
    assert "businessProduct=bp-x" in out and "1 unroutable event(s)" in out
    assert main([*_args(queues), "link", "bp-x", "inst-x"]) == 0
    assert main([*_args(queues), "replay", "unroutable"]) == 0
    assert "replayed 1 unroutable" in capsys.readouterr().out
    assert [json.loads(b) for b in _bodies(queues["queue"])] == [envelope]
    assert store.attention("unroutable") == []
    assert store.lookup([], [], ["bp-x"]).links == {"bp-x": "inst-x"}


def test_a_stack_name_or_explicit_names_are_required(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BWP_STACK", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main(["redrive"])
    assert "name the stack" in str(stopped.value)
