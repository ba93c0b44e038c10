"""A flood of the unauthenticated Launch, as a bounded local load test (a fixed number of requests
on loopback, stopping by itself): with the template's per-route limits on the local front, Install,
Settings and Uninstall still answer while Launch is flooded, and the table grows within the stated
cap (the Launch bucket: burst + rate x seconds), not by one item per abusive request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from devtools.local_stack import LocalStack
from devtools.merchant import Merchant, page_title
from shared.store.keys import OAUTH_STATE_SK
from tests.e2e.merchant import install

pytestmark = pytest.mark.e2e

FLOOD_REQUESTS = 300  # in all, from FLOOD_THREADS clients as fast as they can
FLOOD_THREADS = 6
FLOOD_SECONDS = 30.0  # the flood also stops after this long, whatever it has sent
VICTIM = "amzn1.bwp.installation.flood-victim"
NEWCOMER = "amzn1.bwp.installation.flood-newcomer"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(events=False, route_throttling=True) as running:
        yield running


def pending_states(stack: LocalStack) -> int:
    scan = stack.client("dynamodb").scan(
        TableName=stack.aws.table_name(),
        Select="COUNT",
        FilterExpression="sk = :sk",
        ExpressionAttributeValues={":sk": {"S": OAUTH_STATE_SK}},
        ConsistentRead=True,
    )
    return int(scan["Count"])


class Flood:
    def __init__(self, url: str) -> None:
        self.url, self.statuses, self._lock = url, [], threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(FLOOD_THREADS)]
        self.started = self.ended = 0.0

    def _run(self) -> None:
        with requests.Session() as session:
            while time.monotonic() - self.started < FLOOD_SECONDS:
                with self._lock:
                    if len(self.statuses) >= FLOOD_REQUESTS:
                        return
                    self.statuses.append(0)
                    index = len(self.statuses) - 1
                status = session.get(self.url, allow_redirects=False, timeout=10).status_code
                with self._lock:
                    self.statuses[index] = status

    def __enter__(self) -> Flood:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        for thread in self._threads:
            thread.join(FLOOD_SECONDS + 15)
        self.ended = time.monotonic()


def test_install_settings_and_uninstall_answer_while_launch_is_flooded(stack: LocalStack) -> None:
    assert install(stack, VICTIM).status == 200
    newcomer = Merchant(stack.launch_url)
    location, cookie, hops = newcomer.consent(NEWCOMER)  # launched and consented before the flood
    before = pending_states(stack)
    launch = stack.front.throttles["GET /launch"]
    with Flood(stack.launch_url) as flood:
        while len(flood.statuses) < FLOOD_REQUESTS // 3:  # well into the flood
            time.sleep(0.01)
        installed = newcomer.finish(location, cookie, hops)
        settings = requests.get(stack.signed_settings_url(VICTIM), timeout=10)
        uninstalled = stack.uninstall(VICTIM)
    newcomer.close()
    assert (installed.status, installed.title) == (200, "App installed")
    assert settings.status_code == 200 and page_title(settings.text)
    assert uninstalled.status_code == 200 and uninstalled.json()["status"] == "uninstalled"
    statuses = flood.statuses
    assert len(statuses) == FLOOD_REQUESTS and set(statuses) <= {302, 429}
    accepted = statuses.count(302)
    cap = launch.burst + launch.rate * (flood.ended - flood.started) + 1
    grown = pending_states(stack) - before
    print(
        f"launch flood: {len(statuses)} requests in {flood.ended - flood.started:.1f} s, {accepted} accepted, "
        f"{statuses.count(429)} throttled; pending states +{grown} (cap {cap:.0f}); the newcomer's state spent"
    )
    assert statuses.count(429) > 0
    assert grown <= accepted <= cap  # each accepted Launch at most one item, and the bucket bounds them
    assert grown < len(statuses) / 2  # not one item per abusive request
