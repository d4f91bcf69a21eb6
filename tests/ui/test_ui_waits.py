"""Approvals in a real browser (Debian's Chromium via Playwright): the run page and the
overview call for a decision, and approving from the run page lets the run go on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.test_waits_server import WaitCluster
from tests.helpers import session_cookie

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "test-output" / "ui"
CHROMIUM = "/usr/bin/chromium"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WaitCluster]:
    c = WaitCluster(tmp_path_factory.mktemp("ui-waits"), workers=1)
    try:
        c.wait_ready(workers=1)
        yield c
    finally:
        c.close()


@pytest.fixture
def page(cluster: WaitCluster) -> Iterator[Page]:
    OUT.mkdir(parents=True, exist_ok=True)
    cookie = session_cookie(cluster.url)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "orchestrion_session", "value": cookie, "url": cluster.url}])
        errors: list[str] = []
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab
        browser.close()
        assert errors == []


def test_approving_from_the_run_page_lets_the_run_go_on(cluster: WaitCluster, page: Page) -> None:
    run_id = cluster.trigger("ship")
    cluster.waiting(run_id, "ship")
    other = cluster.trigger("gate")
    cluster.waiting(other, "ok")

    page.goto(f"{cluster.url}/")
    card = page.locator("#waits")
    assert card.is_visible()
    assert "Waiting for a decision" in card.inner_text()
    assert run_id[:12] in card.inner_text() and other[:12] in card.inner_text()
    page.screenshot(path=str(OUT / "waits_overview.png"), full_page=True)

    page.goto(f"{cluster.url}/runs/{run_id}")
    card = page.locator("#waits")
    assert "Ship it?" in card.inner_text()
    assert "role editor" in card.inner_text()
    page.fill("#waits input[name=reason]", "checked the changelog")
    page.screenshot(path=str(OUT / "waits_run.png"), full_page=True)
    page.click("#approve-ship")
    page.wait_for_url(f"{cluster.url}/runs/{run_id}")
    assert cluster.wait_run(run_id)["state"] == "succeeded"
    ship = cluster.tasks(run_id)["ship"]
    assert ship["result"] == {
        "approved": True,
        "by": "user:admin",
        "reason": "checked the changelog",
    }
    page.reload()
    assert page.locator("#waits").count() == 0

    # Rejecting from the overview: back on the overview, the run failed with the reason.
    page.goto(f"{cluster.url}/")
    row = page.locator("#waits .wait", has_text=other[:12])
    row.locator("input[name=reason]").fill("not today")
    row.locator("#reject-ok").click()
    page.wait_for_url(f"{cluster.url}/")
    assert cluster.wait_run(other)["state"] == "failed"
    assert cluster.tasks(other)["ok"]["error"] == "rejected by user:admin: not today"


def test_a_signal_sent_from_the_run_page_is_the_steps_result(
    cluster: WaitCluster, page: Page
) -> None:
    run_id = cluster.trigger("sig_after")
    cluster.waiting(run_id, "go")
    page.goto(f"{cluster.url}/runs/{run_id}")
    page.fill("#waits input[name=data]", '{"from": "the browser"}')
    page.click("#signal-go")
    page.wait_for_url(f"{cluster.url}/runs/{run_id}")
    assert cluster.wait_run(run_id)["state"] == "succeeded"
    assert cluster.tasks(run_id)["go"]["result"] == {"from": "the browser"}
