"""The REST API over a real SQLite file: every route, and bad input that must be a 4xx."""

from __future__ import annotations

import json
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
from orchestrion.server import create_server
from orchestrion.spec.model import (
    InputSpec,
    ParamSpec,
    ParamType,
    PythonAction,
    TaskSpec,
    WorkflowSpec,
)
from orchestrion.store.records import AuditFilter
from orchestrion.worker.context import TaskContext
from orchestrion.worker.loop import Worker, WorkerSettings
from tests.helpers import database_url_for


def add(x: int) -> int:
    return x + 1


def boom() -> None:
    raise RuntimeError("kaboom")


SPEC = WorkflowSpec(
    name="adder",
    params={
        "x": ParamSpec(type=ParamType.INTEGER, required=True),
        "mode": ParamSpec(type=ParamType.STRING, default="fast", enum=("fast", "slow")),
    },
    tasks=(
        TaskSpec(
            name="one", action=PythonAction(ref="t:add"), inputs={"x": InputSpec(expr="params.x")}
        ),
        TaskSpec(
            name="two",
            action=PythonAction(ref="t:add"),
            depends_on=("one",),
            inputs={"x": InputSpec(expr="tasks.one")},
        ),
    ),
)
FAILING = WorkflowSpec(
    name="failing", tasks=(TaskSpec(name="b", action=PythonAction(ref="t:boom")),)
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with App(Settings(database_url=database_url_for(tmp_path / "api.db"))) as app:
        app.code.add({"t:add": add, "t:boom": boom})
        for spec in (SPEC, FAILING):
            app.store.workflows.register_workflow(spec, source=None, now=time.time())
        yield app


@pytest.fixture
def client(app: App) -> Iterator[httpx.Client]:
    """A real uvicorn server on a free loopback port, in a thread."""
    config = uvicorn.Config(
        create_server(app, max_body_bytes=10_000),
        host="127.0.0.1",
        port=0,
        log_level="error",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    token, _ = app.accounts.create_token("tests", {"*": "admin"}, expires="never")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=headers) as c:
        yield c
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def worker(app: App) -> Iterator[Worker]:
    w = Worker(
        app.store.runs,
        app.store.workflows,
        app.store.notifier,
        app.code,
        WorkerSettings(concurrency=2, heartbeat_every=0.2),
        app.clock,
    )
    w.start()
    yield w
    w.stop(grace=2)


def wait_final(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if run["state"] in ("succeeded", "failed", "canceled"):
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not finish")


def error(response: httpx.Response, status: int, code: str, text: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    assert text in body["message"], body["message"]


def test_health_ready_openapi(client: httpx.Client) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    assert client.get("/api/v1/ready").json() == {"status": "ready"}
    doc = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/runs/{run_id}/cancel" in doc["paths"]


def test_workflows_list_get_versions_pause(client: httpx.Client) -> None:
    names = [w["name"] for w in client.get("/api/v1/workflows").json()]
    assert names == ["adder", "failing"]
    one = client.get("/api/v1/workflows/adder").json()
    assert one["version"] == SPEC.version and one["spec"]["name"] == "adder"
    assert [v["version"] for v in client.get("/api/v1/workflows/adder/versions").json()] == [
        SPEC.version
    ]
    assert client.post("/api/v1/workflows/adder/pause").json()["paused"] is True
    assert client.get("/api/v1/workflows/adder").json()["paused"] is True
    assert client.post("/api/v1/workflows/adder/unpause").json()["paused"] is False
    error(client.get("/api/v1/workflows/nope"), 404, "not_found", "'nope'")
    error(client.post("/api/v1/workflows/nope/pause"), 404, "not_found", "'nope'")


def test_register_spec_and_new_version(client: httpx.Client) -> None:
    data = SPEC.model_dump(mode="json")
    data["description"] = "changed"
    created = client.post("/api/v1/workflows", json=data)
    assert created.status_code == 201
    assert created.json()["version"] != SPEC.version
    versions = client.get("/api/v1/workflows/adder/versions").json()
    assert len(versions) == 2 and versions[0]["version"] == created.json()["version"]


def test_rollback_makes_an_older_version_current(app: App, client: httpx.Client) -> None:
    """Deploy A, B, A: A is current again; ``POST .../current`` chooses B; triggers follow."""
    a = SPEC.model_dump(mode="json")
    b = {**a, "description": "B"}
    assert client.post("/api/v1/workflows", json=b).json()["current"] is True
    again = client.post("/api/v1/workflows", json=a)
    assert again.status_code == 201 and again.json()["current"] is True
    versions = client.get("/api/v1/workflows/adder/versions").json()
    assert [(v["version"], v["current"]) for v in versions] == [
        (versions[0]["version"], False),
        (SPEC.version, True),
    ]
    b_version = versions[0]["version"]
    assert client.get("/api/v1/workflows/adder").json()["version"] == SPEC.version
    chosen = client.post("/api/v1/workflows/adder/current", json={"version": b_version})
    assert chosen.status_code == 200, chosen.text
    assert (chosen.json()["version"], chosen.json()["current"]) == (b_version, True)
    listed = {
        w["name"]: (w["version"], w["current"]) for w in client.get("/api/v1/workflows").json()
    }
    assert listed["adder"] == (b_version, True)
    old = client.get("/api/v1/workflows/adder", params={"version": SPEC.version}).json()
    assert old["current"] is False
    run = client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 1}}).json()
    assert run["version"] == b_version
    error(
        client.post("/api/v1/workflows/adder/current", json={"version": "0" * 16}),
        404,
        "not_found",
        "0" * 16,
    )
    error(
        client.post("/api/v1/workflows/nope/current", json={"version": SPEC.version}),
        404,
        "not_found",
        "'nope'",
    )
    for body in ({}, {"version": ""}, {"version": 1}, {"version": "x", "extra": 1}, [1]):
        answer = client.post("/api/v1/workflows/adder/current", json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert client.get("/api/v1/workflows/adder").json()["version"] == b_version


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"name": "x"}, "tasks"),
        ({"name": "bad name!", "tasks": []}, "name"),
        (
            {
                "name": "c",
                "tasks": [
                    {"name": "a", "action": {"kind": "python", "ref": "m:f"}, "depends_on": ["b"]},
                    {"name": "b", "action": {"kind": "python", "ref": "m:f"}, "depends_on": ["a"]},
                ],
            },
            "cycle",
        ),
        ({"name": "x", "tasks": [{"name": "a", "action": {"kind": "nope"}}]}, "action"),
        (
            {
                "name": "x",
                "bogus": 1,
                "tasks": [{"name": "a", "action": {"kind": "python", "ref": "m:f"}}],
            },
            "bogus",
        ),
    ],
)
def test_register_bad_specs(client: httpx.Client, body: dict[str, Any], text: str) -> None:
    response = client.post("/api/v1/workflows", json=body)
    error(response, 422, "invalid_workflow", text)


def test_register_not_an_object(client: httpx.Client) -> None:
    response = client.post("/api/v1/workflows", json=[1, 2])
    assert response.status_code == 422


def test_trigger_runs_and_reads(client: httpx.Client, worker: Worker) -> None:
    created = client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 1}})
    assert created.status_code == 201
    run = wait_final(client, created.json()["id"])
    assert run["state"] == "succeeded" and run["result"] == {"two": 3}
    assert run["params"] == {"x": 1, "mode": "fast"}
    tasks = client.get(f"/api/v1/runs/{run['id']}/tasks").json()
    assert [(t["task"], t["state"], t["result"]) for t in tasks] == [
        ("one", "succeeded", 2),
        ("two", "succeeded", 3),
    ]
    attempts = client.get(f"/api/v1/runs/{run['id']}/attempts").json()
    assert [a["outcome"] for a in attempts] == ["succeeded", "succeeded"]
    events = client.get(f"/api/v1/runs/{run['id']}/events").json()
    assert events[0]["kind"] == "run.created" and events[-1]["kind"] == "run.succeed"
    later = client.get(f"/api/v1/runs/{run['id']}/events", params={"after": events[-2]["id"]})
    assert [e["id"] for e in later.json()] == [events[-1]["id"]]
    assert client.get(f"/api/v1/runs/{run['id']}/logs").json() == {"items": [], "next_cursor": None}
    assert client.get("/api/v1/events", params={"limit": 5}).status_code == 200
    assert client.get("/api/v1/workers").json()[0]["state"] == "running"


def test_idempotency_key_returns_the_same_run(client: httpx.Client) -> None:
    body = {"params": {"x": 1}, "idempotency_key": "once"}
    first = client.post("/api/v1/workflows/adder/runs", json=body).json()
    second = client.post("/api/v1/workflows/adder/runs", json=body).json()
    assert first["id"] == second["id"]


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"params": {}}, "bad_parameters", "'x' is required"),
        ({"params": {"x": "one"}}, "bad_parameters", "'x' must be integer"),
        ({"params": {"x": True}}, "bad_parameters", "'x' must be integer"),
        ({"params": {"x": 1, "mode": "warp"}}, "bad_parameters", "one of"),
        ({"params": {"x": 1, "y": 2}}, "bad_parameters", "unknown parameter 'y'"),
        ({"params": [1]}, "invalid_request", "params"),
        ({"params": {"x": 1}, "surprise": 1}, "invalid_request", "surprise"),
        ({"params": {"x": 1}, "priority": 10**6}, "invalid_request", "priority"),
    ],
)
def test_trigger_bad_input(client: httpx.Client, body: Any, code: str, text: str) -> None:
    error(client.post("/api/v1/workflows/adder/runs", json=body), 422, code, text)


def test_trigger_unknown_workflow_and_malformed_json(client: httpx.Client) -> None:
    error(client.post("/api/v1/workflows/nope/runs", json={}), 404, "not_found", "'nope'")
    response = client.post(
        "/api/v1/workflows/adder/runs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_oversized_body_is_413(client: httpx.Client) -> None:
    big = {"params": {"x": 1}, "idempotency_key": "k", "pad": "x" * 20_000}
    error(client.post("/api/v1/workflows/adder/runs", json=big), 413, "too_large", "limit")


def test_cursor_paging(client: httpx.Client) -> None:
    ids = [
        client.post("/api/v1/workflows/adder/runs", json={"params": {"x": i}}).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "workflow": "adder"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/runs", params=params).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    error(client.get("/api/v1/runs", params={"cursor": "garbage!!"}), 400, "bad_cursor", "cursor")
    error(client.get("/api/v1/runs", params={"state": "sleepy"}), 422, "invalid_request", "state")
    error(client.get("/api/v1/runs", params={"limit": 0}), 422, "invalid_request", "limit")


def test_cancel_and_retry(client: httpx.Client, worker: Worker) -> None:
    failed = client.post("/api/v1/workflows/failing/runs", json={}).json()
    run = wait_final(client, failed["id"])
    assert run["state"] == "failed" and "kaboom" in run["error"]
    retried = client.post(f"/api/v1/runs/{run['id']}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "running"
    assert wait_final(client, run["id"])["state"] == "failed"
    queued = client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 1}}).json()
    client.post(f"/api/v1/runs/{queued['id']}/cancel")
    final = wait_final(client, queued["id"])
    if final["state"] == "canceled":
        error(client.post(f"/api/v1/runs/{queued['id']}/cancel"), 409, "conflict", "already")
    error(client.post("/api/v1/runs/nope/cancel"), 404, "not_found", "nope")
    ok = client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 1}}).json()
    assert wait_final(client, ok["id"])["state"] == "succeeded"
    error(client.post(f"/api/v1/runs/{ok['id']}/retry"), 409, "conflict", "succeeded")


def test_unknown_run_routes_are_404(client: httpx.Client) -> None:
    for path in ("", "/tasks", "/attempts", "/events", "/logs"):
        error(client.get(f"/api/v1/runs/nope{path}"), 404, "not_found", "nope")
    error(client.get("/api/v1/nowhere"), 404, "not_found", "Not Found")


def read_sse(
    client: httpx.Client,
    params: dict[str, Any],
    headers: dict[str, str],
    until: str,
    connected: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """Events from the stream until one of kind `until` arrives."""
    events: list[dict[str, Any]] = []
    with client.stream("GET", "/api/v1/stream", params=params, headers=headers) as response:
        assert response.status_code == 200
        if connected is not None:
            connected.set()  # headers arrived: the stream's starting point is fixed
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
                if events[-1]["kind"] == until:
                    break
    return events


def test_stream_is_live_and_resumable(client: httpx.Client, worker: Worker) -> None:
    run = client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 1}}).json()
    events = read_sse(client, {"run_id": run["id"]}, {}, "run.succeed")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run.created" and kinds[-1] == "run.succeed"
    assert kinds.count("task.succeed") == 2
    middle = events[len(events) // 2]["id"]
    resumed = read_sse(client, {"run_id": run["id"]}, {"Last-Event-ID": str(middle)}, "run.succeed")
    assert [e["id"] for e in resumed] == [e["id"] for e in events if e["id"] > middle]


def test_stream_pushes_new_events(client: httpx.Client, worker: Worker) -> None:
    """The global stream starts at "now" and delivers a run triggered after it opened."""
    got: list[dict[str, Any]] = []
    connected = threading.Event()

    def follow() -> None:
        got.extend(read_sse(client, {}, {}, "run.succeed", connected))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert connected.wait(10)
    client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 5}})
    thread.join(timeout=10)
    assert got and got[0]["kind"] == "run.created" and got[-1]["kind"] == "run.succeed"


def test_stream_bad_input(client: httpx.Client) -> None:
    error(client.get("/api/v1/stream", params={"run_id": "nope"}), 404, "not_found", "nope")
    error(
        client.get("/api/v1/stream", headers={"Last-Event-ID": "x1"}),
        422,
        "bad_parameters",
        "Last-Event-ID",
    )


EVENTFUL = WorkflowSpec.model_validate(
    {
        "name": "eventful",
        "params": {"n": {"type": "integer", "default": 0}},
        "schedules": [{"cron": "0 3 * * *", "timezone": "Europe/Paris"}],
        "triggers": [{"event": "orders.created", "params": {"n": "{{ event.payload.n }}"}}],
        "tasks": [
            {
                "name": "a",
                "action": {"kind": "python", "ref": "t:add"},
                "inputs": {"x": {"expr": "params.n"}},
            }
        ],
    }
)


def test_events_start_matching_workflows_once(app: App, client: httpx.Client) -> None:
    app.store.workflows.register_workflow(EVENTFUL, source=None, now=time.time())
    body = {"type": "orders.created", "payload": {"n": 4}, "id": "ev-1"}
    first = client.post("/api/v1/events", json=body)
    assert first.status_code == 202 and len(first.json()["run_ids"]) == 1
    again = client.post("/api/v1/events", json=body).json()
    assert again["duplicate"] is True and again["run_ids"] == first.json()["run_ids"]
    run = client.get(f"/api/v1/runs/{first.json()['run_ids'][0]}").json()
    assert run["params"] == {"n": 4}
    error(client.post("/api/v1/events", json={"type": "bad type!"}), 422, "invalid_request", "type")
    error(client.post("/api/v1/events", json={"payload": 1}), 422, "invalid_request", "type")


def test_schedules_and_backfills(app: App, client: httpx.Client) -> None:
    app.store.workflows.register_workflow(EVENTFUL, source=None, now=time.time())
    schedules = client.get("/api/v1/schedules").json()
    assert [s["workflow"] for s in schedules] == ["eventful"]
    assert schedules[0]["next_fire"] is not None
    plan = client.post(
        "/api/v1/backfills",
        json={"workflow": "eventful", "start": "2026-11-01", "end": "2026-11-03", "dry_run": True},
    )
    assert plan.status_code == 201 and plan.json()["total"] == 3
    made = client.post(
        "/api/v1/backfills",
        json={"workflow": "eventful", "start": "2026-11-01", "end": "2026-11-03"},
    )
    backfill_id = made.json()["id"]
    assert [b["id"] for b in client.get("/api/v1/backfills").json()] == [backfill_id]
    assert client.post(f"/api/v1/backfills/{backfill_id}/cancel").json()["state"] == "canceled"
    error(client.get("/api/v1/backfills/nope"), 404, "not_found", "nope")
    bad = client.post(
        "/api/v1/backfills",
        json={"workflow": "eventful", "start": "yesterday", "end": "2026-11-03"},
    )
    assert 400 <= bad.status_code < 500, bad.text
    bad = client.post(
        "/api/v1/backfills", json={"workflow": "nope", "start": "2026-11-01", "end": "2026-11-03"}
    )
    assert bad.status_code == 404


def test_webhooks_verify_signatures(
    app: App, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrion.triggers.webhooks import REFUSED, sign

    body = b'{"ref": "main"}'
    json_type = {"Content-Type": "application/json"}
    # Not configured: refused exactly like a bad signature (tests/integration/test_webhooks.py).
    error(client.post("/hooks/gh", content=body, headers=json_type), 401, "bad_signature", REFUSED)
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_GH_SECRET", "s3cr3t")
    headers = {
        **sign("github", b"s3cr3t", body, time.time()),
        **json_type,
        "X-GitHub-Delivery": "d1",
        "X-GitHub-Event": "push",
    }
    ok = client.post("/hooks/gh", content=body, headers=headers)
    assert ok.status_code == 202 and ok.json()["event_id"] == "d1"
    assert client.post("/hooks/gh", content=body, headers=headers).json()["duplicate"] is True
    error(
        client.post("/hooks/gh", content=body + b" ", headers=headers),
        401,
        "bad_signature",
        REFUSED,
    )
    error(client.post("/hooks/gh", content=body), 401, "bad_signature", REFUSED)
    big = b"x" * 20_000
    error(client.post("/hooks/gh", content=big, headers=headers), 413, "too_large", "limit")
    # One audit record per delivery that reached the handler, good or refused; the reason
    # of a refusal is there, for admins.
    records = app.accounts.list_audit(AuditFilter(action="webhook.receive"))
    assert [r.outcome for r in reversed(records)] == ["denied", "ok", "ok", "denied", "denied"]
    assert {r.actor for r in records} == {"webhook:gh"}
    assert records[-1].params == {"refused": "no webhook named 'gh' is configured"}
    assert records[-2].params == {
        "delivery_id": "d1",
        "event": "webhook.gh.push",
        "content_type": "application/json",
        "duplicate": False,
    }
    assert records[0].params == {"refused": "missing X-Hub-Signature-256 header"}


def test_rerun_from_a_task_reuses_upstream_results(client: httpx.Client, worker: Worker) -> None:
    first = client.post("/api/v1/workflows/adder/runs", json={"params": {"x": 1}}).json()
    assert wait_final(client, first["id"])["state"] == "succeeded"
    made = client.post(f"/api/v1/runs/{first['id']}/rerun", json={"from_task": "two"})
    assert made.status_code == 201, made.text
    new = wait_final(client, made.json()["id"])
    assert new["state"] == "succeeded" and new["result"] == {"two": 3}
    assert new["trigger"] == f"rerun:{first['id']}:two"
    attempts = client.get(f"/api/v1/runs/{new['id']}/attempts").json()
    tasks = {t["id"]: t["task"] for t in client.get(f"/api/v1/runs/{new['id']}/tasks").json()}
    assert [tasks[a["task_run_id"]] for a in attempts] == ["two"]  # "one" was carried over
    events = client.get(f"/api/v1/runs/{new['id']}/events").json()
    assert any(e["kind"] == "task.carry" for e in events)
    old_events = client.get(f"/api/v1/runs/{first['id']}/events").json()
    assert not any(e["kind"] == "task.carry" for e in old_events)  # the earlier run is unchanged
    error(
        client.post(f"/api/v1/runs/{first['id']}/rerun", json={"from_task": "zz"}),
        404,
        "not_found",
        "no task 'zz'",
    )
    error(
        client.post(f"/api/v1/runs/{first['id']}/rerun", json={}),
        422,
        "invalid_request",
        "from_task",
    )
    failed = client.post("/api/v1/workflows/failing/runs", json={}).json()
    wait_final(client, failed["id"])
    again = client.post(f"/api/v1/runs/{failed['id']}/rerun", json={"from_task": "b"})
    assert again.status_code == 201


RELEASE = threading.Event()


def hold() -> str:
    RELEASE.wait(10)
    return "done"


def test_workers_show_what_they_run(app: App, client: httpx.Client, worker: Worker) -> None:
    app.code.add({"t:hold": hold})
    spec = WorkflowSpec(
        name="holding", tasks=(TaskSpec(name="h", action=PythonAction(ref="t:hold")),)
    )
    app.store.workflows.register_workflow(spec, source=None, now=time.time())
    RELEASE.clear()
    run = client.post("/api/v1/workflows/holding/runs", json={}).json()
    deadline = time.monotonic() + 10
    running: list[Any] = []
    while not running and time.monotonic() < deadline:
        running = [t for w in client.get("/api/v1/workers").json() for t in w["running"]]
        time.sleep(0.02)
    RELEASE.set()
    assert [(t["run_id"], t["task"], t["attempt"]) for t in running] == [(run["id"], "h", 1)]
    assert wait_final(client, run["id"])["state"] == "succeeded"
    assert all(not w["running"] for w in client.get("/api/v1/workers").json())


def chatty(ctx: TaskContext) -> int:
    # ctx.log rather than print(): pytest swaps sys.stdout between test phases, which would
    # unhook the worker's print capture (real worker processes are covered by acceptance).
    for i in range(3):
        ctx.log(f"line {i}")
        time.sleep(0.3)
    return 3


def test_logs_stream_while_the_task_runs(app: App, client: httpx.Client, worker: Worker) -> None:
    app.code.add({"t:chatty": chatty})
    spec = WorkflowSpec(
        name="chat", tasks=(TaskSpec(name="c", action=PythonAction(ref="t:chatty")),)
    )
    app.store.workflows.register_workflow(spec, source=None, now=time.time())
    run = client.post("/api/v1/workflows/chat/runs", json={}).json()
    lines: list[tuple[str, str]] = []  # (line, run state when it arrived)
    with client.stream("GET", f"/api/v1/runs/{run['id']}/logs/stream") as response:
        assert response.status_code == 200
        event = ""
        for raw in response.iter_lines():
            if raw.startswith("event: "):
                event = raw[len("event: ") :]
            elif raw.startswith("data: ") and event == "log":
                state = client.get(f"/api/v1/runs/{run['id']}").json()["state"]
                lines.append((json.loads(raw[len("data: ") :])["line"], state))
            elif raw.startswith("data: ") and event == "end":
                break
    assert [text for text, _ in lines] == ["line 0", "line 1", "line 2"]
    assert lines[0][1] == "running"  # streamed live, not after the fact
    error(client.get("/api/v1/runs/nope/logs/stream"), 404, "not_found", "nope")


def test_mark_a_failed_task_succeeded_resumes_the_run(
    app: App, client: httpx.Client, worker: Worker
) -> None:
    spec = WorkflowSpec(
        name="markme",
        tasks=(
            TaskSpec(name="b", action=PythonAction(ref="t:boom")),
            TaskSpec(
                name="after",
                action=PythonAction(ref="t:add"),
                depends_on=("b",),
                inputs={"x": InputSpec(value=1)},
            ),
        ),
    )
    app.store.workflows.register_workflow(spec, source=None, now=time.time())
    run = client.post("/api/v1/workflows/markme/runs", json={}).json()
    failed = wait_final(client, run["id"])
    assert failed["state"] == "failed"
    states = {t["task"]: t["state"] for t in client.get(f"/api/v1/runs/{run['id']}/tasks").json()}
    assert states == {"b": "failed", "after": "upstream_failed"}
    marked = client.post(f"/api/v1/runs/{run['id']}/tasks/b/mark", json={"outcome": "succeeded"})
    assert marked.status_code == 200, marked.text
    final = wait_final(client, run["id"])
    assert final["state"] == "succeeded" and final["result"] == {"after": 2}
    kinds = [e["kind"] for e in client.get(f"/api/v1/runs/{run['id']}/events").json()]
    assert "task.mark_succeeded" in kinds and kinds[-1] == "run.succeed"
    error(
        client.post(f"/api/v1/runs/{run['id']}/tasks/b/mark", json={"outcome": "failed"}),
        409,
        "conflict",
        "cannot be marked failed",
    )
    error(
        client.post(f"/api/v1/runs/{run['id']}/tasks/zz/mark", json={"outcome": "failed"}),
        404,
        "not_found",
        "no task 'zz'",
    )
    error(
        client.post(f"/api/v1/runs/{run['id']}/tasks/b/mark", json={"outcome": "maybe"}),
        422,
        "invalid_request",
        "outcome",
    )


def test_mark_a_running_task_failed_fences_its_attempt(
    app: App, client: httpx.Client, worker: Worker
) -> None:
    app.code.add({"t:hold": hold})
    spec = WorkflowSpec(
        name="stuck", tasks=(TaskSpec(name="h", action=PythonAction(ref="t:hold")),)
    )
    app.store.workflows.register_workflow(spec, source=None, now=time.time())
    RELEASE.clear()
    run = client.post("/api/v1/workflows/stuck/runs", json={}).json()
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/runs/{run['id']}/tasks").json()[0]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.post(f"/api/v1/runs/{run['id']}/tasks/h/mark", json={"outcome": "failed"})
    RELEASE.set()
    final = wait_final(client, run["id"])
    assert final["state"] == "failed"
    time.sleep(0.3)  # the held attempt returns; its late result must not count
    attempts = client.get(f"/api/v1/runs/{run['id']}/attempts").json()
    assert [a["outcome"] for a in attempts] == ["superseded"]
    assert client.get(f"/api/v1/runs/{run['id']}").json()["state"] == "failed"
