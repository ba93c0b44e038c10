"""The operator CLI: redrive the DLQ, list and replay kept events, register links."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from bwpctl.__main__ import main
from bwpctl.replay import redrive
from sandbox.events import partner_event, resource_path
from shared.store.event_records import EventRecord, EventStore, Verdict
from tests.conftest import TABLE_NAME


@pytest.fixture
def queues(aws: None) -> dict[str, str]:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    return {"queue": queue, "dlq": dlq}


def _args(queues: dict[str, str]) -> list[str]:
    return ["--table", TABLE_NAME, "--queue-url", queues["queue"], "--dlq-url", queues["dlq"]]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    """What a failed command said: one line on stderr, no traceback, nothing on stdout."""
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.strip()


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
    assert main([*_args(queues), "redrive", "--loop"]) == 0
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
            outcome=Verdict.UNROUTABLE,
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


def test_a_stack_name_or_explicit_names_are_required(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BWP_STACK", raising=False)
    assert main(["redrive"]) == 1
    assert _one_line(capsys).startswith("bwpctl redrive: name the stack")


@pytest.fixture
def local_state(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], queues: dict[str, str]) -> Any:
    """A `.local-stack.json` as `make dev` writes it, pointing at moto and the sandbox."""
    events = boto3.client("events")
    events.create_event_bus(Name="bwp-local-partner-bus")
    events.put_rule(
        Name="bwp",
        EventBusName="bwp-local-partner-bus",
        EventPattern=json.dumps({"source": [{"prefix": "aws.partner/buywithprime/"}]}),
    )
    queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queues["queue"], AttributeNames=["QueueArn"])
    events.put_targets(
        Rule="bwp",
        EventBusName="bwp-local-partner-bus",
        Targets=[{"Id": "q", "Arn": queue_arn["Attributes"]["QueueArn"]}],
    )
    state = tmp_path / ".local-stack.json"
    state.write_text(
        json.dumps(
            {
                "table_name": TABLE_NAME,
                "queue_url": queues["queue"],
                "dead_letter_queue_url": queues["dlq"],
                "bus_name": "bwp-local-partner-bus",
                "secret_arn": environ["CLIENT_CREDENTIALS_SECRET_ARN"],
                "token_url": environ["BWP_TOKEN_URL"],
                "graphql_url": environ["BWP_GRAPHQL_URL"],
            }
        )
    )
    monkeypatch.setattr("bwpctl.target.LOCAL_STATE", state)
    return state


def test_installations_token_and_graphql_against_the_local_stack(
    local_state: Any, events: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    events.install("inst-cli", "bp-cli", expired=True)
    assert main(["--local", "installations"]) == 0
    assert "active: 1" in capsys.readouterr().out
    assert main(["--local", "installations", "--list", "active"]) == 0
    listing = capsys.readouterr().out
    assert "inst-cli  active" in listing and "access token expired" in listing and "1 active installation(s)" in listing
    assert "Atza|" not in listing  # health, never a token
    assert main(["--local", "token", "inst-cli"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("Atza|") and events.sandbox.calls["token:refresh_token"] == 1
    assert main(["--local", "graphql", "inst-cli", "query { buyWithPrimeStore { siteId widgetId } }"]) == 0
    assert set(json.loads(capsys.readouterr().out)["buyWithPrimeStore"]) == {"siteId", "widgetId"}


def test_publish_puts_a_buy_with_prime_event_through_the_rule(
    local_state: Any, queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--local", "publish", "ORDER_CONFIRMED", "--business-product", "bp-1", "--order", "o-1"]) == 0
    assert "published ORDER_CONFIRMED" in capsys.readouterr().out
    [body] = _bodies(queues["queue"])
    delivered = json.loads(body)
    assert delivered["detail-type"] == "ORDER_CONFIRMED"
    assert delivered["resources"] == ["businessProduct/bp-1/order/o-1"]


def test_local_without_a_running_stack_says_so(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("bwpctl.target.LOCAL_STATE", tmp_path / "missing.json")
    assert main(["--local", "installations"]) == 1
    assert "make dev" in _one_line(capsys)


def test_replay_archive_times_read_as_an_operator_types_them() -> None:
    from datetime import UTC, datetime, timedelta

    from bwpctl.archive import parse_time, start_replay

    now = datetime.now(UTC)
    assert abs(parse_time("90m") - (now - timedelta(minutes=90))) < timedelta(seconds=5)
    assert abs(parse_time("2d") - (now - timedelta(days=2))) < timedelta(seconds=5)
    assert parse_time("2026-12-01T10:00:00") == datetime(2026, 12, 1, 10, tzinfo=UTC)  # UTC unless told
    assert parse_time("2026-12-01T10:00:00+01:00") == datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(SystemExit, match="neither an ISO 8601 time nor a span"):
        parse_time("yesterday")
    with pytest.raises(SystemExit, match="nothing to replay"):
        start_replay(None, "arn", "rule", now, now - timedelta(hours=1))


# --------------------------------------------------------------------------- installations at scale


def _split(total: int) -> tuple[int, int, int]:
    """(active, needing re-authorisation, uninstalled) of `total`: 5/6, 1/8, the rest (1,200: 1,000, 150, 50)."""
    return total * 5 // 6, total // 8, total - total * 5 // 6 - total // 8


@pytest.fixture
def many_installations(dynamodb: Any, request: pytest.FixtureRequest) -> list[str]:
    """1,200 installations (or `request.param`), split as _split says, the uninstalled last."""
    from shared.models import TokenSet
    from shared.store.installations import InstallationStore

    store = InstallationStore(dynamodb, TABLE_NAME)
    ACTIVE, REAUTH, GONE = _split(getattr(request, "param", 1200))
    ids = [f"amzn1.bwp.installation.scale-{n:05d}" for n in range(ACTIVE + REAUTH + GONE)]
    now = 1_800_000_000
    for n, installation_id in enumerate(ids):
        refresh = f"rt-{n}"
        store.save_installation(installation_id, TokenSet(access_token=f"at-{n}", refresh_token=refresh), now)
        if ACTIVE <= n < ACTIVE + REAUTH:
            assert store.acquire_refresh_lease(installation_id, "op", refresh, now, 30) is not None
            assert store.mark_needs_reauthorization(installation_id, "op", refresh, "invalid_grant", now)
        elif n >= ACTIVE + REAUTH:
            store.uninstall(installation_id, (now + 1) * 1000, now + 1)
    return ids


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DynamoDB operation bwpctl makes, by name."""
    from bwpctl.target import Target

    calls: list[str] = []
    original = Target.client

    def counting(self: Target, service: str) -> Any:
        client = original(self, service)
        if service == "dynamodb":
            client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
        return client

    monkeypatch.setattr(Target, "client", counting)
    return calls


@pytest.mark.parametrize("many_installations", [10_000], indirect=True)
def test_installation_counts_come_from_the_index_without_a_scan_or_an_item_read(
    many_installations: list[str], dynamodb_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--table", TABLE_NAME, "installations"]) == 0
    out = capsys.readouterr().out
    ACTIVE, REAUTH, GONE = _split(len(many_installations))
    assert f"active: {ACTIVE}" in out and f"needs_reauthorization: {REAUTH}" in out and f"uninstalled: {GONE}" in out
    assert set(dynamodb_calls) == {"Query"} and len(dynamodb_calls) == 3 * 8  # 3 statuses x 8 shards, a page each
    print(f"bwpctl installations over {len(many_installations)}: {len(dynamodb_calls)} Query calls, no Scan")


def test_listing_reads_one_status_in_batches_and_stops_at_the_limit(
    many_installations: list[str], dynamodb_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--table", TABLE_NAME, "installations", "--list", "needs_reauthorization", "--limit", "120"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 121 and rows[-1].startswith("120 needs_reauthorization installation(s) listed")
    assert all("needs re-authorisation" in row for row in rows[:-1])
    assert "Scan" not in dynamodb_calls and "GetItem" not in dynamodb_calls
    assert dynamodb_calls.count("BatchGetItem") == 2  # 100 + 20
    assert not any("at-" in row or "rt-" in row for row in rows)  # never a token


def test_show_reads_one_installation_and_mistakes_are_told_without_a_traceback(
    many_installations: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--table", TABLE_NAME, "show", many_installations[-1]]) == 0
    assert f"{many_installations[-1]}  uninstalled" in capsys.readouterr().out
    assert main(["--table", TABLE_NAME, "show", "amzn1.bwp.installation.nobody"]) == 1
    assert _one_line(capsys).startswith("bwpctl show: no installation amzn1.bwp.installation.nobody")
    assert main(["--table", "no-such-table", "installations"]) == 1
    err = capsys.readouterr().err
    assert "ResourceNotFoundException" in err and "Traceback" not in err


# --------------------------------------------------------------------------- reauth


def _installed(dynamodb: Any, installation_id: str) -> Any:
    from shared.models import TokenSet
    from shared.store.installations import InstallationStore

    store = InstallationStore(dynamodb, TABLE_NAME)
    store.save_installation(installation_id, TokenSet(access_token="at-1", refresh_token="rt-1"), 1_800_000_000)
    return store


def test_reauth_marks_an_active_installation_through_the_stores_own_path(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _installed(dynamodb, "inst-r")
    assert main(["--table", TABLE_NAME, "reauth", "inst-r"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("inst-r: active -> needs_reauthorization (reason: operator)")
    assert "at-1" not in out and "rt-1" not in out
    marked = store.get("inst-r")
    assert marked is not None and marked.status.value == "needs_reauthorization"
    assert marked.reauthorization_reason == "operator" and marked.access_token is None
    assert marked.lease_owner is None  # the lease taken for the mark went with it
    assert main(["--table", TABLE_NAME, "installations"]) == 0  # the index moved it
    assert "active: 0" in (counted := capsys.readouterr().out) and "needs_reauthorization: 1" in counted
    assert main(["--table", TABLE_NAME, "reauth", "inst-r"]) == 0  # again: said, nothing changed
    assert (
        capsys.readouterr().out.strip() == "inst-r already needs re-authorisation (reason: operator); nothing changed"
    )


def test_reauth_refuses_an_unknown_an_uninstalled_or_a_refreshing_installation(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--table", TABLE_NAME, "reauth", "inst-nobody"]) == 1
    assert _one_line(capsys) == f"bwpctl reauth: no installation inst-nobody in {TABLE_NAME}"
    store = _installed(dynamodb, "inst-gone")
    store.uninstall("inst-gone", 1_800_000_001_000, 1_800_000_001)
    assert main(["--table", TABLE_NAME, "reauth", "inst-gone"]) == 1
    assert "is uninstalled" in _one_line(capsys)
    assert store.get("inst-gone").status.value == "uninstalled"  # type: ignore[union-attr]
    # a function refreshing its tokens right now holds the lease: the operator is told, nothing changes
    store = _installed(dynamodb, "inst-busy")
    import time

    assert store.acquire_refresh_lease("inst-busy", "events-fn", "rt-1", int(time.time()), 60) is not None
    assert main(["--table", TABLE_NAME, "reauth", "inst-busy"]) == 1
    assert "being refreshed or changed right now" in _one_line(capsys)
    busy = store.get("inst-busy")
    assert busy is not None and busy.status.value == "active" and busy.lease_owner == "events-fn"
    from shared.models import TokenSet

    assert store.store_refreshed_tokens(  # and its refresh still lands
        "inst-busy", "events-fn", "rt-1", TokenSet(access_token="at-2", refresh_token="rt-2"), int(time.time())
    )


# --------------------------------------------------------------------------- the DLQ and one event


def test_dlq_peek_shows_what_waits_and_moves_nothing(
    queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs")
    envelope = partner_event("ORDER_CONFIRMED", [resource_path("bp-x", order_id="o-1")])
    sqs.send_message(QueueUrl=queues["dlq"], MessageBody=json.dumps(envelope))
    sqs.send_message(QueueUrl=queues["dlq"], MessageBody="{not json")
    assert main([*_args(queues), "dlq", "peek"]) == 0
    out = capsys.readouterr().out
    assert f"ORDER_CONFIRMED  eventId={envelope['detail']['eventId']}" in out
    assert "not an EventBridge event" in out and "2 message(s) shown; nothing moved" in out
    assert len(_bodies(queues["dlq"])) == 2 and _bodies(queues["queue"]) == []


def test_event_shows_one_record_without_its_body(
    queues: dict[str, str], dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    EventStore(dynamodb, TABLE_NAME).record(
        EventRecord(
            event_id="e-2",
            outcome=Verdict.FAILED,
            message_id="m-2",
            processed_at=1,
            expires_at=2,
            reason="invalid_json",
            raw="{broken",
            event_time="2026-01-01T00:00:00Z",
        )
    )
    assert main([*_args(queues), "event", "e-2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["outcome"], shown["reason"]) == ("failed", "invalid_json") and "raw" not in shown
    assert main([*_args(queues), "event", "e-3"]) == 1
    assert _one_line(capsys).startswith("bwpctl event: no record of event e-3")


def test_redrive_on_aws_is_sqs_own_move_task(queues: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an endpoint URL (AWS itself) redrive asks SQS to move the messages; moto has no move
    task, so its client is wrapped here to record the call."""
    from bwpctl.target import Target

    started: list[dict[str, str]] = []
    original = Target.client

    def with_move_task(self: Target, service: str) -> Any:
        client = original(self, service)
        if service == "sqs":
            client.start_message_move_task = lambda **kw: started.append(kw) or {"TaskHandle": "task-1"}
        return client

    monkeypatch.setattr(Target, "client", with_move_task)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert main([*_args(queues), "redrive"]) == 0
    sqs = boto3.client("sqs")
    arn = {
        u: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for u in queues.values()
    }
    assert started == [{"SourceArn": arn[queues["dlq"]], "DestinationArn": arn[queues["queue"]]}]


# --------------------------------------------------------------------------- mistakes: one line, or --debug


def test_mistakes_are_one_line_and_exit_1(
    queues: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    said: dict[str, str] = {}
    for name, argv in {
        "bad JSON": ["graphql", "inst-1", "query { x }", "--variables", "{first: 1}"],
        "not an object": ["graphql", "inst-1", "query { x }", "--variables", "[1]"],
        "unreadable file": ["graphql", "inst-1", f"@{tmp_path / 'missing.graphql'}"],
        "missing name": ["replay-archive", "--since", "1h"],
        "bad time": ["--archive-arn", "a", "--rule-arn", "r", "replay-archive", "--since", "yesterday"],
    }.items():
        assert main([*_args(queues), *argv]) == 1, name
        said[name] = _one_line(capsys)
    assert said["bad JSON"].startswith("bwpctl graphql: --variables is not JSON: Expecting property name")
    assert said["not an object"].startswith("bwpctl graphql: --variables must be a JSON object")
    assert said["unreadable file"].startswith("bwpctl graphql: cannot read the query file")
    assert "No such file" in said["unreadable file"]
    assert said["missing name"] == (
        "bwpctl replay-archive: this command needs archive arn, which the target does not give"
    )
    assert "neither an ISO 8601 time" in said["bad time"]
    with pytest.raises(SystemExit) as usage:  # argparse's own mistakes: one line too, exit 2
        main([*_args(queues), "replay", "nonsense"])
    assert usage.value.code == 2
    assert "bwpctl replay: argument outcome: invalid choice" in _one_line(capsys)


def test_a_stack_without_the_projects_outputs_is_named(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudFormation as a stub (moto's needs an OpenAPI validator not installed here)."""
    from botocore.exceptions import ClientError

    class CloudFormation:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            if StackName != "someone-elses":
                error = {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}
                raise ClientError(error, "DescribeStacks")
            return {"Stacks": [{"StackName": StackName, "Outputs": [{"OutputKey": "QueueUrl", "OutputValue": "q"}]}]}

    real = boto3.client
    monkeypatch.setattr(
        boto3, "client", lambda name, **kw: CloudFormation() if name == "cloudformation" else real(name, **kw)
    )
    assert main(["--stack", "someone-elses", "installations"]) == 1
    assert _one_line(capsys) == (
        "bwpctl installations: stack someone-elses has no InstallationsTableName output (not this project's stack?)"
    )
    assert main(["--stack", "nobodys", "installations"]) == 1  # an AWS answer
    assert "does not exist" in _one_line(capsys)


def test_a_stale_local_stack_file_is_one_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / ".local-stack.json"
    monkeypatch.setattr("bwpctl.target.LOCAL_STATE", state)
    state.write_text('{"table_name": "t", "endpo')  # cut short
    assert main(["--local", "attention", "failed"]) == 1
    assert _one_line(capsys).startswith("bwpctl attention: .local-stack.json is unreadable")
    state.write_text("{}")
    assert main(["--local", "attention", "failed"]) == 1
    assert "names no table" in _one_line(capsys)
    # a stack that stopped without removing its file: nothing listens on its endpoint any more
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    state.write_text(json.dumps({"table_name": "t", "endpoint_url": "http://127.0.0.1:9", "region": "us-east-1"}))
    assert main(["--local", "attention", "failed"]) == 1
    line = _one_line(capsys)
    assert "Could not connect to the endpoint URL" in line and "is `make dev` still running?" in line


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(
    queues: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bwpctl import __main__ as cli

    def broken(target: Any, args: Any) -> str:
        raise RuntimeError("the table answered\nsomething odd")

    monkeypatch.setitem(cli.COMMANDS, "attention", broken)
    assert main([*_args(queues), "attention", "failed"]) == 1
    assert _one_line(capsys) == (
        "bwpctl attention: RuntimeError: the table answered something odd (--debug shows the traceback)"
    )
    for argv in (
        ["--debug", *_args(queues), "attention", "failed"],
        [*_args(queues), "attention", "failed", "--debug"],
    ):
        with pytest.raises(RuntimeError, match="the table answered"):
            main(argv)
    assert main(["--debug", *_args(queues), "graphql", "i", "q", "--variables", "{"]) == 1  # its own mistakes
    err = capsys.readouterr().err
    assert "Traceback" in err and "JSONDecodeError" in err  # the cause too
    assert err.splitlines()[-1].startswith("bwpctl graphql: --variables is not JSON: Expecting property name")


def test_the_installed_console_script_runs_bwpctl(tmp_path: Any) -> None:
    """`make install` puts bwpctl next to the venv's python (pip install -e .): the script itself,
    as an operator types it (skipped in a venv installed without it)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "bwpctl"
    if not script.is_file():
        pytest.skip(f"no {script}: run `make install` (or pip install --no-deps -e .)")
    helped = subprocess.run([script, "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert helped.returncode == 0 and "usage: bwpctl" in helped.stdout and "reauth" in helped.stdout
    argv = [script, "--table", "t", "graphql", "inst-1", "query { x }", "--variables", "{"]
    failed = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("bwpctl graphql: --variables is not JSON") and len(failed.stderr.splitlines()) == 1
    debug = subprocess.run([*argv, "--debug"], capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


# --------------------------------------------------------------------------- replay, filtered and paged


def _failed(store: EventStore, event_id: str, installation: str, event_type: str, when: str | None) -> None:
    envelope = {"id": event_id, "detail-type": event_type, "detail": {"eventId": event_id}}
    store.record(
        EventRecord(
            event_id=event_id,
            outcome=Verdict.FAILED,
            message_id=f"m-{event_id}",
            processed_at=1_800_000_000,
            expires_at=1_900_000_000,
            event_type=event_type,
            installation_id=installation,
            reason="graphql_error",
            raw=json.dumps(envelope),
            event_time=when,
        )
    )


def _replayed(queue_url: str) -> list[str]:
    return sorted(json.loads(body)["id"] for body in _bodies(queue_url))


def test_replay_takes_only_the_matching_events_and_leaves_the_others(
    queues: dict[str, str], dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = EventStore(dynamodb, TABLE_NAME)
    _failed(store, "e-a", "inst-1", "ORDER_CONFIRMED", "2026-01-01T00:00:00Z")
    _failed(store, "e-b", "inst-2", "ORDER_CONFIRMED", "2026-01-02T00:00:00Z")
    _failed(store, "e-c", "inst-1", "ORDER_CANCELLED", "2026-01-03T00:00:00Z")
    _failed(store, "e-d", "inst-1", "ORDER_CONFIRMED", "2026-01-05T00:00:00.250Z")
    _failed(store, "e-e", "inst-1", "ORDER_CONFIRMED", None)  # no event time: recorded at 1_800_000_000 (2027)
    only_inst_1 = ["replay", "failed", "--installation", "inst-1", "--type", "ORDER_CONFIRMED"]
    span = ["--since", "2026-01-01T00:00:00", "--until", "2026-01-04T00:00:00Z"]
    assert main([*_args(queues), *only_inst_1, *span]) == 0
    assert capsys.readouterr().out.strip() == "replayed 1 failed event(s); 0 had no body to replay"
    assert _replayed(queues["queue"]) == ["e-a"]
    assert [i.event_id for i in store.attention("failed")] == ["e-e", "e-b", "e-c", "e-d"]  # the others stay
    since = ["--since", "2026-01-05T00:00:00.250Z", "--until", "2026-02-01"]  # since: inclusive
    assert main([*_args(queues), "replay", "failed", *since]) == 0
    assert _replayed(queues["queue"]) == ["e-d"]
    assert main([*_args(queues), *only_inst_1]) == 0  # no span: the event without a time too
    assert _replayed(queues["queue"]) == ["e-e"]
    assert main([*_args(queues), "replay", "failed", "--type", "ORDER_CANCELLED"]) == 0
    assert _replayed(queues["queue"]) == ["e-c"]
    assert [i.event_id for i in store.attention("failed")] == ["e-b"]
    capsys.readouterr()
    assert main([*_args(queues), "replay", "failed", "--since", "1d", "--until", "2d"]) == 1
    assert "is not before --until" in _one_line(capsys)


def test_replay_dry_run_lists_and_changes_nothing(
    queues: dict[str, str], dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = EventStore(dynamodb, TABLE_NAME)
    for n in range(5):
        _failed(store, f"e-{n}", f"inst-{n % 2}", "ORDER_CONFIRMED", f"2026-01-0{n + 1}T00:00:00Z")
    before = store.attention("failed")
    assert main([*_args(queues), "replay", "failed", "--installation", "inst-0", "--dry-run"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split("#")[1].split()[0] for row in rows[:-1]] == ["e-0", "e-2", "e-4"]  # oldest first
    assert all("ORDER_CONFIRMED  installation=inst-0" in row for row in rows[:-1])
    assert rows[-1] == "3 failed event(s) would be replayed; dry run: nothing sent or deleted"
    assert main([*_args(queues), "replay", "failed", "--dry-run", "--limit", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("2 failed event(s) would be replayed (--limit 2")
    assert _bodies(queues["queue"]) == [] and store.attention("failed") == before


def test_replay_and_attention_page_through_every_partition(
    queues: dict[str, str],
    dynamodb: Any,
    dynamodb_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """More items than a page per partition: nothing is capped silently by a page."""
    monkeypatch.setattr("shared.store.event_records.ATTENTION_PAGE_SIZE", 4)
    store = EventStore(dynamodb, TABLE_NAME)
    for n in range(90):  # ~11 a partition, about 3 pages each; inst-1's are two thirds
        when = f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"
        _failed(store, f"e-{n:03d}", f"inst-{min(n % 3, 1)}", "ORDER_CONFIRMED", when)
    assert main([*_args(queues), "attention", "failed"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1] == "90 failed event(s)"
    assert [row.split("#")[1].split()[0] for row in listed[:-1]] == [f"e-{n:03d}" for n in range(90)]
    dynamodb_calls.clear()
    assert main([*_args(queues), "replay", "failed", "--installation", "inst-1", "--limit", "50"]) == 0
    assert capsys.readouterr().out.startswith("replayed 50 failed event(s)")
    assert dynamodb_calls.count("Query") > 8  # more than one page of some partition
    inst_1 = [f"e-{n:03d}" for n in range(90) if n % 3]
    assert _replayed(queues["queue"]) == inst_1[:50]  # the oldest 50 of inst-1's 60
    assert main([*_args(queues), "replay", "failed", "--installation", "inst-1", "--limit", "1000"]) == 0
    assert _replayed(queues["queue"]) == inst_1[50:]
    assert {i.installation_id for i in store.attention("failed", limit=1000)} == {"inst-0"}
    assert len(store.attention("failed", limit=1000)) == 30


def test_purge_counts_with_dry_run_then_deletes_only_an_uninstalled_tenant(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _installed(dynamodb, "inst-p")
    events = EventStore(dynamodb, TABLE_NAME)
    events.put_link("bp-p", "inst-p", "operator")
    events.put_link("bp-other", "inst-other", "operator")
    assert main(["--table", TABLE_NAME, "purge", "inst-p"]) == 1  # live: refused, nothing deleted
    assert _one_line(capsys) == "bwpctl purge: installation inst-p is active: only an uninstalled one is purged"
    store.uninstall("inst-p", 1_800_000_001_000, 1_800_000_001)
    assert main(["--table", TABLE_NAME, "installations"]) == 0
    assert "uninstalled: 1" in capsys.readouterr().out  # waiting for its purge, from the index
    assert main(["--table", TABLE_NAME, "purge", "inst-p", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == "would delete 2 item(s) of inst-p; nothing deleted (--dry-run)"
    assert store.get("inst-p") is not None
    assert main(["--table", TABLE_NAME, "purge", "inst-p"]) == 0
    assert capsys.readouterr().out.strip() == "purged inst-p: 2 item(s) deleted"
    assert store.get("inst-p") is None
    assert events.lookup([], [], ["bp-p", "bp-other"]).links == {"bp-other": "inst-other"}
    assert main(["--table", TABLE_NAME, "purge", "inst-p"]) == 1
    assert "no installation inst-p" in _one_line(capsys)
