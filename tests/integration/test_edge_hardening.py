"""Issue 12, finding 7: cookie-authenticated writes from another origin, ``nosniff`` on
every response, the first-start admin token's expiry, and owner-only SQLite files."""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.clock import FakeClock
from orchestrion.errors import AuthError
from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from orchestrion.store.records import AuditFilter
from tests.helpers import database_url_for
from tests.integration.test_route_policy import Server

SPEC = WorkflowSpec(
    name="fin_report",
    namespace="finance",
    tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),),
)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with App(Settings(database_url=database_url_for(tmp_path / "edge.db"))) as app:
        app.store.workflows.register_workflow(SPEC, source=None, now=time.time())
        app.accounts.create_user("ana", PASSWORD, {"finance": "operator"})
        srv = Server(app)
        srv.tokens["ana"], _ = app.accounts.create_token("ana-bot", {"finance": "operator"})
        yield srv
        srv.stop()


def _login(c: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    page = c.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token, page.text
    data = {"user": "ana", "password": PASSWORD, "login_csrf": token.group(1)}
    return c.post("/login", data=data, headers=headers or {})


def _csrf(c: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/workflows/fin_report").text)
    assert found
    return found.group(1)


def test_cookie_writes_from_another_origin_are_refused(server: Server) -> None:
    """Origin, else Referer, must be this server's; a token-authenticated client is not a
    browser and is not asked. Absent both, the CSRF token alone decides (documented)."""
    with server.client(follow_redirects=False) as c:
        assert _login(c, {"Origin": server.url}).status_code == 303
        token = _csrf(c)
        form = {"csrf_token": token}
        trigger = "/workflows/fin_report/trigger"
        foreign = [
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Origin": server.url.replace("127.0.0.1", "localhost")},  # another host
            {"Origin": server.url.replace("http:", "https:")},  # another scheme
            {"Origin": server.url + "1"},  # another port
            {"Referer": "http://evil.example/page"},
            {"Referer": "not a url"},
            {"Origin": "http://evil.example", "Referer": server.url + "/workflows"},
        ]
        for headers in foreign:
            refused = c.post(trigger, data=form, headers=headers)
            assert refused.status_code == 403, (headers, refused.text)
            assert "cross-origin" in refused.text
            api = c.post(
                "/api/v1/workflows/fin_report/runs",
                json={},
                headers={**headers, "X-CSRF-Token": token},
            )
            assert api.status_code == 403 and "cross-origin" in api.json()["error"]["message"]
        for headers in (
            {"Origin": server.url},
            {"Origin": server.url.replace("http://", "HTTP://")},  # case does not matter
            {"Referer": server.url + "/workflows/fin_report?x=1"},
            {},  # neither: a non-browser client with the cookie and the token
        ):
            ok = c.post(trigger, data=form, headers=headers)
            assert ok.status_code == 303, (headers, ok.text)
        # Reads are not writes: a GET with a foreign Origin is answered.
        assert c.get("/runs", headers={"Origin": "http://evil.example"}).status_code == 200
    # A bearer token is not sent by a browser on its own: no origin check.
    with server.client(server.tokens["ana"]) as bearer:
        made = bearer.post(
            "/api/v1/workflows/fin_report/runs", json={}, headers={"Origin": "http://evil.example"}
        )
        assert made.status_code == 201, made.text
    # Signing in from another site's page is refused too (login CSRF).
    with server.client(follow_redirects=False) as c:
        refused = _login(c, {"Origin": "http://evil.example"})
        assert refused.status_code == 403 and "cross-origin" in refused.text
        assert "orchestrion_session" not in c.cookies
    denied = server.app.accounts.list_audit(AuditFilter(outcome="denied", actor="ana"))
    assert len(denied) >= 2 * len(foreign), "refused writes are audited"


def test_every_response_says_nosniff(server: Server) -> None:
    """JSON errors from every layer (guard, body limit, handlers, validation, routing), pages,
    static files and public routes."""
    with server.client() as anonymous, server.client(server.tokens["ana"]) as api:
        answers = [
            anonymous.get("/api/v1/runs"),  # 401 from the guard
            anonymous.post("/hooks/nothing", content=b"x"),  # a webhook refusal
            anonymous.post("/api/v1/events", content=b"x" * 2_000_000),  # 413, body limit
            anonymous.get("/api/v1/ready"),
            anonymous.get("/login"),
            api.get("/api/v1/runs/nope"),  # 404 from a handler
            api.get("/api/v1/runs?limit=abc"),  # 422, validation
            api.delete("/api/v1/ready"),  # 405, routing
            api.get("/api/v1/no-such-route"),  # 404, routing
            api.get("/api/v1/runs"),
        ]
        static = re.search(r'href="(/static/[^"]+)"', anonymous.get("/login").text)
        assert static
        answers.append(anonymous.get(static.group(1)))
    statuses = {a.status_code for a in answers}
    assert {200, 401, 404, 405, 413, 422} <= statuses, statuses
    for answer in answers:
        assert answer.headers.get("x-content-type-options") == "nosniff", (
            answer.request.url,
            answer.status_code,
            answer.headers,
        )
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"]


def test_the_first_start_token_expires_after_a_day(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.0)
    settings = Settings(database_url=database_url_for(tmp_path / "first.db"))
    with App(settings, clock) as app:
        made = app.accounts.first_start()
        assert made is not None
        assert made.token_expires_at == pytest.approx(clock.now() + 24 * 3600)
        assert app.accounts.principal_for_token(made.token).name == "admin (first start)"
        clock.advance(24 * 3600 + 1)
        with pytest.raises(AuthError, match="expired"):
            app.accounts.principal_for_token(made.token)
        # The password stays: the admin signs in and makes tokens of their own.
        session = app.accounts.login("admin", made.password, source="127.0.0.1")
        assert session.principal.name == "admin"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.sqlite_only(reason="the modes of a SQLite file and its WAL/SHM/lock files")
def test_sqlite_files_and_new_folders_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which made them 0644 before
    try:
        db = tmp_path / "made" / "by" / "server" / "orchestrion.db"
        with App(Settings(database_url=f"sqlite:///{db}")) as app:
            app.store.workflows.register_workflow(SPEC, source=None, now=time.time())
            files = sorted(db.parent.glob("orchestrion.db*"))
            names = {f.name for f in files}
            assert {"orchestrion.db", "orchestrion.db-wal", "orchestrion.db-shm"} <= names
            assert "orchestrion.db.lock" in names
            for path in files:
                assert _mode(path) == 0o600, (path, oct(_mode(path)))
            for folder in (db.parent, db.parent.parent, db.parent.parent.parent):
                assert _mode(folder) == 0o700, (folder, oct(_mode(folder)))
            wake = db.parent / ".wake"
            if wake.exists():
                assert _mode(wake) == 0o700
        # A folder that existed keeps its owner's mode: only what the server creates is made
        # private by it.
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        with App(Settings(database_url=f"sqlite:///{shared / 'x.db'}")):
            pass
        assert _mode(shared) == 0o755 and _mode(shared / "x.db") == 0o600
    finally:
        os.umask(old)
