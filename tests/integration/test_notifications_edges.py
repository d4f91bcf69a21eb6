"""Notifications at the edges: the /api/v1/notifications routes (authorised, audited, no
secret in any answer), ``orchestrion notifications`` locally and with ``--server``, and
the UI page, over a real database and a real webhook receiver on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.auth.ssrf import AllowList
from orchestrion.cli.main import main
from orchestrion.store.records import AuditFilter
from tests.helpers import ADMIN_PASSWORD, admin_client, make_app, serve_api, session_cookie
from tests.integration.test_notifications import HOOK_KEY, _Hook, _verify

KEY = MasterKey("k", os.urandom(32))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path, key_ring=KeyRing([KEY]), http_allow=AllowList.parse(["127.0.0.1/32"]))
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def api(app: App) -> Iterator[tuple[httpx.Client, str]]:
    with serve_api(app) as url, admin_client(app, url) as client:
        yield client, url


@pytest.fixture
def hook() -> Iterator[_Hook]:
    receiver = _Hook()
    try:
        yield receiver
    finally:
        receiver.close()


def test_api_manages_tests_and_lists(api: tuple[httpx.Client, str], app: App, hook: _Hook) -> None:
    client, url = api
    app.secrets.set_secret("shop", "hook-key", HOOK_KEY)
    channel = {"kind": "webhook", "config": {"url": hook.url}, "secret": "hook-key"}
    made = client.put("/api/v1/notifications/channels/shop/hook", json=channel)
    assert made.status_code == 201, made.text
    assert client.put("/api/v1/notifications/channels/shop/hook", json=channel).status_code == 200
    bad = client.put("/api/v1/notifications/channels/shop/x", json={"kind": "webhook"})
    assert bad.status_code == 422 and "needs url" in bad.text
    rule = {"channel": "hook", "events": ["run.failed", "run.late"], "workflows": "etl-*"}
    assert client.put("/api/v1/notifications/rules/shop/r1", json=rule).status_code == 201
    unknown = client.put("/api/v1/notifications/rules/shop/r2", json={**rule, "channel": "no"})
    assert unknown.status_code == 404
    [listed] = client.get("/api/v1/notifications/channels").json()
    assert listed["secret"] == "hook-key" and listed["config"] == {"url": hook.url}
    [r1] = client.get("/api/v1/notifications/rules", params={"namespace": "shop"}).json()
    assert (r1["events"], r1["workflows"]) == (["run.failed", "run.late"], "etl-*")
    # A test send, signed with the channel's key, which no answer ever shows.
    sent = client.post("/api/v1/notifications/channels/shop/hook/test", json={"text": "hi"})
    assert sent.status_code == 204, sent.text
    [(headers, body)] = hook.received
    assert _verify(headers, body, HOOK_KEY) and json.loads(body)["message"] == "hi"
    assert client.get("/api/v1/notifications/deliveries").json() == []
    # A receiver that refuses: a 4xx naming it, not a 5xx.
    hook.plan = [500]
    refused = client.post("/api/v1/notifications/channels/shop/hook/test", json={})
    assert refused.status_code == 400 and "answered 500" in refused.text
    # Viewers read, only admins manage.
    token, _ = app.accounts.create_token("viewer", {"shop": "viewer"}, expires="never")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as viewer:
        assert viewer.get("/api/v1/notifications/channels").status_code == 200
        put = viewer.put("/api/v1/notifications/channels/shop/v", json=channel)
        assert put.status_code == 403
        test = viewer.post("/api/v1/notifications/channels/shop/hook/test", json={})
        assert test.status_code == 403
    assert client.delete("/api/v1/notifications/rules/shop/r1").status_code == 204
    assert client.delete("/api/v1/notifications/channels/shop/hook").status_code == 204
    assert client.delete("/api/v1/notifications/channels/shop/hook").status_code == 404
    actions = {r.action for r in app.accounts.list_audit(AuditFilter(namespace="shop"))}
    assert {
        "notification.channel.put", "notification.rule.put", "notification.channel.test",
        "notification.rule.delete", "notification.channel.delete",
    } <= actions  # fmt: skip
    everything = json.dumps(
        [app.accounts.list_audit(AuditFilter()), client.get("/api/v1/notifications/channels").text],
        default=repr,
    )
    assert HOOK_KEY not in everything


def test_cli_locally_and_with_server(api: tuple[httpx.Client, str], app: App, hook: _Hook) -> None:
    _, url = api
    runner = CliRunner()
    db = app.store.url
    made = runner.invoke(
        main,
        ["notifications", "channels", "add", "ops/mail", "--kind", "smtp", "--host",
         "127.0.0.1", "--port", "2525", "--to", "a@example.com", "--to", "b@example.com",
         "--db", db],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert made.output.strip() == "created channel ops/mail"
    [local_audit] = app.accounts.list_audit(AuditFilter(action="notification.channel.put"))
    assert local_audit.actor.startswith("cli:") and local_audit.outcome == "ok"
    listed = json.loads(
        runner.invoke(main, ["notifications", "channels", "list", "--db", db, "-o", "json"]).output
    )
    assert listed[0]["config"]["to"] == ["a@example.com", "b@example.com"]
    rule = runner.invoke(
        main,
        ["notifications", "rules", "add", "ops/late", "--channel", "mail", "--on", "run.late",
         "--tag", "nightly", "--db", db],
    )  # fmt: skip
    assert rule.exit_code == 0, rule.output
    refused = runner.invoke(
        main, ["notifications", "channels", "add", "ops/x", "--kind", "webhook", "--db", db]
    )
    assert refused.exit_code != 0 and "needs url" in refused.output

    token, _ = app.accounts.create_token("cli", {"*": "admin"}, expires="never")
    env = {"ORCHESTRION_TOKEN": token}
    remote = runner.invoke(
        main,
        ["notifications", "channels", "add", "ops/hook", "--kind", "webhook", "--url", hook.url,
         "--server", url],
        env=env,
    )  # fmt: skip
    assert remote.exit_code == 0, remote.output
    tested = runner.invoke(
        main, ["notifications", "channels", "test", "ops/hook", "--server", url], env=env
    )
    assert tested.exit_code == 0, tested.output
    assert len(hook.received) == 1
    local_test = ["notifications", "channels", "test", "ops/hook", "--db", db]
    refused = runner.invoke(main, local_test)  # this process allows no loopback
    assert refused.exit_code != 0 and "non-public address" in refused.output
    local = runner.invoke(main, local_test, env={"ORCHESTRION_HTTP_ALLOW": "127.0.0.1/32"})
    assert local.exit_code == 0 and len(hook.received) == 2, local.output
    table = runner.invoke(main, ["notifications", "rules", "list", "--server", url], env=env)
    assert "late" in table.output and "run.late" in table.output
    for where in (["--db", db], ["--server", url]):
        shown = runner.invoke(main, ["notifications", "deliveries", "list", *where], env=env)
        assert shown.exit_code == 0, shown.output
    gone = runner.invoke(
        main, ["notifications", "rules", "remove", "ops/late", "--server", url], env=env
    )
    assert gone.exit_code == 0 and gone.output.strip() == "removed rule ops/late"
    assert app.notifications.list_rules() == []


def test_ui_lists_channels_rules_and_deliveries(
    api: tuple[httpx.Client, str], app: App, hook: _Hook
) -> None:
    _, url = api
    app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
    app.notifications.put_channel("ops", "hook", kind="webhook", config={"url": hook.url})
    app.notifications.put_rule("ops", "fails", channel="hook", events=["run.failed"])
    duty = app.runtime.notifications("test")
    duty.pass_once()
    app.workflows.register_spec(
        {"name": "bad", "namespace": "ops",
         "tasks": [{"name": "t", "action": {"kind": "shell", "argv": ["false"]}}]},
        source=None,
    )  # fmt: skip
    run = app.runs.trigger("bad")
    app.runtime.run_until_done(run.id, every=0.05)
    duty.pass_once()
    cookie = session_cookie(url)
    with httpx.Client(base_url=url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get("/notifications")
        failed = browser.get("/notifications", params={"state": "failed"})
    assert page.status_code == 200, page.text
    assert hook.url in page.text and "fails" in page.text and "run.failed" in page.text
    assert run.id[:12] in page.text and ">sent<" in page.text
    assert 'href="/notifications"' in page.text
    assert failed.status_code == 200 and "No deliveries." in failed.text
