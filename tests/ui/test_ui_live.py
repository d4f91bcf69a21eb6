"""The UI's live summary pages, mapped tasks expanding on demand, themes, layouts and time
zones, in a real browser against a real server (the fixtures of `tests.ui.test_ui`; this
module gets its own server). Screenshots land in ``test-output/ui/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.ui.test_ui import _SESSION, OUT, Server, Watched, browser, server

__all__ = ["browser", "server"]

#: A first task that takes a moment (so the page is open before the map expands), then 8
#: items, two at a time, each a second long: plenty of state changes to follow live.
FAN = {
    "name": "ui_fan",
    "description": "Waits, then fans out over its items.",
    "params": {"items": {"type": "array", "default": [10, 11, 12, 13, 14, 15, 16, 17]}},
    "tasks": [
        {"name": "prep", "action": {"kind": "shell", "argv": ["sleep", "0.8"]}},
        {
            "name": "fan",
            "depends_on": ["prep"],
            "map_over": "params.items",
            "concurrency": 2,
            "action": {"kind": "shell", "argv": ["sleep", "1"]},
        },
        {"name": "done", "depends_on": ["fan"], "action": {"kind": "shell", "argv": ["true"]}},
    ],
}


def _sched(version: int) -> dict[str, Any]:
    return {
        "name": "ui_sched",
        "description": f"Scheduled, version {version}.",
        "schedules": [{"cron": "30 6 * * 1-5", "timezone": "Europe/Paris"}],
        "tasks": [{"name": f"step_v{version}", "action": {"kind": "shell", "argv": ["true"]}}],
    }


@pytest.fixture(scope="module")
def live_server(server: Server) -> Iterator[Server]:
    for spec in (FAN, _sched(1), _sched(2)):
        res = server.http.post("/api/v1/workflows", json=spec)
        assert res.status_code == 201, res.text
    yield server


class Themed(Watched):
    """A watched page with a colour scheme and a time zone other than the server's."""

    def __init__(self, browser: Browser, *, width: int, dark: bool, tz: str) -> None:
        super().__init__(browser, width=width, height=900 if width > 400 else 844)
        self.context.close()
        self.context = browser.new_context(
            viewport={"width": width, "height": 900 if width > 400 else 844},
            color_scheme="dark" if dark else "light",
            timezone_id=tz,
        )
        self.context.add_cookies(_SESSION)  # signed in, as Watched
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("dialog", self._dialog)


def test_mapped_node_expands_live(live_server: Server, browser: Browser) -> None:
    run_id = live_server.trigger("ui_fan")
    w = Watched(browser)
    page = w.page
    try:
        page.goto(f"{live_server.url}/runs/{run_id}")
        page.wait_for_selector("html[data-ready='1']", state="attached")
        page.evaluate(
            """() => { window.__same = 1; window.__chips = [];
              new MutationObserver(ms => { for (const m of ms)
                if (m.target.classList.contains('item'))
                  window.__chips.push(m.target.dataset.state);
              }).observe(document.getElementById('panel-detail'),
                {subtree: true, attributes: true, attributeFilter: ['data-state']}); }"""
        )
        assert page.locator("#dag .node[data-task='fan'] .expand").count() == 1
        page.click("#dag .node[data-task='fan']")  # expand on demand
        page.locator("#panel h2", has_text="fan").wait_for()
        # the items appear once the map expands, and follow their states without a reload
        page.locator("#items .item").nth(7).wait_for(timeout=15_000)
        assert page.locator("#items .item").count() == 8
        page.wait_for_selector(
            "#items .item[data-state='running']", state="attached", timeout=15_000
        )
        page.locator("#items .item[data-state='succeeded']").nth(7).wait_for(timeout=20_000)
        assert "succeeded" in page.evaluate("window.__chips")  # changed in place, live
        assert page.evaluate("window.__same") == 1
        page.locator("#dag .node[data-task='fan'] .counts", has_text="8/8 done").wait_for()
        page.screenshot(path=str(OUT / "run-mapped-items.png"), full_page=True)
        # one item: its own attempts and inputs (the element it was given)
        page.click("#items .item[data-item='3']")
        page.locator("#panel h2", has_text="fan[3]").wait_for()
        assert "item=3" in page.url
        assert page.inner_text(".task-element").strip() == "13"
        assert '"items"' in page.inner_text(".task-params")
        assert page.locator("#panel .attempt-error").count() == 0
        page.locator("#panel table.tbl tbody tr").first.wait_for()
        page.screenshot(path=str(OUT / "run-mapped-item.png"), full_page=True)
        page.click(".item-back")
        page.locator("#items .item").nth(7).wait_for()
        # a downstream task's inputs are its upstream results
        page.click("#dag .node[data-task='done']")
        page.locator("#panel h2", has_text="done").wait_for()
        page.locator("#inputs summary").click()
        assert page.locator(".task-upstream").count() == 1
        assert page.evaluate("window.__same") == 1
        w.assert_safe()
        assert w.errors == [], w.errors
    finally:
        w.close()


def test_overview_updates_live_and_idles(live_server: Server, browser: Browser) -> None:
    w = Watched(browser)
    page = w.page
    try:
        page.goto(live_server.url + "/")
        page.wait_for_selector("html[data-ready='1']", state="attached")
        page.wait_for_selector("#live.on", timeout=10_000)
        page.evaluate("window.__same = 1")
        before = int(page.inner_text("#stat-total .stat-n"))
        run_id = live_server.trigger("ui_fan", {"items": [1]})
        total = page.locator("#stat-total .stat-n", has_text=re.compile(f"^{before + 1}$"))
        total.wait_for(timeout=10_000)
        page.locator("#ov-running a", has_text=run_id[:12]).wait_for(timeout=10_000)
        live_server.wait_run(run_id)
        page.wait_for_selector("#ov-running :text('Nothing is running')", timeout=10_000)
        assert page.evaluate("window.__same") == 1  # no reload: the part was swapped in
        # once the run is over, the open page costs nothing: no request at all
        page.wait_for_timeout(1500)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.wait_for_timeout(2500)
        assert requests == [], requests
        assert w.errors == [], w.errors
    finally:
        w.close()


def test_workers_page_follows_current_tasks(live_server: Server, browser: Browser) -> None:
    w = Watched(browser)
    page = w.page
    try:
        page.goto(live_server.url + "/workers")
        page.wait_for_selector("#live.on", timeout=10_000)
        assert page.locator("#workers-table tr[data-worker]").count() >= 1
        assert page.inner_text("#workers-table .ago").endswith("ago")
        run_id = live_server.trigger("ui_fan", {"items": [1, 2]})
        page.locator("#workers-table .current a", has_text="prep").wait_for(timeout=10_000)
        page.locator("#workers-table .current a", has_text="fan[").first.wait_for(timeout=10_000)
        page.screenshot(path=str(OUT / "workers-busy.png"), full_page=True)
        live_server.wait_run(run_id)
        page.locator("#workers-table .current", has_text="idle").first.wait_for(timeout=10_000)
        assert w.errors == [], w.errors
    finally:
        w.close()


def test_pages_themes_layouts_and_time_zone(live_server: Server, browser: Browser) -> None:
    run_id = live_server.trigger("ui_fan", {"items": [1, 2, 3]})
    live_server.wait_run(run_id)
    res = live_server.http.post(
        "/api/v1/backfills",
        json={"workflow": "ui_sched", "start": "2026-01-05", "end": "2026-01-09"},
    )
    assert res.status_code == 201, res.text
    versions = [v["version"] for v in live_server.http.get(
        "/api/v1/workflows/ui_sched/versions").json()]  # fmt: skip
    assert len(versions) == 2
    pages = {
        "overview": "/",
        "workflows": "/workflows",
        "workflow-diff": f"/workflows/ui_sched?a={versions[1]}&b={versions[0]}",
        "run-mapped": f"/runs/{run_id}?task=fan",
        "events-filtered": "/events?kind=run.",
        "workers": "/workers",
        "backfills": "/backfills",
    }
    for width in (1280, 390):
        for dark in (False, True):
            w = Themed(browser, width=width, dark=dark, tz="Asia/Tokyo")
            suffix = f"-{width}-{'dark' if dark else 'light'}"
            try:
                for name, path in pages.items():
                    response = w.page.goto(live_server.url + path)
                    assert response is not None and response.status == 200, (path, response)
                    w.page.wait_for_load_state("load")  # module scripts have run
                    w.assert_safe()
                    w.page.screenshot(path=str(OUT / f"{name}{suffix}.png"), full_page=True)
                    overflow = w.page.evaluate("document.documentElement.scrollWidth - innerWidth")
                    assert overflow <= 2, f"{name} scrolls sideways by {overflow}px at {width}px"
                    bg = w.page.evaluate("getComputedStyle(document.body).backgroundColor")
                    assert (bg == "rgb(15, 18, 24)") == dark, (name, bg)
                assert w.errors == [], w.errors
            finally:
                w.close()
    w = Themed(browser, width=1280, dark=False, tz="Asia/Tokyo")
    page = w.page
    try:
        page.goto(live_server.url + "/workflows")
        sched = page.locator("tr[data-workflow='ui_sched'] .sched")
        assert sched.inner_text().startswith("every weekday at ")
        # 06:30 in Paris is 14:30 (winter) or 13:30 (summer) in Tokyo
        clock = sched.locator("time[data-clock]")
        shown = clock.inner_text().replace("\u202f", " ").removesuffix(" (your time)")
        assert shown in ("14:30", "13:30", "2:30 PM", "1:30 PM"), shown
        assert "Europe/Paris" in (clock.get_attribute("title") or "")
        created = page.locator("tr[data-workflow='ui_sched'] td").nth(3).locator("time")
        assert (created.get_attribute("title") or "").endswith("UTC")  # UTC on hover
        page.goto(live_server.url + "/events?kind=run.")
        kinds = page.locator("#events-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.kind)"
        )
        assert kinds and all(k.startswith("run.") for k in kinds), kinds
        page.goto(f"{live_server.url}/workflows/ui_sched")
        page.click("#diff-submit")
        diff = page.inner_text("#diff")
        assert "step_v1" in diff and "step_v2" in diff
        page.goto(live_server.url + "/backfills")
        assert page.locator("progress").count() == 1
        assert w.errors == [], w.errors
    finally:
        w.close()
