"""Fuzz the OAuth function's HTTP surface through `oauth.handler.handle` (moto table, sandbox).

Random paths (the five routes, look-alikes and noise), methods, raw query strings (code, state,
verification tokens valid or not, placed first, last, twice or in a header, percent-encoded or
raw), headers, cookies and bodies (base64 flag on or off, valid or not). Whatever arrives:

- never a 5xx: the documented 500 (not configured) and 502 (Buy with Prime unreachable) need a
  broken configuration or upstream, which random input cannot cause;
- every answer is well formed and carries the security headers;
- a refused request (status >= 400) leaves the table exactly as it was, with one documented
  exception: a genuine install (valid verification token, live state, its browser's cookie)
  whose code Buy with Prime rejects has consumed its single-use state;
- no response (headers, cookies, body) ever holds a token, refresh token, code verifier or the
  client secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devtools.apigw import http_event
from oauth import handler
from oauth.http import SECURITY_HEADERS
from tests.app_driver import API_ORIGIN, AppDriver
from tests.conftest import CLIENT_SECRET
from tests.security.log_scan import REGISTRY

INSTALLED = "amzn1.bwp.installation.fuzz-a"
OTHER = "amzn1.bwp.installation.fuzz-b"
ROUTES = ("/launch", "/install", "/settings", "/uninstall", "/health")
LOOK_ALIKES = ("/", "", "/LAUNCH", "/install/", "//settings", "/uninstall/", "/health/", "/settings;x", "/%69nstall")
TOKEN_KINDS = (
    "none",
    "valid",
    "valid-other-installation",
    "unknown-installation",
    "other-url",
    "other-body",
    "expired",
    "alg-none",
    "hs256",
    "garbage",
    "surrogate",
)
PLACEMENTS = ("query-last", "query-first", "query-twice", "header", "header-and-query")
SECRET_ATTRIBUTES = ("access_token", "refresh_token", "code_verifier")
EXAMPLES = 400  # about 15 s here; the bound keeps it well under 40 s on a 2-core CI machine

# Any code point, lone surrogates and NUL included: an event's JSON can carry "\ud800" escapes
text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=24),
    st.text(st.characters(categories=["Cs", "Cc", "Lo", "So"]), max_size=8),
)
query_text = st.one_of(text, st.text("abcXYZ019-_.~%&=+/?#; ", max_size=24))


@dataclass
class Spec:
    method: str
    path: str
    pairs: list[tuple[str, str]]
    token_kind: str
    placement: str
    encode: bool
    headers: dict[str, str]
    cookies: list[str]
    body: bytes
    base64_flag: bool | None
    broken_base64: bool
    cookie_header: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    method = draw(st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]), text))
    path = draw(
        st.one_of(st.sampled_from(ROUTES), st.sampled_from(LOOK_ALIKES), text.map(lambda s: "/" + s.lstrip("/")))
    )
    key = st.one_of(st.sampled_from(["code", "state", "verification-token", "Verification-Token", "x"]), query_text)
    value = st.one_of(query_text, st.sampled_from(["LIVE_STATE", "", "ANcode-forged", "a" * 300]))
    pairs = draw(st.lists(st.tuples(key, value), max_size=5))
    header_name = st.one_of(
        st.sampled_from(["host", "verification-token", "cookie", "content-type", "x-forwarded-host", "origin"]),
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
    )
    headers = draw(st.dictionaries(header_name, text, max_size=3))
    cookies = draw(st.lists(st.one_of(st.sampled_from(["LIVE_COOKIE", "__Host-bwp-oauth=forged"]), text), max_size=3))
    body = draw(st.one_of(st.just(b""), st.binary(max_size=48), st.just(b'{"reason":"merchant uninstalled"}')))
    return Spec(
        method=method,
        path=path,
        pairs=pairs,
        token_kind=draw(st.sampled_from(TOKEN_KINDS)),
        placement=draw(st.sampled_from(PLACEMENTS)),
        encode=draw(st.booleans()),
        headers=headers,
        cookies=cookies,
        body=body,
        base64_flag=draw(st.sampled_from([None, True, False])),
        broken_base64=draw(st.booleans()),
        cookie_header=draw(st.booleans()),
    )


class Harness:
    """The fixtures plus a live launched flow that examples may present (and consume)."""

    def __init__(self, app: AppDriver) -> None:
        self.app = app
        assert app.install(INSTALLED).status == 200
        assert app.install(OTHER).status == 200
        self.relaunch()

    def relaunch(self) -> None:
        launched = self.app.launch()
        self.state, self.cookie = launched.state, launched.cookie

    def live_state_exists(self, items: list[dict[str, Any]]) -> bool:
        return any(i["pk"]["S"] == f"OAUTH_STATE#{self.state}" for i in items)

    def token(self, spec: Spec, url: str, body: bytes) -> str | None:
        signer = self.app.sandbox.signer
        kind = spec.token_kind
        if kind == "none":
            return None
        if kind == "garbage":
            return "eyJhbGciOiJFUzI1NiJ9.garbage.sig"
        if kind == "surrogate":
            return "eyJhbGciOiJFUzI1NiJ9.\ud800\x00.sig"
        installation = {"valid-other-installation": OTHER, "unknown-installation": "amzn1.bwp.installation.nobody"}
        installation_id = installation.get(kind, INSTALLED)
        signed_url = f"{API_ORIGIN}/elsewhere" if kind == "other-url" else url
        signed_body = b"another body" if kind == "other-body" else body
        options: dict[str, Any] = {}
        if kind == "expired":
            options = {"now": time.time() - 3600}
        elif kind == "alg-none":
            options = {"algorithm": "none"}
        elif kind == "hs256":
            options = {"algorithm": "HS256"}
        try:
            return signer.sign(signed_url, signed_body, installation_id, **options)
        except UnicodeEncodeError:  # a URL with lone surrogates: Buy with Prime could never sign it
            return "eyJhbGciOiJFUzI1NiJ9.unsignable.sig"

    def event(self, spec: Spec) -> dict[str, Any]:
        def piece(raw: str) -> str:
            live = raw.replace("LIVE_STATE", self.state)
            return quote(live, safe="", errors="surrogatepass") if spec.encode else live

        pairs = [f"{piece(k)}={piece(v)}" for k, v in spec.pairs]
        base_query = "&".join(pairs)
        path = spec.path if spec.path.startswith("/") or not spec.path else "/" + spec.path
        url_without_token = f"{API_ORIGIN}{path}" + (f"?{base_query}" if base_query else "")
        token = self.token(spec, url_without_token, spec.body)
        headers = dict(spec.headers)
        query = base_query
        if token is not None:
            if spec.placement in ("header", "header-and-query"):
                headers["verification-token"] = token
            if spec.placement in ("query-last", "header-and-query"):
                query = f"{base_query}&verification-token={token}" if base_query else f"verification-token={token}"
            elif spec.placement == "query-first":
                query = f"verification-token={token}" + (f"&{base_query}" if base_query else "")
            elif spec.placement == "query-twice":
                query = f"verification-token={token}&{base_query}&verification-token=forged"
        cookies = [c.replace("LIVE_COOKIE", self.cookie) for c in spec.cookies]
        if spec.cookie_header and cookies:
            headers["cookie"] = "; ".join(cookies)
            cookies = []
        flag = spec.base64_flag
        if flag is False and not _is_utf8(spec.body):
            flag = None  # API Gateway base64-encodes every body that is not text
        event = http_event(
            spec.method or "GET",
            f"{API_ORIGIN}{path}",
            body=spec.body,
            headers=headers,
            cookies=cookies or None,
            base64_body=flag,
        )
        event["rawPath"] = spec.path  # exactly as drawn, even "" or without a leading slash
        event["rawQueryString"] = query
        if spec.broken_base64 and spec.base64_flag:
            event["isBase64Encoded"] = True
            event["body"] = "***" + spec.body.hex() + "=="
        spec.notes["presented_live_state"] = self.state in query and self.cookie in str(headers) + str(cookies)
        return event


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _secrets(app: AppDriver, items: list[dict[str, Any]]) -> set[str]:
    found = {CLIENT_SECRET}
    for item in items:
        found.update(item[name]["S"] for name in SECRET_ATTRIBUTES if name in item)
    found.update(app.sandbox.issued_access_tokens())
    return found


def _check(harness: Harness, spec: Spec) -> int:
    app = harness.app
    before = app.items()
    if not harness.live_state_exists(before):
        harness.relaunch()
        before = app.items()
    event = harness.event(spec)
    secrets = _secrets(app, before)
    answer = handler.handle(event, app.deps)
    after = app.items()

    status = answer["statusCode"]
    assert isinstance(status, int) and 200 <= status < 500, (status, answer.get("body", "")[:300])
    assert isinstance(answer["body"], str) and "Traceback" not in answer["body"]
    for name, value in SECURITY_HEADERS.items():
        assert answer["headers"][name] == value
    if status >= 400 and after != before:
        consumed = [i for i in before if i not in after]
        assert spec.notes["presented_live_state"] and status == 400, "a refused request changed the table"
        assert [i["pk"]["S"] for i in consumed] == [f"OAUTH_STATE#{harness.state}"] and len(after) == len(before) - 1
    cookies = list(answer.get("cookies", []))
    if status == 302 and event["rawPath"] == "/launch":  # the one place the browser nonce is meant to go
        cookies = [c for c in cookies if not c.startswith("__Host-bwp-oauth=")]
    shown = " ".join([answer["body"], *map(str, answer["headers"].values()), *cookies])
    assert not [s[:8] for s in secrets if s in shown], "a secret is in the response"
    assert not list(REGISTRY.find(shown)), "a minted secret (token, code, verifier) is in the response"
    return int(status)


def test_no_request_to_any_route_crashes_changes_state_when_refused_or_leaks_a_secret(app: AppDriver) -> None:
    harness = Harness(app)
    statuses: set[int] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @example(Spec("POST", "/uninstall", [], "valid", "query-last", False, {}, [], b"x", True, True))
    @example(Spec("GET", "/install", [("code", "c"), ("state", "LIVE_STATE")], "valid", "query-last", False, {},
                  ["LIVE_COOKIE"], b"", None, False))  # fmt: skip
    @example(Spec("GET", "/settings", [], "valid", "header", True, {}, [], b"", None, False))
    @example(Spec("GET", "/settings", [], "valid-other-installation", "query-twice", False, {}, [], b"", None, False))
    @example(Spec("GET", "/launch", [], "none", "query-last", False, {}, [], b"", None, False))
    @example(Spec("GET", "/settings", [], "none", "query-last", False, {}, [], b"", None, False))
    @example(Spec("POST", "/uninstall", [], "alg-none", "query-last", False, {}, [], b"{}", None, False))
    @example(Spec("GET", "/admin", [], "valid", "query-last", False, {}, [], b"", None, False))
    @example(Spec("DELETE", "/settings", [], "valid", "query-last", False, {}, [], b"", None, False))
    @given(specs())
    def run(spec: Spec) -> None:
        statuses.add(_check(harness, spec))

    run()
    # the fuzz reached every kind of answer, success paths included, not only refusals
    assert {200, 302, 400, 401, 403, 404, 405} <= statuses
    assert harness.app.sandbox.calls["token:authorization_code"] >= 3  # two installs and the live-state example
