"""bwpctl --local against a running local stack, as an operator uses it after `make dev`: every
command finds the stack through its state file, and every mistake is one line and exit 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bwpctl import target as bwpctl_target
from bwpctl.__main__ import main as bwpctl
from devtools.local_stack import LocalStack
from devtools.local_stack.__main__ import write_state_file
from sandbox.events import partner_event, resource_path
from tests.e2e.merchant import install

pytestmark = pytest.mark.e2e

INSTALLATION = "amzn1.bwp.installation.e2e-bwpctl"
GONE = "amzn1.bwp.installation.e2e-bwpctl-gone"
PRODUCT = "amzn1.bp.product.e2e-bwpctl"
WAIT = 40


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(background_polling=False, retry_delay_seconds=0) as running:
        assert install(running, INSTALLATION).status == 200
        assert install(running, GONE).status == 200
        yield running


@pytest.fixture
def state(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The state file `make dev` writes, here in a temporary place bwpctl is pointed at."""
    path = tmp_path / ".local-stack.json"
    write_state_file(stack, path)
    monkeypatch.setattr(bwpctl_target, "LOCAL_STATE", path)
    return path


def run(capsys: pytest.CaptureFixture[str], *command: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = bwpctl(["--local", *command])
    out, err = capsys.readouterr()
    return status, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_every_operator_command_against_the_local_stack(
    stack: LocalStack, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "link", PRODUCT, INSTALLATION)[0] == 0
    status, out, _ = run(capsys, "installations")
    assert status == 0 and "active: 2" in out
    status, out, _ = run(capsys, "show", INSTALLATION)
    assert status == 0 and f"{INSTALLATION}  active" in out
    # an order Buy with Prime does not know (ResourceNotFoundError): the event is kept for attention
    stack.sandbox.put_order(INSTALLATION, "322-0000000-0000404", None)
    event = partner_event("ORDER_CONFIRMED", [resource_path(PRODUCT, order_id="322-0000000-0000404")])
    stack.publish(event)
    stack.pollers["EventsFunction.PartnerEventsQueue"].run_until_idle(timeout=WAIT)
    event_id = event["detail"]["eventId"]
    status, out, err = run(capsys, "event", event_id)
    assert status == 0 and json.loads(out)["outcome"] == "failed", (out, err)
    outcome = "failed"
    status, out, _ = run(capsys, "attention", outcome)
    assert status == 0 and event_id in out
    status, out, _ = run(capsys, "replay", outcome, "--installation", INSTALLATION, "--dry-run")
    assert status == 0 and out.strip().endswith("1 failed event(s) would be replayed; dry run: nothing sent or deleted")
    status, out, _ = run(capsys, "replay", outcome, "--installation", "amzn1.bwp.installation.nobody", "--dry-run")
    assert status == 0 and out.strip().startswith("0 failed event(s) would be replayed")
    status, out, _ = run(capsys, "attention", outcome)
    assert event_id in out  # the dry runs left it
    status, out, _ = run(capsys, "dlq", "peek")
    assert status == 0 and "0 message(s) shown; nothing moved" in out
    status, out, _ = run(capsys, "redrive")
    assert status == 0 and "redrove 0 message(s)" in out
    status, out, _ = run(capsys, "reauth", INSTALLATION)
    assert status == 0 and "active -> needs_reauthorization" in out
    # purge: refused while installed, done once uninstalled
    status, _, err = run(capsys, "purge", GONE)
    assert status == 1 and "only an uninstalled one is purged" in one_line(err)
    assert stack.uninstall(GONE).status_code == 200
    status, out, _ = run(capsys, "purge", GONE, "--dry-run")
    assert status == 0 and "nothing deleted (--dry-run)" in out
    status, out, _ = run(capsys, "purge", GONE)
    assert status == 0 and out.startswith(f"purged {GONE}")
    status, _, err = run(capsys, "show", GONE)
    assert status == 1 and f"no installation {GONE}" in one_line(err)


def test_mistakes_are_one_line_and_exit_1(stack: LocalStack, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "show", "amzn1.bwp.installation.nobody")
    assert status == 1 and "no installation amzn1.bwp.installation.nobody" in one_line(err)
    status, _, err = run(capsys, "event", "no-such-event")
    assert status == 1 and "no record of event no-such-event" in one_line(err)
    status, _, err = run(capsys, "graphql", INSTALLATION, "{ x }", "--variables", "[1]")
    assert status == 1 and "--variables must be a JSON object" in one_line(err)
    # a state file left by a stack that is gone
    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "endpoint_url": "http://127.0.0.1:9"}))
    status, _, err = run(capsys, "installations")
    assert status == 1 and "make dev" in one_line(err)
    state.unlink()
    status, _, err = run(capsys, "installations")
    assert status == 1 and "no local stack found" in one_line(err)
