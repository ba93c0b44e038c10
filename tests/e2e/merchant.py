"""A merchant's browser without a browser: Launch, approve on the sandbox's consent page, Install.
requests never sends a `Secure` cookie over http, so the app's cookie is carried by hand (the
browser test shows that Chromium does it on its own)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import requests

from devtools.local_stack import LocalStack

TIMEOUT = 15


@dataclass
class Installed:
    status: int
    body: str
    cookie: str


def install(stack: LocalStack, installation_id: str) -> Installed:
    launch = requests.get(stack.launch_url, allow_redirects=False, timeout=TIMEOUT)
    assert launch.status_code == 302, launch.text
    cookie = launch.headers["Set-Cookie"].split(";")[0]
    authorize = launch.headers["Location"]
    assert authorize.startswith(stack.sandbox.authorize_url)
    form = dict(parse_qsl(urlsplit(authorize).query))
    approved = requests.post(
        stack.sandbox.authorize_url,
        data={**form, "installation_id": installation_id, "action": "approve"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert approved.status_code == 302, approved.text
    answer = requests.get(approved.headers["Location"], headers={"Cookie": cookie}, timeout=TIMEOUT)
    return Installed(answer.status_code, answer.text, cookie)
