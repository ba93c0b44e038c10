"""`make dev` (python -m devtools.local_stack) refuses plainly, without a traceback, to start on a
port in use or beside a running stack, and replaces the state file a killed run left behind."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devtools.local_stack import __main__ as dev

pytestmark = pytest.mark.e2e


@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / ".local-stack.json"
    monkeypatch.setattr(dev, "STATE_FILE", path)
    return path


@pytest.fixture
def answering_endpoint() -> Iterator[str]:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_port_in_use_is_said_in_one_line(state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert dev.main(["--front-port", str(port), "--sandbox-port", "0", "--moto-port", "0"]) == 1
    err = capsys.readouterr().err
    assert f"a port make dev needs is in use ({port}, 0, 0)" in err and "Traceback" not in err
    assert not state_file.exists()


def test_a_running_stack_is_not_overwritten(
    state_file: Path, answering_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {"endpoint_url": answering_endpoint, "launch_url": "http://localhost:1/launch"}
    state_file.write_text(json.dumps(state), encoding="utf-8")
    assert dev.main(["--front-port", "0", "--sandbox-port", "0", "--moto-port", "0"]) == 1
    assert "already running (http://localhost:1/launch)" in capsys.readouterr().err
    assert json.loads(state_file.read_text(encoding="utf-8")) == state  # untouched


def test_a_state_file_left_by_a_killed_run_is_stale(state_file: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once closed
    state_file.write_text(json.dumps({"endpoint_url": f"http://127.0.0.1:{port}"}), encoding="utf-8")
    assert dev.running_stack(state_file) is None
    state_file.write_text("{half written", encoding="utf-8")
    assert dev.running_stack(state_file) is None
