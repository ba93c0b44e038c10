"""`LocalFront`: the HTTP API on 127.0.0.1. It turns each browser request into the payload 2.0
event API Gateway would send, invokes the function the template routes it to, and writes the
function's answer back as API Gateway would. Unknown routes get API Gateway's own 404."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.local_stack.http_api import (
    INTERNAL_ERROR_BODY,
    NOT_FOUND_BODY,
    HttpAnswer,
    Route,
    build_event,
    find_route,
    read_answer,
)
from devtools.local_stack.throttle import TOO_MANY_REQUESTS_BODY, TokenBucket

log = logging.getLogger("devtools.local_stack")

Function = Callable[[dict[str, Any]], Any]
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
TOO_LARGE_BODY = b'{"message":"Request Entity Too Large"}'


class LocalFront:
    """Binds its socket on construction (so its origin is known before anything else starts);
    `serve(functions)` starts answering; `stop()` closes it."""

    def __init__(
        self, routes: list[Route], *, host: str = "127.0.0.1", port: int = 0, account_id: str, public_host: str = ""
    ) -> None:
        """`public_host`: the host name in the origin (default: the bound address); "localhost"
        makes the app a different site from the sandbox on 127.0.0.1, as in production."""
        self.routes = routes
        self.public_host = public_host
        self.account_id = account_id
        self.functions: Mapping[str, Function] = {}
        self.events: list[dict[str, Any]] = []  # every event sent to a function (for tests)
        self.record_events = False
        self.throttles: Mapping[str, TokenBucket] = {}  # route key -> its bucket (throttle.py)
        handler = type("BoundFrontHandler", (_FrontHandler,), {"front": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{self.public_host or host!s}:{port}"

    def serve(self, functions: Mapping[str, Function]) -> None:
        missing = {route.function for route in self.routes} - set(functions)
        if missing:
            raise ValueError(f"no local function for routes of {sorted(missing)}")
        self.functions = functions
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="local-front"
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def answer(
        self, method: str, target: str, *, headers: list[tuple[str, str]], body: bytes, client: str, protocol: str
    ) -> HttpAnswer:
        raw_path = target.partition("?")[0]
        found = find_route(self.routes, method, raw_path)
        if found is None:
            return HttpAnswer(404, [("Content-Type", "application/json")], NOT_FOUND_BODY)
        route, parameters = found
        bucket = self.throttles.get(route.key)
        if bucket is not None and not bucket.take():
            return HttpAnswer(429, [("Content-Type", "application/json")], TOO_MANY_REQUESTS_BODY)
        event = build_event(
            method=method,
            target=target,
            headers=headers,
            body=body,
            source_ip=client,
            protocol=protocol,
            route=route,
            path_parameters=parameters,
            account_id=self.account_id,
        )
        if self.record_events:
            self.events.append(event)
        try:
            result = self.functions[route.function](event)
        except Exception:
            log.exception("%s failed on %s", route.function, route.key)
            return HttpAnswer(500, [("Content-Type", "application/json")], INTERNAL_ERROR_BODY)
        return read_answer(result)


class _FrontHandler(BaseHTTPRequestHandler):
    front: LocalFront
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would carry codes and verification tokens into the terminal."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(HttpAnswer(413, [("Content-Type", "application/json")], TOO_LARGE_BODY))
            return
        body = self.rfile.read(length) if length else b""
        answer = self.front.answer(
            self.command,
            self.path,
            headers=list(self.headers.items()),
            body=body,
            client=self.client_address[0],
            protocol=self.request_version,
        )
        self._write(answer)

    def _write(self, answer: HttpAnswer) -> None:
        self.send_response(answer.status)
        names = {name.lower() for name, _ in answer.headers}
        for name, value in answer.headers:
            if name.lower() not in {"content-length", "connection"}:
                self.send_header(name, value)
        if "content-type" not in names and answer.body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle
