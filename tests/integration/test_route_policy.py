"""Every route is guarded: the route table, credentials, roles x namespaces, CSRF, audit.

A real server (uvicorn on a loopback port, in a thread) over a real SQLite file. Two
namespaces, ``finance`` and ``ops``, each with a workflow and a finished run; tokens of
every role bound on ``finance`` call every route on both namespaces' objects.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.principals import GLOBAL_ACTIONS, REQUIRED_ROLE, Action, Role
from orchestrion.server import create_server
from orchestrion.spec.model import PythonAction, SubWorkflowAction, TaskSpec, WorkflowSpec
from orchestrion.spec.schedule_model import ScheduleSpec
from orchestrion.store.records import AuditFilter
from orchestrion.web.policy import access_table
from tests.helpers import database_url_for

_DAILY = (ScheduleSpec(cron="0 3 * * *"),)
FIN = WorkflowSpec(
    name="fin_report",
    namespace="finance",
    tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),),
    schedules=_DAILY,
)
OPS = WorkflowSpec(
    name="ops_cleanup",
    namespace="ops",
    tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),),
    schedules=_DAILY,
)


class Server:
    def __init__(self, app: App) -> None:
        self.app = app
        asgi = create_server(app)
        # The access table, read off the routes' own marks (`rule(...)`, `public`).
        self.access = access_table(asgi.routes)
        config = uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.tokens: dict[str, str] = {}
        self.runs: dict[str, str] = {}
        self.backfills: dict[str, str] = {}

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=10, headers=headers, **kw)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = Path(tmp_path_factory.mktemp("policy")) / "policy.db"
    with App(Settings(database_url=database_url_for(db))) as app:
        for spec in (FIN, OPS):
            app.store.workflows.register_workflow(spec, source=None, now=time.time())
        srv = Server(app)
        for role in Role:
            srv.tokens[role.label], _ = app.accounts.create_token(
                role.label, {"finance": role.label}, expires="never"
            )
        srv.tokens["root"], _ = app.accounts.create_token("root", {"*": "admin"}, expires="never")
        srv.runs["finance"] = app.runs.trigger(FIN.name).id
        srv.runs["ops"] = app.runs.trigger(OPS.name).id
        for run_id in srv.runs.values():
            app.store.runs.cancel_run(run_id, now=time.time())
        for namespace, spec in (("finance", FIN), ("ops", OPS)):
            made = app.triggers.create_backfill(spec.name, "2026-01-01", "2026-01-02", max_active=1)
            srv.backfills[namespace] = made.id
        yield srv
        srv.stop()


def _routes(app: App) -> list[tuple[str, str]]:
    """Every (method, path template) the server answers, through included routers."""
    return _routes_of(create_server(app).routes)


def _routes_of(top: Any) -> list[tuple[str, str]]:
    out: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            if hasattr(route, "effective_candidates"):  # an included router (FastAPI >= 0.16x)
                walk(route.effective_candidates())
            elif getattr(route, "methods", None) and isinstance(route.path, str):
                out.update((m, route.path) for m in route.methods if m != "HEAD")

    walk(top)
    return sorted(out)


# ----------------------------------------------------------------------- the route table


def test_every_route_is_public_or_has_a_rule_and_every_rule_a_route(server: Server) -> None:
    PUBLIC, RULES = server.access.public, server.access.rules
    routes = set(_routes(server.app))
    undecided = sorted(r for r in routes if r not in PUBLIC and r not in RULES)
    assert not undecided, f"routes without an access rule: {undecided}"
    stale = sorted(k for k in [*RULES, *PUBLIC] if k not in routes)
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_the_public_routes_are_exactly_the_allow_list(server: Server) -> None:
    assert set(server.access.public) == {
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/ready"),
        # The handler decides: a scraper address, or a token that may read everything.
        ("GET", "/metrics"),
        ("POST", "/hooks/{name}"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/static/{path:path}"),
    }


def test_a_route_without_a_rule_is_refused_and_missing_from_the_table(server: Server) -> None:
    """Fail closed: a route added with no mark answers 403 even to a ``*`` admin, and the
    table read off the routes lacks it, so the enumeration above would name it."""
    asgi = create_server(server.app)

    def unruled() -> dict[str, str]:
        return {"reached": "yes"}

    asgi.add_api_route("/api/v1/unruled", unruled, methods=["GET"])
    assert ("GET", "/api/v1/unruled") in set(_routes_of(asgi.routes))
    table = access_table(asgi.routes)
    assert ("GET", "/api/v1/unruled") not in {*table.public, *table.rules}
    headers = {"Authorization": f"Bearer {server.tokens['root']}"}

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            return await c.get("/api/v1/unruled")

    refused = asyncio.run(call())
    assert refused.status_code == 403, refused.text
    assert "no access rule for GET /api/v1/unruled" in refused.json()["error"]["message"]


def _url(path: str, server: Server, namespace: str = "finance") -> str:
    values = {
        "run_id": server.runs[namespace],
        "name": FIN.name if namespace == "finance" else OPS.name,
        "namespace": namespace,
        "task": "a",
        "backfill_id": server.backfills[namespace],
        "token_id": "0123456789abcdef",
        "user": "nobody",
        "path:path": "app.css",
    }
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x"), path)


def test_without_credentials_every_guarded_route_refuses(server: Server) -> None:
    with server.client(follow_redirects=False) as anonymous:
        for method, path in _routes(server.app):
            if (method, path) in server.access.public or method == "HEAD":
                continue
            answer = anonymous.request(method, _url(path, server), json={})
            is_page = method == "GET" and not path.startswith("/api/")
            if is_page:
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/login?next=")
            else:
                assert answer.status_code == 401, (method, path, answer.status_code)
                assert answer.json()["error"]["code"] == "unauthenticated"
    for docs in ("/api/v1/openapi.json", "/api/v1/docs"):
        assert httpx.get(server.url + docs).status_code == 401


def test_bad_tokens_are_refused_with_401_and_say_why(server: Server) -> None:
    app = server.app
    expired, _ = app.accounts.create_token("short", {"finance": "viewer"}, expires="1m")
    revoked, rec = app.accounts.create_token("gone", {"finance": "viewer"}, expires="never")
    cases = {
        "malformed": ("orc_nothex_short", "malformed"),
        "wrong secret": (revoked[:-4] + "AAAA", "wrong secret"),
        "unknown id": ("orc_ffffffffffffffff_" + "A" * 43, "unknown"),
    }
    with server.client(revoked) as c:
        assert c.get("/api/v1/runs").status_code == 200
        app.accounts.revoke_token(rec.id)
        refused = c.get("/api/v1/runs")  # the very next request
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    for text, reason in cases.values():
        with server.client(text) as c:
            answer = c.get("/api/v1/runs")
            assert answer.status_code == 401
            message = answer.json()["error"]["message"]
            assert reason in message and text not in message
    # Expiry: the token works until its time, then never again.
    real_now = app.clock.now

    def later() -> float:
        return real_now() + 120

    app.clock.now = later  # type: ignore[method-assign]
    try:
        with server.client(expired) as c:
            answer = c.get("/api/v1/runs")
        assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]
    finally:
        app.clock.now = real_now  # type: ignore[method-assign]
    for header in ("Basic abc", "Bearer", "Token x"):
        answer = httpx.get(server.url + "/api/v1/runs", headers={"Authorization": header})
        assert answer.status_code == 401


# ------------------------------------------------------------------ roles x namespaces


def _mutating_api_routes(server: Server) -> list[tuple[str, str, Action]]:
    out = []
    for (method, path), rule in sorted(server.access.rules.items()):
        if rule.mutating and path.startswith("/api/") and "{" in path:
            out.append((method, path, rule.action))
    return out


@pytest.mark.parametrize("role", [r.label for r in Role])
def test_each_role_may_do_what_its_rank_allows_in_its_namespace_only(
    server: Server, role: str
) -> None:
    """Path-addressed mutating routes: in ``finance`` a 403 exactly when the role is too
    low; in ``ops`` (no binding) always 403. Other outcomes (404, 409, 422) mean the guard
    let the request through to the handler."""
    held = Role.parse(role)
    with server.client(server.tokens[role]) as c:
        for method, path, action in _mutating_api_routes(server):
            if action in GLOBAL_ACTIONS:
                continue  # global: covered below
            own = c.request(method, _url(path, server, "finance"), json={})
            other = c.request(method, _url(path, server, "ops"), json={})
            allowed = held >= REQUIRED_ROLE[action]
            assert (own.status_code == 403) == (not allowed), (role, method, path, own.text)
            if "{namespace}" in path or "{run_id}" in path or "{name}" in path:
                assert other.status_code == 403, (role, method, path, other.text)


def test_reads_are_limited_to_the_namespaces_bound(server: Server) -> None:
    with server.client(server.tokens["viewer"]) as c:
        assert c.get(f"/api/v1/runs/{server.runs['finance']}").status_code == 200
        assert c.get(f"/api/v1/runs/{server.runs['ops']}").status_code == 403
        assert c.get(f"/api/v1/workflows/{OPS.name}").status_code == 403
        listed = {r["workflow"] for r in c.get("/api/v1/runs").json()["items"]}
        assert listed == {FIN.name}
        assert [w["name"] for w in c.get("/api/v1/workflows").json()] == [FIN.name]
        events = c.get("/api/v1/events").json()
        assert server.runs["finance"] in {e["run_id"] for e in events}
        runs = {e["run_id"] for e in events}
        assert {c.get(f"/api/v1/runs/{r}").json()["workflow"] for r in runs} == {FIN.name}
        assert c.get("/api/v1/audit").status_code == 403
        assert c.get("/api/v1/users").status_code == 403
    with server.client(server.tokens["root"]) as c:
        listed = {r["workflow"] for r in c.get("/api/v1/runs").json()["items"]}
        assert listed == {FIN.name, OPS.name}


def test_user_management_needs_admin_on_every_namespace(server: Server) -> None:
    with server.client(server.tokens["admin"]) as c:  # admin of finance only
        answer = c.post(
            "/api/v1/users",
            json={"name": "eve", "password": "p" * 16, "bindings": {"*": "admin"}},
        )
        assert answer.status_code == 403
    with server.client(server.tokens["root"]) as c:
        answer = c.post(
            "/api/v1/users",
            json={"name": "ana", "password": "p" * 16, "bindings": {"finance": "operator"}},
        )
        assert answer.status_code == 201 and "password" not in answer.text
        assert c.patch("/api/v1/users/ana", json={"disabled": True}).json()["disabled"]


def test_tokens_cannot_grant_more_than_their_maker_holds(server: Server) -> None:
    with server.client(server.tokens["admin"]) as c:
        ok = c.post("/api/v1/tokens", json={"name": "bot", "bindings": {"finance": "operator"}})
        assert ok.status_code == 201 and ok.json()["token"].startswith("orc_")
        assert ok.json()["token"] not in c.get("/api/v1/tokens").text
        for bindings in ({"*": "viewer"}, {"ops": "viewer"}, {"finance": "admin", "ops": "x"}):
            answer = c.post("/api/v1/tokens", json={"name": "bad", "bindings": bindings})
            assert answer.status_code in (403, 422), bindings
        root_id = next(
            t["id"]
            for t in httpx.get(
                server.url + "/api/v1/tokens",
                headers={"Authorization": f"Bearer {server.tokens['root']}"},
            ).json()
            if t["name"] == "root"
        )
        assert c.post(f"/api/v1/tokens/{root_id}/revoke").status_code == 403
        made = ok.json()["id"]
        assert c.post(f"/api/v1/tokens/{made}/revoke").json()["revoked_at"] is not None
    with server.client(ok.json()["token"]) as bot:
        assert bot.get("/api/v1/runs").status_code == 401


def test_deploying_needs_trigger_rights_on_sub_workflows_of_other_namespaces(
    server: Server,
) -> None:
    parent = WorkflowSpec(
        name="fin_parent",
        namespace="finance",
        tasks=(TaskSpec(name="child", action=SubWorkflowAction(workflow=OPS.name)),),
    )
    own = WorkflowSpec(
        name="fin_own",
        namespace="finance",
        tasks=(TaskSpec(name="child", action=SubWorkflowAction(workflow=FIN.name)),),
    )
    with server.client(server.tokens["editor"]) as c:
        refused = c.post("/api/v1/workflows", json=parent.model_dump(mode="json"))
        assert refused.status_code == 403 and "ops" in refused.json()["error"]["message"]
        assert c.post("/api/v1/workflows", json=own.model_dump(mode="json")).status_code == 201
        moved = FIN.model_copy(update={"namespace": "ops"}).model_dump(mode="json")
        assert c.post("/api/v1/workflows", json=moved).status_code == 403


# ------------------------------------------------------------------------------- audit


def test_each_mutating_request_writes_exactly_one_audit_record(server: Server) -> None:
    accounts = server.app.accounts
    top = next(iter(accounts.list_audit(AuditFilter(limit=1))), None)
    start = top.id if top else 0
    with server.client(server.tokens["operator"]) as c:
        c.get("/api/v1/runs")  # reads write nothing
        ok = c.post(f"/api/v1/workflows/{FIN.name}/runs", json={"params": {}})
        assert ok.status_code == 201
        denied = c.post(f"/api/v1/workflows/{FIN.name}/pause")
        assert denied.status_code == 403
        missing = c.post("/api/v1/runs/nope/cancel")
        assert missing.status_code == 404
    fresh = [r for r in accounts.list_audit(AuditFilter(limit=50)) if r.id > start]
    fresh.reverse()
    assert [(r.action, r.outcome) for r in fresh] == [
        ("run.trigger", "ok"),
        ("workflow.pause", "denied"),
        ("run.cancel", "failed"),
    ]
    first = fresh[0]
    assert first.actor == "operator" and first.actor_kind == "token"
    assert first.namespace == "finance" and first.source == "127.0.0.1"
    assert first.request_id and len(first.request_id) == 16
    assert ok.headers["x-request-id"] == first.request_id


def test_audit_records_mask_secrets_and_filter_by_actor(server: Server) -> None:
    with server.client(server.tokens["root"]) as c:
        c.post(
            "/api/v1/users",
            json={"name": "masked", "password": "sentinel-password-1", "bindings": {}},
        )
        listed = c.get("/api/v1/audit", params={"actor": "root", "action": "user.create"})
        assert listed.status_code == 200
        items = listed.json()["items"]
        assert items and "sentinel-password-1" not in listed.text
        # A body that carries a credential keeps only its declared fields' values.
        params = items[0]["params"]
        assert params["body"] == {"name": "masked", "bindings": {}}
        assert params["fields"] == ["bindings", "name", "password"]
        assert params["value_given"] is True


def test_queue_limits_are_a_server_setting(server: Server) -> None:
    with server.client(server.tokens["admin"]) as finance_admin:
        refused = finance_admin.put("/api/v1/queues/default/limit", json={"max_running": 2})
        assert refused.status_code == 403
        assert finance_admin.get("/api/v1/queues").status_code == 200
    with server.client(server.tokens["root"]) as root:
        made = root.put("/api/v1/queues/gpu/limit", json={"max_running": 2})
        assert made.status_code == 200, made.text
        listed = root.get("/api/v1/queues").json()
        assert [(q["queue"], q["max_running"], q["running"]) for q in listed] == [("gpu", 2, 0)]
        assert root.put("/api/v1/queues/gpu/limit", json={"max_running": 0}).status_code == 422
        assert root.put("/api/v1/queues/bad name/limit", json={"max_running": 1}).status_code == 422
        assert root.delete("/api/v1/queues/gpu/limit").status_code == 204
        assert root.delete("/api/v1/queues/gpu/limit").status_code == 404
    actions = [r.action for r in server.app.accounts.list_audit(AuditFilter(actor="root"))]
    assert actions.count("queue.limit") == 3 and actions.count("queue.unlimit") == 2


def test_nul_bytes_are_refused_before_they_reach_the_database(server: Server) -> None:
    """PostgreSQL text cannot hold NUL: a URL with one is refused whole (400), a token name
    with one is refused as a bad parameter, and audit records spell NULs out."""
    with server.client(server.tokens["root"]) as root:
        assert root.get("/api/v1/runs/a%00b").status_code == 400
        assert root.get("/api/v1/runs", params={"workflow": "a\x00b"}).status_code == 400
        made = root.post("/api/v1/tokens", json={"name": "x\x00y", "bindings": {"*": "viewer"}})
        assert made.status_code == 422 and "NUL character in the request body at name" in made.text
    recorded = server.app.accounts.list_audit(AuditFilter(action="token.create", limit=5))
    assert recorded and "\x00" not in str(recorded[0].params)


def test_a_viewer_of_one_namespace_gets_full_pages_of_its_runs(tmp_path: Path) -> None:
    """Runs of other namespaces are filtered in the query, not out of a page read for all:
    every page holds as many visible runs as asked, and the cursor walks them all."""
    with App(Settings(database_url=database_url_for(tmp_path / "pages.db"))) as app:
        for spec in (FIN, OPS):
            app.store.workflows.register_workflow(spec, source=None, now=time.time())
        finance: list[str] = []
        for _ in range(12):
            for _ in range(3):
                app.runs.trigger(OPS.name)
            finance.append(app.runs.trigger(FIN.name).id)
        token, _ = app.accounts.create_token("viewer", {"finance": "viewer"}, expires="never")
        server = Server(app)
        try:
            with server.client(token) as c:
                pages: list[list[str]] = []
                cursor: str | None = None
                while True:
                    params: dict[str, str | int] = {
                        "limit": 5,
                        **({"cursor": cursor} if cursor else {}),
                    }
                    body = c.get("/api/v1/runs", params=params).json()
                    pages.append([r["id"] for r in body["items"]])
                    cursor = body["next_cursor"]
                    if cursor is None:
                        break
                assert [len(p) for p in pages] == [5, 5, 2]
                newest_first = sorted(finance, reverse=True)  # ids sort by creation
                assert [r for p in pages for r in p] == newest_first
                html = c.get("/runs", params={"limit": 5}).text
                assert sorted((r for r in finance if r in html), reverse=True) == newest_first[:5]
        finally:
            server.stop()


def test_event_triggers_see_only_events_their_namespace_may_see(tmp_path: Path) -> None:
    """Issue 12: an editor of ``finance`` deploying a trigger on ``*`` made every other
    namespace's event sends fail with 403. A send needs ``events.send`` on some namespace;
    only the sender's namespaces' triggers see it; ids are the sender's scope's own."""
    from orchestrion.spec.model import TriggerSpec

    def watcher(name: str, namespace: str, pattern: str) -> dict[str, Any]:
        spec = WorkflowSpec(
            name=name,
            namespace=namespace,
            tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),),
            triggers=(TriggerSpec(event=pattern),),
        )
        return spec.model_dump(mode="json")

    with App(Settings(database_url=database_url_for(tmp_path / "events.db"))) as app:
        make = app.accounts.create_token
        tokens = {
            f"{ns}-{role}": make(f"{ns}-{role}", {ns: role}, expires="never")[0]
            for ns in ("finance", "ops")
            for role in ("viewer", "operator", "editor")
        }
        tokens["root"], _ = app.accounts.create_token("root", {"*": "admin"}, expires="never")
        tokens["both"], _ = app.accounts.create_token(
            "both", {"finance": "operator", "ops": "operator"}, expires="never"
        )
        server = Server(app)

        def send(who: str, event_id: str | None = None) -> httpx.Response:
            body = {"type": "deploy.done", **({"id": event_id} if event_id else {})}
            with server.client(tokens[who]) as c:
                return c.post("/api/v1/events", json=body)

        def started(response: httpx.Response) -> set[str]:
            assert response.status_code == 202, response.text
            return {app.runs.get_run(r).workflow for r in response.json()["run_ids"]}

        try:
            for who, spec in (
                ("finance-editor", watcher("fin_all", "finance", "*")),
                ("ops-editor", watcher("ops_deploys", "ops", "deploy.*")),
            ):
                with server.client(tokens[who]) as c:
                    deployed = c.post("/api/v1/workflows", json=spec)
                    assert deployed.status_code in (200, 201), deployed.text
            # Each operator's event reaches its own namespace's triggers only.
            assert started(send("ops-operator")) == {"ops_deploys"}
            assert started(send("finance-operator")) == {"fin_all"}
            assert started(send("both")) == {"fin_all", "ops_deploys"}
            assert started(send("root")) == {"fin_all", "ops_deploys"}
            # An id taken in one scope neither blocks nor answers for another's.
            assert started(send("finance-operator", "same-id")) == {"fin_all"}
            again = send("ops-operator", "same-id")
            assert started(again) == {"ops_deploys"} and not again.json()["duplicate"]
            duplicate = send("ops-operator", "same-id")
            assert duplicate.json()["duplicate"] and started(duplicate) == {"ops_deploys"}
            # Sending still needs events.send somewhere: a viewer is refused, naming it.
            refused = send("ops-viewer")
            assert refused.status_code == 403 and "events.send" in refused.text, refused.text
        finally:
            server.stop()
