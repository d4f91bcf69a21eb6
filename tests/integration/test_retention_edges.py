"""Retention at the edges (issue 16, part 4): the /api/v1/retention routes and the keep
route (authorised, audited, bad input a clear 4xx), ``orchestrion retention`` and ``runs
prune/keep`` locally and with ``--server``, and the UI's policies page and keep button.
SQLite, or PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.cli.main import main
from orchestrion.store.records import AuditFilter
from orchestrion.triggers.retention import DAY
from tests.helpers import ADMIN_PASSWORD, admin_client, make_app, serve_api, session_cookie
from tests.retention_fill import Db, fill


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with make_app(tmp_path) as app:
        yield app


@pytest.fixture
def api(app: App) -> Iterator[tuple[httpx.Client, str]]:
    with serve_api(app) as url, admin_client(app, url) as client:
        yield client, url


def _runs(app: App, tmp_path: Path, n: int = 5) -> list[str]:
    path = tmp_path / "w.yaml"
    path.write_text("name: bulk\nnamespace: shop\ntasks:\n  a:\n    shell: [echo, hi]\n")
    (spec,) = app.workflows.load(path)
    db = Db(app.settings.database_url)
    try:
        return fill(db, workflow="bulk", version=spec.version, n=n,
                    start=time.time() - 40 * DAY, step=1, tag="x")  # fmt: skip
    finally:
        db.close()


def test_api_routes_authorise_audit_and_refuse_bad_input(
    api: tuple[httpx.Client, str], app: App, tmp_path: Path
) -> None:
    client, url = api
    runs = _runs(app, tmp_path)
    body = {"runs_days": 30, "logs_days": 7, "keep_last": 2}
    made = client.put("/api/v1/retention/shop", json=body)
    assert made.status_code == 201, made.text
    assert made.json() == {"namespace": "shop", "created": True}
    assert client.put("/api/v1/retention/shop", json=body).status_code == 200
    (listed,) = client.get("/api/v1/retention").json()
    assert (listed["namespace"], listed["runs_days"], listed["keep_last"]) == ("shop", 30, 2)
    assert client.get("/api/v1/retention/shop").json()["logs_days"] == 7
    bad = [
        client.put("/api/v1/retention/shop", json={"runs_days": -1}),
        client.put("/api/v1/retention/shop", json={"audit_days": 5}),
        client.put("/api/v1/retention/shop", json={"audit_days": 5, "audit_export_dir": "rel"}),
        client.put("/api/v1/retention/Bad%20NS", json=body),
        client.put("/api/v1/retention/shop", json={"nope": 1}),
        client.put("/api/v1/retention/shop", json={}),
        client.post("/api/v1/retention/prune", json={"older_than": 0}),
        client.post("/api/v1/retention/prune", json={"older_than": 1, "namespace": "Bad NS"}),
        client.put(f"/api/v1/runs/{runs[0]}/keep", json={"keep": "maybe"}),
    ]
    assert [r.status_code for r in bad] == [422] * len(bad), [r.text for r in bad]
    assert "export folder" in bad[1].text
    assert client.get("/api/v1/retention/none").status_code == 404
    assert client.put("/api/v1/runs/nope/keep", json={"keep": True}).status_code == 404

    kept = client.put(f"/api/v1/runs/{runs[0]}/keep", json={"keep": True})
    assert kept.status_code == 200 and kept.json()["keep"] is True
    dry = client.post("/api/v1/retention/prune", json={"older_than": 30 * DAY, "dry_run": True})
    assert dry.json()["counts"]["runs"] == 4 and dry.json()["dry_run"] is True
    prune = {"older_than": 30 * DAY, "keep_last": 1, "namespace": "shop"}
    done = client.post("/api/v1/retention/prune", json=prune)
    assert done.status_code == 200 and done.json()["counts"]["runs"] == 3, done.text
    assert done.json()["workflows"] == ["bulk"]

    # An operator of the namespace may keep its runs, never change policies or prune.
    token, _ = app.accounts.create_token("op", {"shop": "operator"}, expires="never")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as op:
        assert op.put(f"/api/v1/runs/{runs[0]}/keep", json={"keep": False}).status_code == 200
        assert op.put("/api/v1/retention/shop", json=body).status_code == 403
        assert op.post("/api/v1/retention/prune", json={"older_than": 1}).status_code == 403
        assert op.get("/api/v1/retention").status_code == 403
    with httpx.Client(base_url=url) as anonymous:
        assert anonymous.get("/api/v1/retention").status_code == 401
    assert client.delete("/api/v1/retention/shop").status_code == 204
    assert client.delete("/api/v1/retention/shop").status_code == 404
    actions = {r.action for r in app.accounts.list_audit(AuditFilter(limit=500))}
    assert {"retention.set", "retention.clear", "runs.prune", "run.keep"} <= actions


def test_cli_locally_and_with_server(
    api: tuple[httpx.Client, str], app: App, tmp_path: Path
) -> None:
    _, url = api
    runs = _runs(app, tmp_path)
    runner = CliRunner()
    db = app.store.url

    def cli(*args: str, env: dict[str, str] | None = None) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    out = cli("retention", "set", "*", "--runs-days", "30", "--keep-last", "1", "--db", db)
    assert out.strip() == "created the retention policy of *"
    shown = json.loads(cli("retention", "show", "*", "-o", "json", "--db", db))
    assert (shown["runs_days"], shown["keep_last"], shown["logs_days"]) == (30.0, 1, None)
    assert cli("runs", "keep", runs[0][:14], "--db", db).strip() == f"run {runs[0]} kept"
    dry = cli("runs", "prune", "--older-than", "30d", "--dry-run", "--db", db)
    assert dry.startswith("would prune 4 runs (4 task runs, 4 attempts, 8 events, 8 logs)")
    assert "8 logs" in dry
    refused = runner.invoke(main, ["runs", "prune", "--older-than", "soon", "--db", db])
    assert refused.exit_code == 2 and "--older-than" in refused.output

    token, _ = app.accounts.create_token("cli", {"*": "admin"}, expires="never")
    env = {"ORCHESTRION_TOKEN": token}
    remote = json.loads(
        cli(
            "runs",
            "prune",
            "--older-than",
            "30d",
            "--keep-last",
            "2",
            "-o",
            "json",
            "--server",
            url,
            env=env,
        )
    )
    assert remote == {"dry_run": False, "counts": {**remote["counts"], "runs": 2}}
    assert "unkept" not in cli("runs", "unkeep", runs[0], "--server", url, env=env)
    assert app.runs.get_run(runs[0]).keep is False
    table = cli("retention", "show", "--server", url, env=env)
    assert "30.0" in table and "*" in table
    assert "cleared" in cli("retention", "clear", "*", "--server", url, env=env)
    assert app.retention.list_policies() == []


def test_ui_policies_page_and_keep_button(
    api: tuple[httpx.Client, str], app: App, tmp_path: Path
) -> None:
    _, url = api
    runs = _runs(app, tmp_path, n=1)
    app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
    cookie = session_cookie(url)
    headers = {"Origin": url}
    with httpx.Client(base_url=url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get(f"/runs/{runs[0]}")
        assert page.status_code == 200 and "☆ Keep" in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"csrf_token": token.group(1)}
        kept = browser.post(f"/runs/{runs[0]}/keep", data={**form, "keep": "1"}, headers=headers)
        assert kept.status_code == 303, kept.text
        assert app.runs.get_run(runs[0]).keep is True
        assert "★ Kept" in browser.get(f"/runs/{runs[0]}").text
        saved = browser.post(
            "/retention",
            data={
                **form,
                "namespace": "shop",
                "runs_days": "30",
                "logs_days": "",
                "keep_last": "3",
            },
            headers=headers,
        )
        assert saved.status_code == 303, saved.text
        policies = browser.get("/retention")
        assert policies.status_code == 200 and "shop" in policies.text
        assert 'id="retention-form"' in policies.text
        bad = browser.post("/retention", data={**form, "namespace": "shop", "runs_days": "x"},
                           headers=headers)  # fmt: skip
        assert bad.status_code == 400 and "runs days must be a number" in bad.text
        cleared = browser.post("/retention/shop/clear", data=form, headers=headers)
        assert cleared.status_code == 303
    assert app.retention.list_policies() == []
