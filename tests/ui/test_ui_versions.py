"""The workflow page's versions list in a real browser: the current version is marked, an
editor makes an older one current (rollback) with the list's button, and a viewer sees no
button and is refused by the route (the fixtures of `tests.ui.test_ui`; this module gets
its own server)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from orchestrion.spec.bundle import CodeBundle
from tests.helpers import session_cookie
from tests.ui.test_ui import Server, Watched, browser, server

__all__ = ["browser", "server"]

VIEWER_PASSWORD = "viewer-password-1234"


def _roll(version: int) -> dict[str, Any]:
    return {
        "name": "ui_roll",
        "description": f"Rolled, version {version}.",
        "tasks": [{"name": f"step_v{version}", "action": {"kind": "shell", "argv": ["true"]}}],
    }


@pytest.fixture(scope="module")
def versions(server: Server) -> Iterator[list[str]]:
    """ui_roll registered twice: [v1, v2], v2 current."""
    made = []
    for n in (1, 2):
        res = server.http.post("/api/v1/workflows", json=_roll(n))
        assert res.status_code == 201, res.text
        made.append(res.json()["version"])
    yield made


def _current(server: Server) -> str:
    listed = server.http.get("/api/v1/workflows/ui_roll/versions").json()
    [current] = [v["version"] for v in listed if v["current"]]
    return str(current)


def test_an_editor_rolls_back_from_the_versions_list(
    server: Server, browser: Browser, versions: list[str]
) -> None:
    v1, v2 = versions
    w = Watched(browser)
    page = w.page
    try:
        page.goto(f"{server.url}/workflows/ui_roll")
        assert page.inner_text("#current-version") == v2
        current_row = page.locator("#versions-table tr[data-current='true']")
        assert current_row.get_attribute("data-version") == v2
        assert "current" in current_row.inner_text()
        assert current_row.locator(".make-current").count() == 0  # already current
        page.locator(f"#versions-table tr[data-version='{v1}'] .make-current").click()
        page.wait_for_url(re.compile(r"/workflows/ui_roll(#versions)?$"))
        assert page.inner_text("#current-version") == v1
        current_row = page.locator("#versions-table tr[data-current='true']")
        assert current_row.get_attribute("data-version") == v1
        assert _current(server) == v1  # the API agrees
        run_id = server.trigger("ui_roll")
        assert server.wait_run(run_id)["version"] == v1  # and a trigger runs it
        w.assert_safe()
        assert w.errors == [], w.errors
    finally:
        w.close()
    audit = server.http.get("/api/v1/audit", params={"action": "workflow.set_version"}).json()
    items = audit["items"] if isinstance(audit, dict) else audit
    assert any(r["actor"] == "admin" and r["outcome"] == "ok" for r in items), items


def test_a_viewer_sees_no_button_and_the_route_refuses(
    server: Server, browser: Browser, versions: list[str]
) -> None:
    v1, v2 = versions
    made = server.http.post(
        "/api/v1/users",
        json={"name": "viewer", "password": VIEWER_PASSWORD, "bindings": {"*": "viewer"}},
    )
    assert made.status_code == 201, made.text
    cookie = session_cookie(server.url, "viewer", VIEWER_PASSWORD)
    before = _current(server)
    context = browser.new_context()
    context.add_cookies([{"name": "orchestrion_session", "value": cookie, "url": server.url}])
    try:
        page = context.new_page()
        page.goto(f"{server.url}/workflows/ui_roll")
        assert page.locator("#versions-table tr").count() == 3  # the head and two versions
        assert page.locator(".make-current").count() == 0
        token = page.locator("input[name='csrf_token']").first.get_attribute("value")
        assert token
    finally:
        context.close()
    other = v2 if before == v1 else v1
    with httpx.Client(base_url=server.url, cookies={"orchestrion_session": cookie}) as c:
        refused = c.post("/workflows/ui_roll/current", data={"csrf_token": token, "version": other})
    assert refused.status_code == 403, refused.text[:300]
    assert _current(server) == before


def _coded(value: str) -> tuple[CodeBundle, dict[str, Any]]:
    """ui_code whose one task returns `value`, with its code as a bundle."""
    bundle = CodeBundle({"uicode.py": f"def go():\n    return {value!r}\n".encode()}, ("",))
    spec = {
        "name": "ui_code",
        "tasks": [{"name": "go", "action": {"kind": "python", "ref": "uicode:go"}}],
        "code": bundle.digest,
    }
    return bundle, spec


def test_the_code_of_a_version_is_shown_and_diffed(server: Server, browser: Browser) -> None:
    versions = []
    for value in ("first value", "second <value>"):
        bundle, spec = _coded(value)
        refused = server.http.post("/api/v1/workflows", json=spec)  # its code is not stored
        assert refused.status_code == 422 and "not stored" in refused.text, refused.text
        wrong = server.http.put(f"/api/v1/code/{'0' * 64}", json=bundle.to_wire())
        assert wrong.status_code == 422 and "hash to" in wrong.text, wrong.text
        stored = server.http.put(f"/api/v1/code/{bundle.digest}", json=bundle.to_wire())
        assert stored.status_code == 200 and stored.json()["created"], stored.text
        made = server.http.post("/api/v1/workflows", json=spec)
        assert made.status_code == 201, made.text
        versions.append(made.json()["version"])
    # the worker has no copy of uicode.py: it runs the current version's code from the store
    assert server.wait_run(server.trigger("ui_code"))["result"] == {"go": "second <value>"}
    w = Watched(browser)
    page = w.page
    try:
        page.goto(f"{server.url}/workflows/ui_code")
        code_file = page.locator("#code details[data-path='uicode.py']")
        code_file.locator("summary").click()
        assert "return 'second <value>'" in code_file.locator("pre").inner_text()
        page.goto(f"{server.url}/workflows/ui_code?a={versions[0]}&b={versions[1]}#versions")
        diff = page.inner_text("#diff")
        assert "-    return 'first value'" in diff and "+    return 'second <value>'" in diff
        w.assert_safe()
        assert w.errors == [], w.errors
    finally:
        w.close()
