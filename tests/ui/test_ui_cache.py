"""Task result caching in a real browser (docs/caching.md): a run whose cached task reused
an earlier result shows a "from cache" badge on its task panel, linking to the run that
produced it; the trigger form's "don't use cached results" box makes the task compute
again (the fixtures of `tests.ui.test_ui`; this module gets its own server)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.ui import test_ui
from tests.ui.test_ui import Server, Watched, browser

__all__ = ["browser", "server"]

_FLOW = """\
name: ui_cached
params:
  n: {type: integer, default: 7}
tasks:
  compute:
    shell: [echo, "{{ params.n }}"]
    cache: true
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with test_ui.signed_in(
        tmp_path_factory.mktemp("ui_cache"), {"ui_cached"}, {"ui_cached.yaml": _FLOW}
    ) as srv:
        yield srv


def _task(server: Server, run_id: str) -> dict[str, object]:
    [found] = server.http.get(f"/api/v1/runs/{run_id}/tasks").json()
    return dict(found)


def _submit(server: Server, page: object, *, no_cache: bool) -> str:
    """Start a run from the trigger form; the new run's id, once it finished."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.goto(f"{server.url}/workflows/ui_cached/trigger")
    if no_cache:
        page.check("#no-cache")
    page.click("#trigger-submit")
    page.wait_for_url(re.compile(r"/runs/[0-9a-z]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    assert server.wait_run(run_id)["state"] == "succeeded"
    return run_id


def test_a_cached_result_shows_its_badge_and_links_its_source(
    server: Server, browser: Browser
) -> None:
    source = server.trigger("ui_cached")
    assert server.wait_run(source)["state"] == "succeeded"
    w = Watched(browser)
    page = w.page
    try:
        reused = _submit(server, page, no_cache=False)
        assert _task(server, reused)["cache_run_id"] == source
        page.goto(f"{server.url}/runs/{reused}?task=compute")
        badge = page.locator(".from-cache")
        assert badge.inner_text() == "from cache"
        assert badge.get_attribute("href") == f"/runs/{source}?task=compute"
        page.screenshot(path=str(test_ui.OUT / "run_from_cache.png"))
        badge.click()
        page.wait_for_url(re.compile(rf"/runs/{source}\?task=compute$"))
        assert page.locator(".from-cache").count() == 0  # the source computed it

        fresh = _submit(server, page, no_cache=True)
        assert _task(server, fresh)["cache_run_id"] is None
        page.goto(f"{server.url}/runs/{fresh}?task=compute")
        assert page.locator(".from-cache").count() == 0
        w.assert_safe()
        assert w.errors == [], w.errors
    finally:
        w.close()


def test_the_workflow_page_lists_entries_and_clears_them(server: Server, browser: Browser) -> None:
    run_id = server.trigger("ui_cached", {"n": 11})
    assert server.wait_run(run_id)["state"] == "succeeded"
    context = browser.new_context()
    context.add_cookies(test_ui._SESSION)
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the clear button's confirmation
        page.goto(f"{server.url}/workflows/ui_cached")
        rows = page.locator("#cache-table tbody tr")
        assert rows.count() >= 1
        assert page.locator(f"#cache-table a[href='/runs/{run_id}?task=compute']").count() == 1
        page.click("#btn-clear-cache")
        page.wait_for_url(re.compile(r"/workflows/ui_cached#cache$"))
        assert page.locator("#cache-table").count() == 0
        assert "No cached results." in page.inner_text("#cache")
    finally:
        context.close()
    assert server.http.get("/api/v1/workflows/ui_cached/cache").json() == []
    audit = server.http.get("/api/v1/audit", params={"action": "cache.clear"}).json()
    items = audit["items"] if isinstance(audit, dict) else audit
    assert any(r["actor"] == "admin" and r["outcome"] == "ok" for r in items), items
