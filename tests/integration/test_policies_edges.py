"""Admission policies at the edges (issue 19, part 1), on one server for the module: the
/api/v1/policies routes (admin to write, audited, bad documents a 422 naming the field),
a denied deploy (403 naming policy, rule, field and message), warnings in
``X-Policy-Findings``, a run held behind an approval gate and approved, ``orchestrion
policy`` locally, with ``--server`` and ``test``, and the UI's pages and trigger form.
SQLite, or PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.cli.main import main
from orchestrion.clock import FakeClock
from orchestrion.store.records import AuditFilter
from tests.helpers import ADMIN_PASSWORD, make_app, serve_api, session_cookie

EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"
#: A Thursday at 20:00 UTC: 21:00 in Berlin, outside the change window.
EVENING = datetime(2026, 12, 3, 20, 0, tzinfo=UTC).timestamp()


def _spec(name: str, namespace: str, **task: Any) -> dict[str, Any]:
    body = {"name": "load", "action": {"kind": "shell", "argv": ["true"]}, **task}
    return {"name": name, "namespace": namespace, "tasks": [body]}


class Server:
    def __init__(self, app: App, url: str, token: str) -> None:
        self.app, self.url, self.token = app, url, token
        self.client = httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("policies")
    with make_app(tmp, clock=FakeClock(EVENING)) as app, serve_api(app) as url:
        token, _ = app.accounts.create_token("tests", {"*": "admin"}, expires="never")
        app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
        for path in sorted((EXAMPLES / "policies").glob("*.yaml")):
            app.policies.apply_text(path.read_bytes(), source=str(path))
        server = Server(app, url, token)
        yield server
        server.client.close()


def test_api_writes_reads_refuses_and_audits(server: Server) -> None:
    client = server.client
    doc = {"policy": "api-made", "rules": [{"name": "r", "require": "true"}]}
    made = client.post("/api/v1/policies", json=doc)
    assert made.status_code == 200, made.text
    assert made.json()["version"] == 1 and "policy: api-made" in made.json()["yaml"]
    assert client.post("/api/v1/policies", json=doc).json()["version"] == 1  # unchanged
    doc["description"] = "now described"
    assert client.post("/api/v1/policies", json=doc).json()["version"] == 2
    names = [p["name"] for p in client.get("/api/v1/policies").json()]
    assert "api-made" in names and "prod-needs-retries" in names
    assert client.get("/api/v1/policies/api-made").json()["description"] == "now described"
    assert [h["version"] for h in client.get("/api/v1/policies/api-made/history").json()] == [
        2,
        1,
    ]
    bad = [
        ({"policy": "x", "rules": [{"name": "r", "require": "1", "effect": "ban"}]},
         "rules[0].effect", "unknown effect"),
        ({"policy": "x", "rules": [{"name": "r", "require": "task.("}]},
         "rules[0].require", "does not compile"),
        ({"policy": "x", "rules": "<script>"}, "rules", "at least one rule"),
    ]  # fmt: skip
    for body, field, says in bad:
        answer = client.post("/api/v1/policies", json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_policy" and field in error["message"]
        assert says in error["message"]
    assert client.get("/api/v1/policies/none").status_code == 404

    token, _ = server.app.accounts.create_token("op", {"prod": "admin"}, expires="never")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as op:
        assert op.get("/api/v1/policies").status_code == 200
        assert op.post("/api/v1/policies", json=doc).status_code == 403  # admin on prod only
        assert op.delete("/api/v1/policies/api-made").status_code == 403
    assert client.delete("/api/v1/policies/api-made").status_code == 204
    assert client.delete("/api/v1/policies/api-made").status_code == 404
    history = client.get("/api/v1/policies/api-made/history").json()
    assert (history[0]["version"], history[0]["deleted"]) == (3, True)
    actions = [r.action for r in server.app.accounts.list_audit(AuditFilter(limit=500))]
    assert actions.count("policy.put") >= 3 and "policy.delete" in actions


def test_deploy_denied_warned_and_a_held_run_approved(server: Server) -> None:
    client = server.client
    denied = client.post("/api/v1/workflows", json=_spec("etl", "prod"))
    assert denied.status_code == 403, denied.text
    error = denied.json()["error"]
    assert error["code"] == "policy_denied"
    assert error["message"].startswith(
        "policy prod-needs-retries denied: tasks.load.retries must be >= 1 [rule retries]"
    )
    first = error["findings"][0]
    assert {k: first[k] for k in ("policy", "rule", "effect", "field")} == {
        "policy": "prod-needs-retries", "rule": "retries", "effect": "deny",
        "field": "tasks.load.retries",
    }  # fmt: skip
    shell = client.post("/api/v1/workflows", json=_spec("close", "finance"))
    assert shell.status_code == 403 and "finance-no-shell" in shell.text

    image = {"action": {"kind": "container", "image": "docker.io/alpine:3"}}
    warned = client.post("/api/v1/workflows", json=_spec("thumbs", "dev", **image))
    assert warned.status_code == 201, warned.text
    (warning,) = json.loads(warned.headers["X-Policy-Findings"])
    assert (warning["policy"], warning["effect"]) == ("trusted-images", "warn")

    good = _spec("etl", "prod", retry={"retries": 2}, timeout=60)
    assert client.post("/api/v1/workflows", json=good).status_code == 201
    started = client.post("/api/v1/workflows/etl/runs", json={})
    assert started.status_code == 201, started.text
    (held,) = json.loads(started.headers["X-Policy-Findings"])
    assert (held["policy"], held["effect"]) == ("prod-change-window", "require_approval")
    run_id = started.json()["id"]
    (wait,) = client.get(f"/api/v1/runs/{run_id}/waits").json()
    assert wait["task"] == "policy-approval" and wait["details"]["role"] == "admin", wait
    token, _ = server.app.accounts.create_token("prod-op", {"prod": "operator"}, expires="never")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as op:
        refused = op.post(f"/api/v1/runs/{run_id}/tasks/policy-approval/approve", json={})
        assert refused.status_code == 403  # the gate asks for an admin
    approved = client.post(f"/api/v1/runs/{run_id}/tasks/policy-approval/approve", json={})
    assert approved.status_code == 200, approved.text
    states = {t["task"]: t["state"] for t in client.get(f"/api/v1/runs/{run_id}/tasks").json()}
    assert states == {"policy-approval": "succeeded", "load": "queued"}
    # The gate is the run's own version: the workflow's current version is unchanged.
    assert client.get("/api/v1/workflows/etl").json()["version"] != started.json()["version"]

    again = client.post("/api/v1/workflows/etl/runs", json={}).json()["id"]
    rejected = client.post(f"/api/v1/runs/{again}/tasks/policy-approval/reject", json={})
    assert rejected.status_code == 200
    assert client.get(f"/api/v1/runs/{again}").json()["state"] == "canceled"
    # The findings of an accepted request are on file with its audit record.
    triggers = server.app.accounts.list_audit(AuditFilter(limit=500))
    noted = [r for r in triggers if "policy_findings" in (r.params or {})]
    assert any("prod-change-window" in str(r.params) for r in noted)


def test_cli_locally_with_server_and_dry_run(server: Server, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ORCHESTRION_TOKEN": server.token}
    db = server.app.store.url

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    policies, workflows = EXAMPLES / "policies", EXAMPLES / "workflows"
    out = cli("policy", "apply", str(policies / "finance.yaml"), "--server", server.url)
    assert out == "policy finance-no-shell version 1\n"
    assert "finance-no-shell" in cli("policy", "list", "--server", server.url)
    assert "finance-no-shell" in cli("policy", "list", "--db", db)
    assert "require: task.kind != 'shell'" in cli("policy", "show", "finance-no-shell", "--db", db)
    shown = json.loads(
        cli("policy", "show", "prod-needs-retries", "-o", "json", "--server", server.url)
    )
    assert shown["version"] == 1
    denied = cli("deploy", str(workflows / "prod_etl.yaml"), "--server", server.url, code=2)
    assert "policy prod-needs-retries denied: tasks.load.retries must be >= 1" in denied
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: bad\nrules:\n  - {name: r, require: 'x', effect: maybe}\n")
    refused = cli("policy", "apply", str(bad), "--server", server.url, code=2)
    assert "rules[0].effect" in refused and "unknown effect 'maybe'" in refused
    dry = cli("policy", "test", str(policies), *map(str, workflows.glob("*.yaml")), code=1)
    assert "finance/month_end: deny: policy finance-no-shell denied" in dry
    assert "dev/thumbnails: warn: policy trusted-images warns" in dry
    ok = cli("policy", "test", str(policies / "finance.yaml"), str(workflows / "dev_images.yaml"))
    assert ok.strip().endswith("0 finding(s) from 1 policy")
    temp = tmp_path / "temp.yaml"
    temp.write_text("policy: temp\nrules:\n  - {name: r, require: 'true'}\n")
    cli("policy", "apply", str(temp), "--db", db)
    assert "temp deleted" in cli("policy", "delete", "temp", "--server", server.url)
    assert "deleted" in cli("policy", "history", "temp", "--db", db)


def test_ui_lists_policies_and_the_trigger_form_shows_a_denial(server: Server) -> None:
    app = server.app
    strict = {
        "policy": "ui-strict",
        "applies_to": {"namespaces": ["ui"], "on": ["trigger"]},
        "rules": [{"name": "never", "require": "false", "message": "<b>no</b> runs",
                   "field": "request"}],
    }  # fmt: skip
    app.policies.put(strict)
    app.workflows.register_spec(_spec("shown", "ui"), source="test")
    cookie = session_cookie(server.url)
    with httpx.Client(base_url=server.url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get("/policies")
        assert page.status_code == 200 and "ui-strict" in page.text
        assert "prod-change-window" in page.text and "require_approval" in page.text
        one = browser.get("/policies/ui-strict")
        assert one.status_code == 200 and 'id="policy-yaml"' in one.text
        assert "&lt;b&gt;no&lt;/b&gt; runs" in one.text  # hostile text shown as text
        form = browser.get("/workflows/shown/trigger")
        assert 'id="policy-notes"' in form.text and "[rule never]" in form.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        sent = browser.post(
            "/workflows/shown/trigger",
            data={"csrf_token": token.group(1)},
            headers={"Origin": server.url},
        )
        assert sent.status_code == 403
        assert (
            "policy ui-strict denied: request &lt;b&gt;no&lt;/b&gt; runs [rule never]" in sent.text
        )
    app.policies.delete("ui-strict")


def test_scheduled_and_event_runs_are_admitted_too(server: Server, tmp_path: Path) -> None:
    app = server.app
    app.policies.put(
        {
            "policy": "sched-rules",
            "applies_to": {"namespaces": ["sched"], "on": ["trigger"]},
            "rules": [
                {"name": "no-cron", "require": "request.trigger not in ['schedule', 'backfill']",
                 "message": "no scheduled runs here"},
                {"name": "events-held", "when": "startswith(request.trigger, 'event')",
                 "require": "false", "effect": "require_approval"},
            ],
        }
    )  # fmt: skip
    path = tmp_path / "sched.yaml"
    path.write_text(
        "name: ticker\nnamespace: sched\nschedule: {every: 1h}\n"
        "triggers:\n  - {event: ticker.go}\ntasks:\n  a:\n    shell: [echo, hi]\n"
    )
    app.workflows.load(path)
    scheduler = app.runtime.scheduler(use_leases=False)
    clock = app.clock
    assert isinstance(clock, FakeClock)
    clock.advance(2 * 3600)
    scheduler.tick()
    fires = app.store.triggers.list_fires()
    assert fires and all(f.state == "failed" and f.run_id is None for f in fires), fires
    assert "policy sched-rules denied: no scheduled runs here [rule no-cron]" in str(fires[0].error)
    (run_id,) = app.triggers.send_event("ticker.go", {}, event_id="go-1")
    (wait,) = app.waits.pending(run_id)
    assert wait.task == "policy-approval"
    backfill = app.triggers.create_backfill("ticker", "2026-11-01", "2026-11-02")
    assert scheduler.tick().backfill_runs == []
    assert app.triggers.get_backfill(backfill.id).state == "canceled"
    app.policies.delete("sched-rules")


def test_a_map_is_admitted_when_its_width_is_known(tmp_path: Path) -> None:
    with make_app(tmp_path) as app:
        app.policies.put(
            {
                "policy": "small-maps",
                "applies_to": {"on": ["deploy", "trigger", "task"]},
                "rules": [
                    {"name": "width", "for_each": "tasks", "when": "task.map_width != null",
                     "require": "task.map_width <= 3", "message": "at most 3 items",
                     "field": "tasks.{task.name}.map"},
                    {"name": "note", "for_each": "tasks", "when": "task.mapped",
                     "require": "request.on != 'task'", "effect": "warn", "message": "mapped"},
                ],
            }
        )  # fmt: skip
        path = tmp_path / "fan.yaml"
        path.write_text(
            "name: fan\nparams:\n  n: {type: integer, default: 4}\ntasks:\n"
            "  make:\n    shell:\n      argv: [python3, -c, 'import json,sys;"
            " print(json.dumps(list(range(int(sys.argv[1])))))', '{{ params.n }}']\n"
            "      json_output: true\n"
            "  each:\n    map: tasks.make\n    shell: [echo, '{{ item }}']\n"
        )
        app.workflows.load(path)  # the width is unknown at deploy: admitted
        wide = app.runtime.run_until_done(app.runs.trigger("fan").id, every=0.01)
        assert wide.state.value == "failed"
        group = next(t for t in app.runs.task_runs(wide.id) if t.task_name == "each")
        assert group.state.value == "failed"
        assert "policy small-maps denied: tasks.each.map at most 3 items" in str(group.error)
        narrow = app.runtime.run_until_done(app.runs.trigger("fan", {"n": 3}).id, every=0.01)
        assert narrow.state.value == "succeeded"
        kinds = [e.kind for e in app.runs.events(narrow.id)]
        assert "policy.warned" in kinds


def test_the_python_client(server: Server) -> None:
    from orchestrion.client import Client
    from orchestrion.errors import ClientError

    with Client(server.url, server.token) as api:
        made = api.put_policy({"policy": "client-made", "rules": [{"name": "r", "require": "1"}]})
        assert made["version"] == 1
        assert "client-made" in [p["name"] for p in api.policies()]
        try:
            api.deploy(_spec("client_etl", "prod"))
        except ClientError as exc:
            assert (exc.status, exc.code) == (403, "policy_denied")
            assert exc.detail["findings"][0]["policy"] == "prod-needs-retries"
        else:
            raise AssertionError("the deploy was not denied")
        image = {"action": {"kind": "container", "image": "docker.io/alpine:3"}}
        api.deploy(_spec("client_thumbs", "dev", **image))
        assert [f["policy"] for f in api.policy_findings] == ["trusted-images"]
        api.delete_policy("client-made")
