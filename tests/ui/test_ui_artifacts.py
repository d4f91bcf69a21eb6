"""Artifacts on the run page in a real browser: a task's Markdown report is rendered with
its raw HTML escaped (and a ``javascript:`` link left inert), its table, link and file
download are shown beside it, and a large result's panel names where it is stored (this
module's own server, with the fixtures of `tests.ui.test_ui`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from tests.ui import test_ui
from tests.ui.test_ui import Server, Watched, browser

__all__ = ["browser"]

FLOW = """\
import pathlib
import tempfile

from orchestrion import artifact, task, workflow


@task
def report() -> str:
    artifact.markdown(
        "# Nightly load\\n\\n**12** files <script>window.__xss = 1</script>"
        "<img src=x onerror=\\"window.__xss = 2\\">\\n\\n[bad](javascript:alert(1))",
        title="summary",
    )
    rows = [{"file": "a.csv", "rows": 3}, {"file": "<b>b.csv</b>", "rows": 5}]
    artifact.table(rows, title="files")
    artifact.link("https://example.com/dash", title="dashboard")
    path = pathlib.Path(tempfile.mkdtemp()) / "load.csv"
    path.write_text("a,b\\n1,2\\n")
    artifact.file(path, title="load.csv")
    return "y" * 300_000


@workflow
def ui_artifacts():
    report()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with test_ui.signed_in(
        tmp_path_factory.mktemp("ui_artifacts"), {"ui_artifacts"}, {"ui_artifacts.py": FLOW}
    ) as srv:
        yield srv


def test_the_run_page_shows_artifacts_rendered_safely(server: Server, browser: Browser) -> None:
    run_id = server.trigger("ui_artifacts")
    assert server.wait_run(run_id)["state"] == "succeeded"
    w = Watched(browser)
    page = w.page
    try:
        page.goto(f"{server.url}/runs/{run_id}")
        box = page.locator("#artifacts")
        assert box.locator(".artifact").count() == 4
        md = box.locator(".artifact[data-kind='markdown'] .markdown")
        assert md.locator("h1").inner_text() == "Nightly load"
        assert md.locator("strong").inner_text() == "12"
        text = md.inner_text()
        assert "<script>window.__xss = 1</script>" in text  # shown as text, not run
        assert md.locator("script, img").count() == 0
        assert md.locator("a[href^='javascript']").count() == 0
        cells = box.locator(".artifact[data-kind='table'] td").all_inner_texts()
        assert cells == ["a.csv", "3", "<b>b.csv</b>", "5"]
        link = box.locator(".artifact[data-kind='link'] a")
        assert link.get_attribute("href") == "https://example.com/dash"
        assert "noopener" in (link.get_attribute("rel") or "")
        download = box.locator(".artifact[data-kind='file'] a").get_attribute("href")
        assert download is not None
        w.assert_safe()
        assert w.errors == [], w.errors
    finally:
        w.close()
    cookie = test_ui._SESSION[0]["value"]
    with httpx.Client(base_url=server.url, cookies={"orchestrion_session": cookie}) as c:
        got = c.get(download)
        assert got.status_code == 200 and got.content == b"a,b\n1,2\n"
        assert got.headers["content-type"] == "application/octet-stream"
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get(download).status_code in (303, 401, 403)
    w = Watched(browser)
    try:
        w.page.goto(f"{server.url}/runs/{run_id}?task=report")
        stored = w.page.locator("a.stored-result").get_attribute("href")
        assert stored is not None and stored.endswith("/download")
    finally:
        w.close()
    with httpx.Client(base_url=server.url, cookies={"orchestrion_session": cookie}) as c:
        assert c.get(stored).content == b'"' + b"y" * 300_000 + b'"'
    # The large result is a reference the API names, with its content a route away.
    [task_run] = server.http.get(f"/api/v1/runs/{run_id}/tasks").json()
    where = server.http.get(f"/api/v1/runs/{run_id}/results/{task_run['id']}").json()
    assert where["object"]["size"] == 300_002
    content = server.http.get(f"/api/v1/runs/{run_id}/results/{task_run['id']}/content")
    assert content.json() == "y" * 300_000
