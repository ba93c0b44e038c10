"""Session-wide secret scan: everything the test suite logs or prints is searched, at the end of
the session, for every secret the tests minted. A single hit fails the session.

What is captured (for every test, including setup and teardown):
- every log record that reaches the root logger, with its `extra` fields;
- every record of Powertools' logger, formatted by Powertools (so appended keys count too);
- each phase's captured stdout, stderr and log sections (EMF metrics, prints, warnings).

Output a test reads through capsys/capfd is its own to check: an operator command whose job is
to print a token (`bwpctl token`) is not a log. Log records are teed before any capture, so a
test consuming its output never hides a log line from the scan.

What is a secret: every value minted through the places that mint them, wrapped for the session:
the sandbox's authorization codes, access and refresh tokens, the OAuth function's PKCE
verifiers and browser nonces, every verification token the sandbox signs, every pydantic
`SecretStr` built anywhere (client secrets, token sets), plus values registered explicitly
(`register`). Values shorter than MIN_LENGTH are ignored (test doubles such as "x").

tests/conftest.py imports the hooks below; `pytest -p tests.security.log_scan` loads it alone.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

MIN_LENGTH = 12
# A secret is found by its last 12 characters, or by the 12 in its middle (so a truncated token
# counts once it is half shown; a short preview does not): 72 random bits each, no false hits.
FINGERPRINT = 12
_WORD_RUN = re.compile(rf"[A-Za-z0-9_\-]{{{FINGERPRINT},}}")
_STANDARD_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@dataclass(frozen=True)
class Leak:
    test: str  # the test whose output held it
    origin: str  # what the secret is and which test minted it
    preview: str  # the first characters of the secret only
    context: str  # the surrounding text, the secret redacted


class SecretRegistry:
    """Secrets by fingerprint; thread-safe (the sandbox mints from its server threads)."""

    def __init__(self) -> None:
        self._by_fingerprint: dict[str, tuple[str, str]] = {}
        self._odd: dict[str, str] = {}  # secrets with no [A-Za-z0-9_-] fingerprint: searched as they are
        self._lock = threading.Lock()

    def add(self, value: object, origin: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            return
        middle = len(value) // 2
        slices = [value[-FINGERPRINT:]] + ([value[middle - 6 : middle + 6]] if len(value) >= 2 * FINGERPRINT else [])
        usable = [piece for piece in slices if _WORD_RUN.fullmatch(piece)]
        with self._lock:
            for piece in usable:
                self._by_fingerprint.setdefault(piece, (value, origin))
            if not usable:
                self._odd.setdefault(value, origin)

    def __len__(self) -> int:
        return len(self._by_fingerprint) + len(self._odd)

    def find(self, text: str) -> Iterator[tuple[str, str, int]]:
        """(secret, origin, position) of every secret in `text`, raw or percent/JSON-encoded."""
        with self._lock:
            by_fingerprint, odd = dict(self._by_fingerprint), dict(self._odd)
        for run in _WORD_RUN.finditer(text):
            word = run.group()
            for start in range(len(word) - FINGERPRINT + 1):
                hit = by_fingerprint.get(word[start : start + FINGERPRINT])
                if hit:
                    yield hit[0], hit[1], run.start() + start
        for secret, origin in odd.items():
            position = text.find(secret)
            if position >= 0:
                yield secret, origin, position


class OutputBuffer:
    """Text the tests produced, by test."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []
        self.current_test = "<session>"
        self._lock = threading.Lock()

    def add(self, text: str, test: str | None = None) -> None:
        if text:
            with self._lock:
                self.chunks.append((test or self.current_test, text))

    def scan(self, registry: SecretRegistry) -> list[Leak]:
        leaks: dict[tuple[str, str], Leak] = {}
        with self._lock:
            chunks = list(self.chunks)
        for test, text in chunks:
            for secret, origin, position in registry.find(text):
                around = text[max(0, position - 100) : position + len(secret) + 100].replace(secret, "<SECRET>")
                middle = len(secret) // 2
                for piece in {secret[-FINGERPRINT:], secret[middle - 6 : middle + 6]}:
                    around = _redact(around, piece)
                around = around.replace("\n", " ")
                leaks.setdefault((test, secret), Leak(test, origin, secret[:6] + "...", around))
        return list(leaks.values())


def _redact(text: str, piece: str) -> str:
    """Blank out any encoded form too: the run of token-ish characters around a fingerprint."""
    if len(piece) < FINGERPRINT:
        return text
    return re.sub(r"[\w\-%|.~+/=]*" + re.escape(piece) + r"[\w\-%|.~+/=]*", "<SECRET>", text)


class _Tee(logging.Handler):
    """Formats every record it sees into the buffer; `extra` fields included."""

    def __init__(self, buffer: OutputBuffer, formatter: logging.Formatter | None = None) -> None:
        super().__init__(logging.NOTSET)
        self._buffer = buffer
        self._formatter = formatter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._formatter is not None:
                text = self._formatter.format(record)
            else:
                extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS}
                text = f"{record.name} {record.levelname} {record.getMessage()} {extras!r}"
                if record.exc_info:
                    text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._buffer.add(text)
        except Exception:  # noqa: BLE001 - the scan must never break a test
            self.handleError(record)


REGISTRY = SecretRegistry()
BUFFER = OutputBuffer()


def register(value: object, origin: str) -> None:
    """Declare a secret the wrapped mints below do not see."""
    REGISTRY.add(value, f"{origin} (from {BUFFER.current_test})")


# ------------------------------------------------------------------ where secrets are minted
_undo: list[Callable[[], None]] = []


Harvest = Callable[[Any, tuple[Any, ...], dict[str, Any]], Iterable[tuple[object, str]]]


def _wrap(owner: Any, name: str, harvest: Harvest) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        for value, origin in harvest(result, args, kwargs):
            register(value, origin)
        return result

    setattr(owner, name, wrapper)
    _undo.append(lambda: setattr(owner, name, original))


def _install_mint_hooks() -> None:
    from pydantic import SecretStr

    from oauth import pkce
    from sandbox.oauth import OAuthState
    from sandbox.signing import VerificationSigner

    _wrap(OAuthState, "issue_code", lambda code, *_: [(code, "authorization code")])
    _wrap(OAuthState, "_new_access_locked", lambda token, *_: [(token, "access token")])
    _wrap(OAuthState, "_issue_locked", lambda pair, *_: [(pair.refresh_token, "refresh token")])
    _wrap(pkce, "new_code_verifier", lambda verifier, *_: [(verifier, "PKCE code verifier")])
    _wrap(pkce, "new_browser_nonce", lambda nonce, *_: [(nonce, "browser-binding nonce")])
    _wrap(VerificationSigner, "sign", lambda token, *_: [(token, "verification token")])
    _wrap(
        SecretStr,
        "__init__",
        lambda _, args, kwargs: [(args[1] if len(args) > 1 else kwargs.get("secret_value"), "SecretStr value")],
    )


# ------------------------------------------------------------------ where output is produced
def _install_taps() -> None:
    from shared.observability import logger as powertools_logger

    root_tee = _Tee(BUFFER)
    logging.getLogger().addHandler(root_tee)
    _undo.append(lambda: logging.getLogger().removeHandler(root_tee))
    powertools_tee = _Tee(BUFFER, powertools_logger.registered_formatter)
    underlying = logging.getLogger(powertools_logger.name)  # the stdlib logger Powertools wraps
    underlying.addHandler(powertools_tee)
    _undo.append(lambda: underlying.removeHandler(powertools_tee))


# ------------------------------------------------------------------ pytest hooks
def pytest_sessionstart(session: pytest.Session) -> None:
    _install_mint_hooks()
    _install_taps()


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    BUFFER.current_test = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for text in (report.capstdout, report.capstderr, report.caplog):
        BUFFER.add(text, report.nodeid)


_found: list[Leak] = []
_scan_seconds: list[float] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _undo:
        _undo.pop()()
    started = time.perf_counter()
    _found.extend(BUFFER.scan(REGISTRY))
    _scan_seconds.append(time.perf_counter() - started)
    if _found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    size = sum(len(text) for _, text in BUFFER.chunks)
    seconds = sum(_scan_seconds)
    checked = f"{len(REGISTRY)} secrets against {len(BUFFER.chunks)} outputs, {size:,} characters, in {seconds:.1f} s"
    if not _found:
        terminalreporter.write_line(f"log secret scan: no leak ({checked})")
        return
    terminalreporter.section("SECRET LEAK IN LOGS OR OUTPUT", sep="!", red=True, bold=True)
    for leak in _found:
        terminalreporter.write_line(f"{leak.test}: {leak.origin} {leak.preview}", red=True)
        terminalreporter.write_line(f"    ...{leak.context}...")
    terminalreporter.write_line(f"log secret scan FAILED: {len(_found)} leak(s) ({checked})", red=True, bold=True)
