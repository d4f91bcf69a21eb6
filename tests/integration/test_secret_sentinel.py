"""Secret sentinels end to end: a real database, the real worker, the real API.

Secrets with unique sentinel values are set through the API and used by tasks that print,
log, return and raise them, and by a shell task that echoes its environment variable.
Afterwards no sentinel may appear in the database file's bytes (main file and WAL; on
PostgreSQL every row of the test's schema), the
captured logs, any API response, or any error or traceback; the tasks' own reports prove
that each value did reach the task (by its length and a hash).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.worker.context import TaskContext
from tests.helpers import (
    ADMIN_PASSWORD,
    admin_client,
    database_url_for,
    serve_api,
    session_cookie,
    stored_bytes,
)

CORE = {name: f"SENTINEL{secrets.token_hex(8).upper()}" for name in ("token", "pem", "odd")}
VALUES = {
    "token": CORE["token"],
    # A multi-line value: masked line by line too, as logs arrive line by line.
    "pem": f"-----BEGIN KEY-----\n{CORE['pem']}a\n{CORE['pem']}b\n-----END KEY-----",
    # Characters that JSON and URLs escape: every escaped form is masked.
    "odd": f'q"uote\\slash {CORE["odd"]} é/&?=',
}


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def use_all(ctx: TaskContext) -> dict[str, Any]:
    token, pem, odd = ctx.secret("token"), ctx.secret("pem"), ctx.secret("odd")
    print(f"printing the token: {token}")
    print(pem)
    print(f"odd one: {odd}")
    logging.getLogger("user.code").warning("logging the token %s", token)
    ctx.log(f"ctx.log {odd!r} {pem!r}")
    return {
        "token": token,
        "nested": [{"pem": pem}, odd],
        token: "as a key",
        "proof": {name: digest(ctx.secret(name)) for name in ("token", "pem", "odd")},
    }


def raise_it(ctx: TaskContext) -> None:
    token = ctx.secret("token")
    raise ValueError(f"could not log in with {token!r} / {ctx.secret('odd')}")


def undeclared(ctx: TaskContext) -> str:
    return ctx.secret("token")  # declared nothing: refused


WORKFLOW = """
name: sentinel
namespace: finance
tasks:
  python_uses:
    python: tests.integration.test_secret_sentinel:use_all
    secrets: {TOKEN: token, PEM: pem, ODD: odd}
  python_raises:
    python: tests.integration.test_secret_sentinel:raise_it
    secrets: {TOKEN: token, ODD: odd}
  python_undeclared:
    python: tests.integration.test_secret_sentinel:undeclared
  shell_echoes:
    shell:
      script: |
        echo "token=$TOKEN length=${#TOKEN}"
        echo "$TOKEN" >&2
        printf '%s' "$ODD" | sha256sum | cut -c1-64
        echo "$TOKEN"
    secrets: {TOKEN: token, ODD: odd}
  shell_fails:
    shell:
      script: 'echo "fatal: $TOKEN" >&2; exit 3'
    secrets: {TOKEN: token}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    ring = KeyRing([MasterKey("test", os.urandom(32))])
    settings = Settings(database_url=database_url_for(tmp_path / "sentinel.db"), key_ring=ring)
    with App(settings) as app:
        yield app


@pytest.fixture
def api(app: App) -> Iterator[httpx.Client]:
    """A real server on a loopback port, and an admin's client."""
    with serve_api(app) as url, admin_client(app, url) as client:
        yield client


def test_sentinels_never_leave_the_worker(app: App, api: httpx.Client, tmp_path: Path) -> None:
    responses: list[str] = []
    for name, value in VALUES.items():
        put = api.put(f"/api/v1/secrets/finance/{name}", json={"value": value})
        assert put.status_code == 201, put.text
        responses.append(put.text)

    spec = load_yaml_text(WORKFLOW)
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    run = app.runs.trigger("sentinel", {})
    done = app.runtime.run_until_done(run.id, concurrency=4)
    assert done.state.value == "failed"

    tasks = {t.task_name: t for t in app.runs.task_runs(run.id)}
    # The values reached the tasks: the Python task proves it with hashes, the shell
    # task with a length and a hash, all of which survive masking.
    result = tasks["python_uses"].result
    assert result["proof"] == {name: digest(value) for name, value in VALUES.items()}
    assert result["token"] == "***" and "***" in result
    assert tasks["shell_echoes"].state.value == "succeeded"
    assert tasks["shell_echoes"].result == "***"
    assert tasks["python_raises"].state.value == "failed"
    assert tasks["shell_fails"].state.value == "failed"
    assert tasks["python_undeclared"].state.value == "failed"

    logs = "\n".join(f"{line.stream} {line.line}" for line in app.runs.logs(run.id))
    assert f"length={len(VALUES['token'])}" in logs
    assert digest(VALUES["odd"]) in logs
    assert "printing the token: ***" in logs
    assert "logging the token ***" in logs
    assert "did not declare the secret 'token'" in _errors(app, run.id)

    paths = (
        f"/api/v1/runs/{run.id}",
        f"/api/v1/runs/{run.id}/tasks",
        f"/api/v1/runs/{run.id}/attempts",
        f"/api/v1/runs/{run.id}/events",
        f"/api/v1/runs/{run.id}/logs",
        f"/api/v1/runs/{run.id}/logs/stream",
        "/api/v1/runs",
        "/api/v1/events",
        "/api/v1/secrets",
        "/api/v1/secrets?namespace=finance",
        "/api/v1/workflows/sentinel",
        "/api/v1/audit",
        "/api/v1/me",
    )
    for path in paths:
        response = api.get(path)
        assert response.status_code == 200, (path, response.text)
        responses.append(response.text)
    # Every role sees what it may, and none of it holds a value.
    for role in ("viewer", "operator", "editor", "admin"):
        token, _ = app.accounts.create_token(role, {"finance": role}, expires="never")
        for path in paths:
            answer = api.get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code in (200, 403), (role, path, answer.text)
            responses.append(answer.text)
    # The UI, signed in, and its error pages.
    app.accounts.create_user("sentinel-admin", ADMIN_PASSWORD, {"*": "admin"})
    ui = httpx.Client(base_url=str(api.base_url), timeout=30)
    ui.cookies.set("orchestrion_session", session_cookie(str(api.base_url), "sentinel-admin"))
    with ui:
        for page in (
            f"/runs/{run.id}",
            *(f"/runs/{run.id}?task={name}" for name in tasks),
            *(f"/runs/{run.id}/fragments/panel?task={name}" for name in tasks),
            f"/runs/{run.id}/fragments/timeline",
            "/runs",
            "/events",
            "/audit",
            "/workflows/sentinel",
            "/runs/nope",
        ):
            answer = ui.get(page)
            assert answer.status_code in (200, 404), (page, answer.status_code)
            responses.append(answer.text)

    texts = {"logs": logs, "errors": _errors(app, run.id), "api": "\n".join(responses)}
    for where, text in texts.items():
        for name, core in CORE.items():
            assert core not in text, f"secret {name!r} leaked into {where}"

    app.close()
    data = stored_bytes(tmp_path / "sentinel.db")
    for name, core in CORE.items():
        assert core.encode() not in data, f"secret {name!r} is in the database"
        assert core.encode("utf-16-le") not in data


def _errors(app: App, run_id: str) -> str:
    attempts = app.runs.attempts(run_id)
    parts = [a.error or "" for a in attempts] + [
        getattr(a, "traceback", "") or "" for a in attempts
    ]
    return "\n".join([*parts, app.runs.get_run(run_id).error or ""])


def test_a_missing_secret_fails_the_task_with_its_name(app: App) -> None:
    spec = load_yaml_text(
        "name: missing\nnamespace: ops\ntasks:\n  t:\n    shell: ['true']\n"
        "    secrets: {X: nowhere}\n"
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    run = app.runtime.run_until_done(app.runs.trigger("missing", {}).id)
    assert run.state.value == "failed"
    (attempt,) = app.runs.attempts(run.id)
    assert "secret ops/nowhere does not exist" in (attempt.error or "")


def test_secrets_are_scoped_to_the_workflow_namespace(app: App) -> None:
    app.secrets.set_secret("other", "token", "belongs-to-other")
    spec = load_yaml_text(
        "name: scoped\nnamespace: mine\ntasks:\n  t:\n    shell: ['true']\n"
        "    secrets: {X: token}\n"
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    run = app.runtime.run_until_done(app.runs.trigger("scoped", {}).id)
    assert run.state.value == "failed"
    assert "secret mine/token does not exist" in (app.runs.attempts(run.id)[0].error or "")


def test_without_a_key_ring_tasks_with_secrets_fail_clearly(tmp_path: Path) -> None:
    with App(Settings(database_url=database_url_for(tmp_path / "nokey.db"))) as app:
        spec = load_yaml_text(
            "name: nokey\ntasks:\n  t:\n    shell: ['true']\n    secrets: {X: token}\n"
        )
        app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
        run = app.runtime.run_until_done(app.runs.trigger("nokey", {}).id)
        assert run.state.value == "failed"
        assert "without a master key" in (app.runs.attempts(run.id)[0].error or "")
