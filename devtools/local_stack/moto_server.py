"""moto in server mode, DynamoDB one request at a time.

moto applies a DynamoDB ConditionExpression and the write it guards as separate steps, so two
concurrent requests can both pass one condition (seen here: 2 trials in 300 with 8 threads racing
one conditional update). Real DynamoDB makes each request atomic. Holding one lock around each
DynamoDB request restores that per-request atomicity for every client of the local stack (both
functions, tests), which keeps the token service's lease correct locally.

Only DynamoDB: an SQS long poll waits inside moto for a message another request adds, so
serialising SQS would stall every caller for the poll's duration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialisedApp:
    """WSGI middleware: one DynamoDB request inside `app` at a time (its body produced under the
    lock); other services pass straight through."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0  # DynamoDB requests seen at once: 1 unless the lock is bypassed

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            return self._app(environ, start_response)
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                return list(self._app(environ, start_response))
            finally:
                self._in_flight -= 1


class _QuietRequestHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log line per AWS call (the front and the poller report what matters)."""


class SerialisedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app is wrapped in `SerialisedApp`; port 0 picks a free port."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.app = SerialisedApp(DomainDispatcherApplication(create_backend_app))

    def start(self, timeout: float = 10.0) -> None:
        """Like moto's, but a bind failure (port in use) raises here instead of hanging."""
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._server_entry, daemon=True, name="moto-server")
        self._thread.start()
        if not self._server_ready_event.wait(timeout):
            raise TimeoutError(f"moto server did not start within {timeout} s")
        if self._startup_error is not None:
            raise RuntimeError(f"moto server could not start: {self._startup_error}") from self._startup_error

    def _server_entry(self) -> None:  # same as moto's, with the wrapped app and a quiet handler
        try:
            self._server = make_server(
                self._ip_address, self._port, self.app, True, request_handler=_QuietRequestHandler
            )
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self._startup_error = error
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
