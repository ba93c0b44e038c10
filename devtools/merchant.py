"""A merchant's browser without a browser (requests), for the demo and the end-to-end tests:
Launch -> the consent page Buy with Prime shows -> submit its form (Approve) -> the signed Install
URL -> "App installed"; and reading the pages the app answers.

Like a browser, it reads the consent page's form from the HTML (action, method, every input with
its value, the button pressed) rather than rebuilding it. One difference, handled by hand:
requests never sends a `Secure` cookie over http, so the app's `__Host-bwp-oauth` cookie is
carried from Launch to Install explicitly, and only to the app's own Install URL (the browser
test shows that Chromium does it on its own on http://localhost)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

TIMEOUT = 15
COOKIE = "__Host-bwp-oauth"


class MerchantError(RuntimeError):
    """A step of the flow did not answer what a browser would have needed to go on."""


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    buttons: dict[str, list[str]]  # name -> the values of the submit buttons carrying it


@dataclass
class Installed:
    """What the merchant saw: the Install page's status and text, and the hops that led there."""

    status: int
    body: str
    cookie: str
    install_url: str = ""
    hops: list[str] = field(default_factory=list)  # "GET /launch 302", ... (no query: it holds codes)

    @property
    def title(self) -> str:
        return page_title(self.body)


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[dict[str, str], dict[str, str], dict[str, list[str]]]] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((attributes, {}, {}))
            self._open = True
            return
        if not self._open or "name" not in attributes:
            return
        _, fields, buttons = self.forms[-1]
        kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
        if tag == "button" or kind == "submit":
            buttons.setdefault(attributes["name"], []).append(attributes.get("value", ""))
        elif tag in {"input", "textarea", "select"} and kind not in {"checkbox", "radio", "file", "image"}:
            fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


def read_form(html: str, page_url: str, form_id: str | None = None) -> Form:
    """The page's form (the one with `form_id`, else the only one), its action made absolute."""
    reader = _FormReader()
    reader.feed(html)
    forms = [f for f in reader.forms if form_id is None or f[0].get("id") == form_id]
    if len(forms) != 1:
        raise MerchantError(f"expected one form{f' #{form_id}' if form_id else ''} on {page_url}, found {len(forms)}")
    attributes, fields, buttons = forms[0]
    return Form(
        action=urljoin(page_url, attributes.get("action") or page_url),
        method=(attributes.get("method") or "get").upper(),
        fields=fields,
        buttons=buttons,
    )


class _TextReader(HTMLParser):
    """The <title>, the first <h1> and every <dt>/<dd> pair of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.h1 = ""
        self.terms: dict[str, str] = {}
        self._tag = ""
        self._text = ""
        self._term = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"title", "h1", "dt", "dd"}:
            self._tag, self._text = tag, ""

    def handle_data(self, data: str) -> None:
        if self._tag:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag != self._tag:
            return
        text = " ".join(self._text.split())
        if tag == "title":
            self.title = text
        elif tag == "h1" and not self.h1:
            self.h1 = text
        elif tag == "dt":
            self._term = text
        elif tag == "dd" and self._term:
            self.terms[self._term] = text
        self._tag = ""


def page_title(html: str) -> str:
    """The page's first <h1> (what the merchant reads first), else its <title>."""
    reader = _TextReader()
    reader.feed(html)
    return reader.h1 or reader.title


def page_terms(html: str) -> dict[str, str]:
    """A page's definition list as {term: text}, e.g. the Settings page's Status and Access token."""
    reader = _TextReader()
    reader.feed(html)
    return reader.terms


def _hop(response: requests.Response) -> str:
    return f"{response.request.method} {urlsplit(response.url).path} {response.status_code}"


class Merchant:
    """One merchant installing the app from its Launch URL."""

    def __init__(self, launch_url: str, *, timeout: float = TIMEOUT) -> None:
        self.launch_url = launch_url
        self.timeout = timeout
        self.session = requests.Session()

    def install(self, installation_id: str, *, store_name: str | None = None, action: str = "approve") -> Installed:
        """Launch, consent (the form as the page gives it, this installation ID typed in), Install."""
        location, cookie, hops = self.consent(installation_id, store_name=store_name, action=action)
        return self.finish(location, cookie, hops)

    def consent(
        self, installation_id: str, *, store_name: str | None = None, action: str = "approve"
    ) -> tuple[str, str, list[str]]:
        """Launch and consent: the signed Install URL Buy with Prime redirects to, the app's cookie."""
        hops: list[str] = []
        launch = self.session.get(self.launch_url, allow_redirects=False, timeout=self.timeout)
        hops.append(_hop(launch))
        if launch.status_code != 302 or "Location" not in launch.headers:
            raise MerchantError(f"Launch answered {launch.status_code}, not a redirect to the consent page")
        cookie = _cookie(launch.headers.get("Set-Cookie", ""), COOKIE)
        consent = self.session.get(launch.headers["Location"], allow_redirects=False, timeout=self.timeout)
        hops.append(_hop(consent))
        if consent.status_code != 200:
            raise MerchantError(f"the consent page answered {consent.status_code}: {consent.text[:200]}")
        form = read_form(consent.text, consent.url, "consent")
        if action not in form.buttons.get("action", []):
            raise MerchantError(f"the consent form has no {action!r} button")
        data = {**form.fields, "installation_id": installation_id, "action": action}
        if store_name is not None:
            data["store_name"] = store_name
        submitted = self.session.request(
            form.method, form.action, data=data, allow_redirects=False, timeout=self.timeout
        )
        hops.append(_hop(submitted))
        location = submitted.headers.get("Location", "")
        if submitted.status_code != 302 or not location:
            raise MerchantError(f"submitting the consent form answered {submitted.status_code}: {submitted.text[:200]}")
        app_origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.launch_url))
        if "{0.scheme}://{0.netloc}".format(urlsplit(location)) != app_origin:
            raise MerchantError("the consent page redirected to another site than the app's")
        return location, cookie, hops

    def finish(self, location: str, cookie: str, hops: list[str] | None = None) -> Installed:
        """Follow the redirect to Install; the browser sends the app's cookie back to the app (only there)."""
        hops = list(hops or [])
        answer = self.session.get(location, headers={"Cookie": cookie}, allow_redirects=False, timeout=self.timeout)
        hops.append(_hop(answer))
        return Installed(answer.status_code, answer.text, cookie, location.partition("?")[0], hops)

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=self.timeout)

    def close(self) -> None:
        self.session.close()


def _cookie(set_cookie: str, name: str) -> str:
    """`name=value` of the Set-Cookie header (the attributes dropped), or MerchantError."""
    pair = set_cookie.split(";", maxsplit=1)[0].strip()
    if not pair.startswith(name + "="):
        raise MerchantError(f"Launch set no {name} cookie")
    return pair
