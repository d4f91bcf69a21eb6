"""UI sessions: login (with its own CSRF defence), cookies, CSRF on every form, revocation on
password or role change, logout, the login rate limit, and the first-start admin."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.errors import AuthError
from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from orchestrion.store.records import AuditFilter
from orchestrion.web.guard import SESSION_COOKIE
from tests.helpers import database_url_for
from tests.integration.test_route_policy import Server

SPEC = WorkflowSpec(
    name="fin_report",
    namespace="finance",
    tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),),
)
OTHER = WorkflowSpec(
    name="ops_secret_cleanup",
    namespace="ops",
    tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),),
)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with App(Settings(database_url=database_url_for(tmp_path / "sessions.db"))) as app:
        for spec in (SPEC, OTHER):
            app.store.workflows.register_workflow(spec, source=None, now=time.time())
            app.runs.trigger(spec.name)
        app.accounts.create_user("ana", PASSWORD, {"finance": "operator"})
        srv = Server(app)
        yield srv
        srv.stop()


def _login(c: httpx.Client, user: str = "ana", password: str = PASSWORD) -> httpx.Response:
    page = c.get("/login?next=/workflows")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token, page.text
    return c.post(
        "/login",
        data={"user": user, "password": password, "login_csrf": token.group(1), "next": "/runs"},
    )


def _csrf(c: httpx.Client, path: str = "/workflows/fin_report") -> str:
    """The CSRF token of the page's forms: every form carries the same, non-empty one."""
    found = re.findall(r'name="csrf_token" value="([^"]*)"', c.get(path).text)
    assert found, "no form on the page"
    assert len(set(found)) == 1 and found[0], found
    return str(found[0])


def test_login_sets_a_strict_http_only_cookie_and_lands_on_next(server: Server) -> None:
    with server.client(follow_redirects=False) as c:
        answer = _login(c)
        assert answer.status_code == 303 and answer.headers["location"] == "/runs"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        page = c.get("/workflows")
        assert page.status_code == 200 and "ana ▾" in page.text
        assert c.get("/api/v1/me").json()["name"] == "ana"  # the API accepts the session too


def test_the_login_form_refuses_a_missing_csrf_value_and_open_redirects(server: Server) -> None:
    with server.client(follow_redirects=False) as c:
        forged = c.post("/login", data={"user": "ana", "password": PASSWORD})
        assert forged.status_code == 403 and SESSION_COOKIE not in forged.headers.get(
            "set-cookie", ""
        )
        page = c.get("/login?next=//evil.example/x")
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert token
        answer = c.post(
            "/login",
            data={
                "user": "ana",
                "password": PASSWORD,
                "login_csrf": token.group(1),
                "next": "https://evil.example/",
            },
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_every_form_post_needs_the_session_csrf_token(server: Server) -> None:
    with server.client(follow_redirects=False) as c:
        _login(c)
        run = c.post("/workflows/fin_report/trigger", data={})
        assert run.status_code == 403 and "CSRF" in run.text
        token = _csrf(c)
        wrong = c.post("/workflows/fin_report/trigger", data={"csrf_token": token[:-2] + "xx"})
        assert wrong.status_code == 403
        ok = c.post("/workflows/fin_report/trigger", data={"csrf_token": token})
        assert ok.status_code == 303 and ok.headers["location"].startswith("/runs/")
        # The JSON API with a cookie needs the token too (in a header).
        api = c.post("/api/v1/workflows/fin_report/runs", json={})
        assert api.status_code == 403
        api = c.post("/api/v1/workflows/fin_report/runs", json={}, headers={"X-CSRF-Token": token})
        assert api.status_code == 201


def test_a_password_or_role_change_ends_every_session_at_once(server: Server) -> None:
    with server.client(follow_redirects=False) as a, server.client(follow_redirects=False) as b:
        _login(a)
        _login(b)
        assert a.get("/runs").status_code == 200 and b.get("/runs").status_code == 200
        server.app.accounts.set_roles("ana", {"finance": "viewer"})
        for c in (a, b):
            gone = c.get("/runs")
            assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
            assert c.get("/api/v1/runs").status_code == 401
        _login(a)
        assert a.get("/runs").status_code == 200
        server.app.accounts.set_password("ana", PASSWORD + "!")
        assert a.get("/runs").status_code == 303


def test_logout_ends_the_session(server: Server) -> None:
    with server.client(follow_redirects=False) as c:
        _login(c)
        cookie = c.cookies.get(SESSION_COOKIE)
        token = _csrf(c, "/runs")
        assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    with server.client(follow_redirects=False) as replay:
        replay.cookies.set(SESSION_COOKIE, cookie or "")
        assert replay.get("/runs").status_code == 303
    [record] = server.app.accounts.list_audit(AuditFilter(action="session.logout"))
    assert (record.actor, record.outcome) == ("ana", "ok")


def test_wrong_passwords_are_rate_limited_and_audited(server: Server) -> None:
    with server.client(follow_redirects=False) as c:
        for _ in range(5):
            assert _login(c, password="wrong password!!").status_code == 401
        locked = _login(c)  # even the right password, while locked out
        assert locked.status_code == 401 and "too many" in locked.text
    records = server.app.accounts.list_audit(AuditFilter(action="session.login"))
    assert len(records) == 6 and {r.outcome for r in records} == {"denied"}
    assert all(r.actor == "ana" and "password" not in r.params for r in records)


def test_failed_logins_on_one_server_lock_the_user_out_of_all(
    server: Server, tmp_path: Path
) -> None:
    """Another server on the same database (its own store object) refuses the attempts
    that this one counted; what was typed as a user name is not stored."""
    other = App(Settings(database_url=server.app.store.url)).open()
    try:
        for _ in range(5):
            with pytest.raises(AuthError, match="wrong user name or password"):
                server.app.accounts.login("ana", "wrong password!!", source="10.0.0.7")
        with pytest.raises(AuthError, match="too many failed logins"):
            other.accounts.login("ana", PASSWORD, source="10.0.0.7")
        other.accounts.login("ana", PASSWORD, source="10.0.0.8")  # another source: allowed
        typed = "hunter2-typed-as-a-user\x00name"
        with pytest.raises(AuthError, match="wrong user name or password"):
            other.accounts.login(typed, "wrong password!!", source="10.0.0.7")
        keys = _login_failure_keys(server.app.store.url)
        assert len(keys) == 6 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys), keys
    finally:
        other.close()


def _login_failure_keys(url: str) -> list[str]:
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return [r[0] for r in conn.execute("SELECT key FROM login_failures")]
    with psycopg.connect(url) as pconn:
        return [r[0] for r in pconn.execute("SELECT key FROM login_failures")]


def test_first_start_makes_one_random_admin_once(server: Server, tmp_path: Path) -> None:
    accounts = server.app.accounts
    assert accounts.first_start() is None  # a user exists already
    with App(Settings(database_url=database_url_for(tmp_path / "fresh.db"))) as fresh:
        made = fresh.accounts.first_start()
        assert made is not None and len(made.password) >= 20
        assert fresh.accounts.first_start() is None
        principal = fresh.accounts.principal_for_token(made.token)
        assert principal.bindings == {"*": principal.bindings["*"]}
        assert made.password not in repr(made) and made.token not in repr(made)


def test_servers_starting_together_on_a_new_database_make_one_admin(tmp_path: Path) -> None:
    """Several servers' first start at once (their own store objects, as processes would
    have): exactly one makes the admin; the others start normally."""
    url = database_url_for(tmp_path / "together.db")
    apps = [App(Settings(database_url=url)).open() for _ in range(4)]
    barrier = threading.Barrier(len(apps))
    results: list[object] = []

    def start(app: App) -> None:
        barrier.wait()
        try:
            results.append(app.accounts.first_start())
        except Exception as exc:  # the failure under test
            results.append(exc)

    threads = [threading.Thread(target=start, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        made = [r for r in results if r is not None]
        assert len(results) == len(apps) and len(made) == 1, results
        assert [u.name for u in apps[0].accounts.list_users()] == ["admin"]
    finally:
        for app in apps:
            app.close()


def test_pages_show_only_the_namespaces_a_user_is_bound_on(server: Server) -> None:
    with server.client(follow_redirects=False) as c:
        _login(c)
        for page in ("/", "/fragments/overview", "/workflows", "/runs", "/events",
                     "/fragments/events", "/backfills"):  # fmt: skip
            text = c.get(page).text
            assert OTHER.name not in text, page
        assert SPEC.name in c.get("/workflows").text and SPEC.name in c.get("/runs").text
        ops_run = server.app.runs.list_runs()[
            0 if server.app.runs.list_runs()[0].workflow == OTHER.name else 1
        ]
        assert c.get(f"/runs/{ops_run.id}").status_code == 403
        assert c.get(f"/workflows/{OTHER.name}").status_code == 403


def test_pages_offer_only_the_actions_the_role_allows(server: Server) -> None:
    server.app.accounts.create_user("vic", PASSWORD, {"finance": "viewer"})
    run = next(r for r in server.app.runs.list_runs() if r.workflow == SPEC.name)
    with (
        server.client(follow_redirects=False) as viewer,
        server.client(follow_redirects=False) as op,
    ):
        _login(viewer, "vic")
        _login(op)  # ana: operator on finance
        page = viewer.get(f"/runs/{run.id}").text
        assert re.search(r'id="btn-cancel"[^>]*disabled[^>]*data-denied="1"', page)
        assert 'href="/workflows/fin_report/trigger"' not in viewer.get("/workflows").text
        assert "Mark succeeded" not in viewer.get(f"/runs/{run.id}?task=a").text
        page = op.get(f"/runs/{run.id}").text
        assert "data-denied" not in page.split('id="btn-cancel"')[1].split(">")[0]
        assert 'href="/workflows/fin_report/trigger"' in op.get("/workflows").text
        assert "Mark succeeded" in op.get(f"/runs/{run.id}?task=a").text
        # Operators may not pause (editor): no pause form for them either.
        assert 'action="/workflows/fin_report/pause"' not in op.get("/workflows").text
