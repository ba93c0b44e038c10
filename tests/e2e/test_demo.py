"""`make demo` (devtools.demo) runs in-process, start to finish, and passes every step; its report
and the pieces it is made of (the consent form reader, the verdict counting, the report's own
secret check) behave."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from devtools import demo
from devtools.merchant import page_terms, read_form
from sandbox.oauth import AUTHORIZE_PARAMS
from sandbox.pages import consent_page

pytestmark = pytest.mark.e2e


def test_the_demo_passes_every_step_and_saves_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_file, logs = tmp_path / "demo-report.txt", tmp_path / "functions.log"
    threads_before = {t.ident for t in threading.enumerate()}

    status = demo.main(["--save-report", str(report_file), "--logs", str(logs), "--timeout", "40"])

    out, err = capsys.readouterr()
    assert status == 0, out
    assert report_file.read_text(encoding="utf-8") == out
    progress = [line for line in err.splitlines() if line.startswith("  [")]  # one line per step, as it ends
    assert progress[0].startswith("  [1/") and progress[-1].endswith("uninstall: ok") and len(progress) >= 10
    lines = out.splitlines()
    assert 30 <= len(lines) <= 60
    steps = [line.split()[:2] for line in lines if line.startswith(("  PASS  ", "  FAIL  ", "  SKIP  "))]
    names = [name for _, name in steps]
    for step in ("install", "settings", "link", "events", "retry", "dead-letter", "redrive", "uninstall", "shutdown"):
        assert step in names
    assert {verdict for verdict, _ in steps} == {"PASS"}
    assert lines[-1].startswith(f"PASS: {len(steps)}/{len(steps)} steps passed in ")
    assert "> GET /install 200: App installed" in out
    assert "status Connected (signed Settings page)" in out
    assert "processed 9, duplicate 1, unroutable 1, failed 1, needs_reauthorization 1" in out
    assert "then DLQ: ORDER_CONFIRMED 322-1000001-0000005" in out
    assert "bwpctl redrive: 1 moved > processed" in out
    assert out.count("line item(s)") == 5
    assert "the tenant is purged from" in out
    # the functions' JSON logs stay out of the report (and went to --logs)
    assert '"level"' not in out and '"_aws"' not in out
    assert any(json.loads(line).get("message") == "event processed" for line in logs.read_text().splitlines())
    # nothing the demo started is left running
    leftovers = [
        t.name for t in threading.enumerate() if t.ident not in threads_before and t.name in demo.SERVER_THREADS
    ]
    assert leftovers == []


def test_the_consent_form_is_read_from_the_page_as_a_browser_would() -> None:
    params = {name: f"value-of-{name}" for name in AUTHORIZE_PARAMS}
    html = consent_page(params, AUTHORIZE_PARAMS, "amzn1.bwp.installation.x", "A & B store")
    form = read_form(html, "http://127.0.0.1:9/marketplace/authorize?state=s", "consent")
    assert form.action == "http://127.0.0.1:9/marketplace/authorize"
    assert form.method == "POST"
    assert form.fields == {**params, "installation_id": "amzn1.bwp.installation.x", "store_name": "A & B store"}
    assert form.buttons == {"action": ["approve", "deny"]}


def test_page_terms_reads_a_definition_list() -> None:
    html = "<dl><dt>Status</dt><dd>Installed</dd><dt>Access token</dt><dd class='ok'> Healthy\n</dd></dl>"
    assert page_terms(html) == {"Status": "Installed", "Access token": "Healthy"}


def test_verdicts_are_counted_from_the_events_functions_log_lines() -> None:
    capture = demo.Capture()
    capture.write('{"message": "event processed", "function_name": "EventsFunction", "event_id": "e1"}\n')
    capture.write('{"message": "event retry", "function_name": "EventsFunction", "event_id": "e2", "reason": "x"}\n')
    capture.write('{"message": "event stored", "function_name": "OAuthFunction", "event_id": "e3"}\n')
    capture.write('{"_aws": {}, "EventsProcessed": [1.0]}\nnot json\n')
    assert capture.verdicts() == [("e1", "processed", None), ("e2", "retry", "x")]


def fake_demo(*, secret: str, in_report: bool, failed_step: bool = False) -> SimpleNamespace:
    capture = demo.Capture()
    sections = demo.Sections(installation=["Installation x", f"  note {secret if in_report else 'nothing'}"])
    steps = [demo.Step("install", not failed_step, "ok"), demo.Step("events", None, "not run")]
    steps = steps if failed_step else steps[:1]
    return SimpleNamespace(sections=sections, steps=steps, secrets={secret}, capture=capture)


def test_the_report_fails_when_a_step_fails_or_a_secret_shows() -> None:
    clean = demo.render(fake_demo(secret="s3cr3t-token", in_report=False), [], 1.0)
    assert clean.splitlines()[-1] == "PASS: 2/2 steps passed in 1.0 s"
    leaked = demo.render(fake_demo(secret="s3cr3t-token", in_report=True), [], 1.0)
    assert "  FAIL  no secrets" in leaked and leaked.splitlines()[-1].startswith("FAIL: 1/2")
    stopped = demo.render(fake_demo(secret="zz-secret", in_report=False, failed_step=True), [], 1.0)
    assert "  FAIL  install" in stopped and "  SKIP  events" in stopped
    assert stopped.splitlines()[-1].startswith("FAIL: 1/3")
