"""The projects page in a real browser (docs/projects.md): a project applied twice through
the API shows its last apply (commit, what changed) and both applies in the history; a
Git sync's failure shows its error as text, never as markup (the fixtures of
`tests.ui.test_ui`; this module gets its own server)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.client import Client
from orchestrion.store.project_records import SyncResult
from tests.helpers import database_url_for
from tests.ui import test_ui
from tests.ui.test_ui import Server, Watched, browser

__all__ = ["browser", "server"]

FLOW = """\
name: ui_project_flow
tasks:
  hello:
    shell: [echo, {text}]
"""

PROJECT = """\
project: ui-analytics
namespace: uiproj
workflows: [flows/]
queues: {uiproj-q: {limit: 2}}
"""

#: A sync error as a hostile repository could make it: it must show as text.
HOSTILE = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with test_ui.signed_in(tmp_path_factory.mktemp("ui_projects"), {"etl"}) as srv:
        yield srv


def _apply(server: Server, root: Path, text: str, commit: str) -> dict[str, object]:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "flow.yaml").write_text(FLOW.format(text=text))
    (root / "project.yaml").write_text(PROJECT)
    token = str(server.http.headers["Authorization"]).removeprefix("Bearer ")
    with Client(server.url, token) as client:
        return client.project(root / "project.yaml", apply=True, commit=commit)


def test_applies_and_a_sync_failure_show_on_the_projects_page(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    first = _apply(server, tmp_path, "one", "c0ffee1111111111")
    assert first["outcome"] == "applied"
    second = _apply(server, tmp_path, "two", "c0ffee2222222222")
    assert second["outcome"] == "applied"
    # What a sync of a hostile repository would record (the server's own database file).
    url = database_url_for(server.flows.parent / "ui.db")
    with App(Settings(database_url=url)).open() as app:
        failed = SyncResult(source="ui-repo", commit_sha="ab" * 20, outcome="failed", error=HOSTILE)
        app.store.projects.record_sync(failed, now=time.time())
    w = Watched(browser)
    page = w.page
    try:
        page.goto(f"{server.url}/")
        # At 1280 px every section's link is in view, none behind the nav's scroll.
        hidden = page.evaluate(
            """() => { const nav = document.querySelector('nav.mainnav').getBoundingClientRect();
                 return [...document.querySelectorAll('nav.mainnav a')].filter(a => {
                   const r = a.getBoundingClientRect();
                   return r.left < nav.left - 1 || r.right > nav.right + 1; })
                 .map(a => a.textContent); }"""
        )
        assert hidden == [], hidden
        page.click("nav.mainnav >> text=Projects")
        page.wait_for_url(re.compile(r"/projects$"))
        assert page.get_attribute("nav.mainnav a[aria-current=page]", "href") == "/projects"
        last = page.locator("#last-applies tr[data-namespace=uiproj]")
        assert last.count() == 1
        cells = last.locator("td").all_inner_texts()
        assert cells[1] == "ui-analytics" and cells[2] == "applied"
        assert cells[5] == "c0ffee222222"  # the newest apply's commit, shortened
        assert "~1" in cells[6]  # the second apply changed the one workflow
        history = page.locator("#history tbody tr", has_text="uiproj")
        assert history.count() == 2
        commits = [row.locator("td").nth(5).inner_text() for row in history.all()]
        assert sorted(commits) == ["c0ffee111111", "c0ffee222222"]
        result = page.locator("#sync-results tr[data-outcome=failed]", has_text="ui-repo")
        assert result.locator("td").nth(3).inner_text() == HOSTILE
        w.assert_safe()
        assert w.errors == [], w.errors
        page.screenshot(path=str(test_ui.OUT / "projects.png"), full_page=True)
    finally:
        w.close()
