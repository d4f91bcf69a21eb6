"""Task kinds and database connections at the edges (issue 15): the connections API, the
CLI (locally and with ``--server``) and the UI take the database kinds and refuse a bad
one with a 4xx naming the problem; a workflow with sql and plugin tasks registers through
the API and shows each task's kind by its name on the workflow page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.cli.main import main
from orchestrion.spec.yaml.loader import load_yaml_text
from tests.helpers import ADMIN_PASSWORD, admin_client, database_url_for, serve_api, session_cookie

FLOW = """
name: kinds_flow
namespace: shop
params: {day: {type: string}}
tasks:
  load:
    sql: {connection: warehouse, query: "delete from sales where day = :day",
          params: {day: "{{ params.day }}"}}
  hello:
    example-greet: {who: "{{ tasks.load }}"}
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[App, str, httpx.Client]]:
    settings = Settings(database_url=database_url_for(tmp_path / "k.db"))
    with App(settings).open() as app, serve_api(app) as url, admin_client(app, url) as client:
        yield app, url, client


def test_api_and_cli_take_database_connections(served: tuple[App, str, httpx.Client]) -> None:
    app, url, client = served
    body = {"kind": "postgres", "url": "postgresql://db:5432/dw", "username": "etl",
            "password_secret": "wh-pass"}  # fmt: skip
    made = client.put("/api/v1/connections/shop/warehouse", json=body)
    assert made.status_code == 201, made.text
    assert client.get("/api/v1/connections/shop/warehouse").json()["kind"] == "postgres"
    refused = {
        "sqlite without a file": {"kind": "sqlite", "url": "sqlite://"},
        "password in URL": {**body, "url": "postgresql://etl:pw@db/dw"},
        "wrong scheme": {**body, "kind": "mysql"},
    }
    for why, bad in refused.items():
        answer = client.put("/api/v1/connections/shop/bad", json=bad)
        assert 400 <= answer.status_code < 500, (why, answer.text)
        assert answer.json()["error"]["message"], (why, answer.text)
    token = client.headers["Authorization"].removeprefix("Bearer ")
    runner = CliRunner(env={"ORCHESTRION_TOKEN": token})
    made_cli = runner.invoke(
        main,
        ["connections", "create", "shop/local", "--kind", "sqlite", "--url",
         "sqlite:///data/local.db", "--server", url],
    )  # fmt: skip
    assert made_cli.exit_code == 0, made_cli.output
    listed = runner.invoke(main, ["connections", "list", "--server", url, "-o", "json"])
    kinds = {r["name"]: r["kind"] for r in json.loads(listed.output)}
    assert kinds == {"local": "sqlite", "warehouse": "postgres"}
    local = runner.invoke(
        main,
        ["connections", "create", "shop/maria", "--kind", "mysql", "--url",
         "mariadb://127.0.0.1:3306/test", "--username", "root", "--db", app.store.url],
    )  # fmt: skip
    assert local.exit_code == 0, local.output


def test_kind_tasks_register_and_show_by_kind(served: tuple[App, str, httpx.Client]) -> None:
    app, url, client = served
    spec = load_yaml_text(FLOW)
    posted = client.post("/api/v1/workflows", json=json.loads(spec.to_json()))
    assert posted.status_code in (200, 201), posted.text
    stored = client.get("/api/v1/workflows/kinds_flow").json()
    actions = [t["action"] for t in stored["spec"]["tasks"]]
    assert [(a["kind"], a["plugin"]) for a in actions] == [
        ("plugin", "sql"),
        ("plugin", "example-greet"),
    ]
    app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
    cookie = session_cookie(url)
    with httpx.Client(base_url=url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get("/workflows/kinds_flow")
    assert page.status_code == 200
    assert "<td>sql</td>" in page.text and "<td>example-greet</td>" in page.text


def test_a_worker_without_the_kind_fails_the_attempt_saying_so(tmp_path: Path) -> None:
    """A spec stored by a process that had a plugin, run by a worker that has not."""
    from orchestrion.spec.model import PluginAction, TaskSpec, WorkflowSpec

    spec = WorkflowSpec(
        name="missing_kind",
        tasks=(TaskSpec(name="t", action=PluginAction(plugin="not-installed", options={})),),
    )
    with App(Settings(database_url=database_url_for(tmp_path / "m.db"))).open() as app:
        app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
        run = app.runs.trigger("missing_kind")
        done = app.runtime.run_until_done(run.id, concurrency=1)
        (task,) = app.runs.task_runs(run.id)
    assert done.state.value == "failed"
    assert task.error is not None
    assert "this worker cannot run the task: unknown task kind 'not-installed'" in task.error
