"""A merchant installs the app in a real browser (headless Chromium) against the local stack:
Launch -> the sandbox's consent page -> Approve -> "App installed"; then Buy with Prime opens
Settings and calls Uninstall. Screenshots go to docs/images/ when missing or when
UPDATE_SCREENSHOTS=1 (the settings page shows the install time, so rewriting them on every run
would leave the work tree dirty); otherwise to the test's temporary directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_stack import LocalStack
from devtools.template import PROJECT_ROOT
from tests.e2e.browser_requirement import CHROMIUM, browser_verdict

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = PROJECT_ROOT / "docs" / "images"
INSTALLATION = "amzn1.bwp.installation.browser-0001"
COOKIE = "__Host-bwp-oauth"
WAIT_MS = 15_000

VERDICT, REASON = browser_verdict(CHROMIUM, os.environ)
if VERDICT == "fail":
    pytest.fail(REASON, pytrace=False)
if VERDICT == "skip":
    pytest.skip(REASON, allow_module_level=True)

from playwright.sync_api import BrowserContext, Page, sync_playwright  # noqa: E402 - after the skip


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(installation_id=INSTALLATION, events=False) as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 900, "height": 560},
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


def screenshot_path(name: str, tmp_path: Path) -> Path:
    target = IMAGES / name
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not target.exists():
        IMAGES.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path / name


def app_cookies(browser: BrowserContext, stack: LocalStack) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in browser.cookies(stack.front.origin)}


def test_a_merchant_installs_opens_settings_and_buy_with_prime_uninstalls(
    stack: LocalStack, browser: BrowserContext, tmp_path: Path
) -> None:
    page: Page = browser.new_page()

    # Launch: the app redirects to Buy with Prime's consent page, binding the flow to this browser
    page.goto(stack.launch_url)
    assert page.url.startswith(stack.sandbox.authorize_url + "?")
    assert page.title() == "Buy with Prime sandbox: authorize app"
    assert page.input_value("#installation_id") == INSTALLATION
    cookie = app_cookies(browser, stack)[COOKIE]  # Chromium keeps a Secure cookie from http://localhost
    assert cookie["secure"] is True and cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"

    # Approve: Buy with Prime sends the browser (another site) to the Install URL, signed
    page.click("#approve")
    page.wait_for_url(f"{stack.install_url}?**")
    assert page.locator("h1").inner_text() == "App installed"
    assert INSTALLATION in page.inner_text("body")
    install_shot = screenshot_path("install-page.png", tmp_path)
    page.screenshot(path=str(install_shot), full_page=True)
    assert install_shot.stat().st_size > 1000
    assert COOKIE not in app_cookies(browser, stack)  # the install cleared it
    page.reload()  # the merchant reloads: the link is spent, the page still says what is installed
    assert page.locator("h1").inner_text() == "App installed"

    item = stack.installation(INSTALLATION)
    assert item is not None
    assert item["status"] == "active"
    assert item["access_token"] and item["refresh_token"]
    html = page.content()
    assert str(item["access_token"]) not in html
    assert str(item["refresh_token"]) not in html

    # Settings, as Buy with Prime opens it (signed URL)
    page.goto(stack.signed_settings_url(INSTALLATION))
    assert page.locator("h1").inner_text() == "Settings"
    body = page.inner_text("body")
    assert "Connected" in body and INSTALLATION in body
    settings_shot = screenshot_path("settings-page.png", tmp_path)
    page.screenshot(path=str(settings_shot), full_page=True)
    assert settings_shot.stat().st_size > 1000

    # Uninstall, as Buy with Prime sends it (signed POST with a JSON body)
    answer = stack.uninstall(INSTALLATION)
    assert answer.status_code == 200
    assert answer.json() == {"status": "uninstalled"}
    after = stack.installation(INSTALLATION)
    assert after is not None and after["status"] == "uninstalled"
    assert "access_token" not in after and "refresh_token" not in after

    page.goto(stack.signed_settings_url(INSTALLATION))
    assert "Not installed" in page.inner_text("body")


def test_an_unsigned_settings_page_is_refused_in_the_browser(stack: LocalStack, browser: BrowserContext) -> None:
    page = browser.new_page()
    answer = page.goto(stack.settings_url)
    assert answer is not None and answer.status == 401
    assert page.locator("h1").inner_text() == "Not verified"


def test_a_merchant_who_declines_sees_that_and_can_start_again(stack: LocalStack, browser: BrowserContext) -> None:
    page = browser.new_page()
    page.goto(stack.launch_url)
    page.click("#deny")
    page.wait_for_url(f"{stack.install_url}?**")
    assert page.locator("h1").inner_text() == "You declined"
    assert "Not verified" not in page.inner_text("body")
    page.click("text=Start again")
    assert page.url.startswith(stack.sandbox.authorize_url + "?")  # a new Launch
