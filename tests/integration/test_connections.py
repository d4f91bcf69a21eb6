"""Broker connections (issue 14, part a): `App.connections`, the /api/v1/connections
routes, ``orchestrion connections`` (locally and with ``--server``) and the UI list, over a
real database (SQLite, or PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.cli.main import main
from orchestrion.errors import NotFound, ParameterError
from orchestrion.store.records import AuditFilter, ConsumerRecord
from tests.helpers import (
    ADMIN_PASSWORD,
    admin_client,
    database_url_for,
    serve_api,
    session_cookie,
)

KEY = MasterKey("k", os.urandom(32))
PASSWORD = "conn-sentinel-5e1d"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(database_url=database_url_for(tmp_path / "c.db"), key_ring=KeyRing([KEY]))
    with App(settings).open() as app:
        yield app


def test_create_list_show_delete_and_events(app: App) -> None:
    made = app.connections.put_connection(
        "shop", "orders-mq", kind="rabbitmq", url="amqp://127.0.0.1:5672/", username="guest",
        password_secret="mq-pass", tls={"ca_file": "/etc/ca.pem"},
    )  # fmt: skip
    assert made is True
    again = app.connections.put_connection(
        "shop", "orders-mq", kind="rabbitmq", url="amqp://127.0.0.1:5672/", username="guest",
        password_secret="mq-pass",
    )  # fmt: skip
    assert again is False
    app.connections.put_connection("ops", "cache", kind="redis", url="redis://127.0.0.1:6379/0")
    assert [(c.namespace, c.name) for c in app.connections.list_connections()] == [
        ("ops", "cache"),
        ("shop", "orders-mq"),
    ]
    shown = app.connections.get_connection("shop", "orders-mq")
    assert (shown.kind, shown.username, shown.password_secret, dict(shown.tls)) == (
        "rabbitmq", "guest", "mq-pass", {},
    )  # fmt: skip
    assert shown.created_at <= shown.updated_at
    # The endpoint opens the secret; a missing one is named.
    with pytest.raises(NotFound, match="secret shop/mq-pass does not exist"):
        app.connections.endpoint("shop", "orders-mq")
    app.secrets.set_secret("shop", "mq-pass", PASSWORD)
    endpoint = app.connections.endpoint("shop", "orders-mq")
    assert endpoint.password is not None and endpoint.password.reveal() == PASSWORD
    assert PASSWORD not in repr(endpoint)
    app.connections.delete_connection("ops", "cache")
    with pytest.raises(NotFound, match="connection ops/cache does not exist"):
        app.connections.delete_connection("ops", "cache")
    kinds = [e.kind for e in app.runs.find_events(kind="connection.", limit=10)]
    assert sorted(kinds) == sorted(
        ["connection.created", "connection.updated", "connection.created", "connection.deleted"]
    )


@pytest.mark.parametrize(
    ("kind", "url", "secret", "tls", "problem"),
    [
        ("kafka", "kafka://h", None, {}, "unknown connection kind 'kafka'"),
        ("redis", "amqp://h:5672", None, {}, "a redis URL starts with redis:// or rediss://"),
        ("rabbitmq", "amqp://u:hunter2@h/", None, {}, "the URL holds a password"),
        ("nats", "nats://", None, {}, "names no host"),
        ("mqtt", "mqtt://h:99999", None, {}, "bad URL"),
        ("mqtt", "mqtt://h", "a/b", {}, "bad secret name"),
        ("mqtt", "mqtt://h", None, {"verify": True}, "unknown TLS option 'verify'"),
        ("mqtt", "mqtt://h", None, {"insecure": "yes"}, "'insecure' is a bool"),
    ],
)
def test_bad_connections_are_refused_with_the_reason(
    app: App, kind: str, url: str, secret: str | None, tls: dict[str, object], problem: str
) -> None:
    with pytest.raises(ParameterError, match=problem):
        app.connections.put_connection(
            "shop", "c", kind=kind, url=url, password_secret=secret, tls=tls
        )
    assert app.connections.list_connections() == []


def test_bad_names_are_refused(app: App) -> None:
    for namespace, name in (("Shop", "c"), ("shop", "a/b"), ("shop", "")):
        with pytest.raises(ParameterError):
            app.connections.put_connection(namespace, name, kind="redis", url="redis://h")


@pytest.fixture
def api(app: App) -> Iterator[tuple[httpx.Client, str]]:
    with serve_api(app) as url, admin_client(app, url) as client:
        yield client, url


def test_api_routes_authorise_audit_and_hold_no_credential(
    api: tuple[httpx.Client, str], app: App
) -> None:
    client, url = api
    body = {
        "kind": "nats",
        "url": "nats://127.0.0.1:4222",
        "username": "svc",
        "password_secret": "nats-pass",
    }
    first = client.put("/api/v1/connections/shop/events", json=body)
    assert first.status_code == 201, first.text
    assert first.json() == {"namespace": "shop", "name": "events", "created": True}
    assert client.put("/api/v1/connections/shop/events", json=body).status_code == 200
    listed = client.get("/api/v1/connections").json()
    assert [(c["namespace"], c["name"], c["kind"]) for c in listed] == [("shop", "events", "nats")]
    assert set(listed[0]) == {
        "namespace", "name", "kind", "url", "username", "password_secret", "tls",
        "created_at", "updated_at",
    }  # fmt: skip
    shown = client.get("/api/v1/connections/shop/events")
    assert shown.status_code == 200 and shown.json()["password_secret"] == "nats-pass"
    bad = [
        client.put("/api/v1/connections/shop/x", json={**body, "kind": "kafka"}),
        client.put("/api/v1/connections/shop/x", json={**body, "url": "nats://a:pw@h"}),
        client.put("/api/v1/connections/shop/x", json={**body, "password": "pw"}),
        client.put("/api/v1/connections/Shop/x", json=body),
        client.put("/api/v1/connections/shop/x", json={**body, "tls": {"nope": 1}}),
    ]
    assert [r.status_code for r in bad] == [422, 422, 422, 422, 422], [r.text for r in bad]
    assert "url holds a password" in bad[1].text.lower() or "holds a password" in bad[1].text
    assert client.get("/api/v1/connections/shop/none").status_code == 404

    # A viewer of another namespace sees nothing and may not write.
    token, _ = app.accounts.create_token("viewer", {"other": "viewer"}, expires="never")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as viewer:
        assert viewer.get("/api/v1/connections").json() == []
        assert viewer.get("/api/v1/connections/shop/events").status_code == 403
        assert viewer.put("/api/v1/connections/other/x", json=body).status_code == 403
    assert client.delete("/api/v1/connections/shop/events").status_code == 204
    assert client.delete("/api/v1/connections/shop/events").status_code == 404
    records = app.accounts.list_audit(AuditFilter(namespace="shop"))
    assert {r.action for r in records} >= {"connection.put", "connection.delete"}


def test_ui_lists_the_connections(api: tuple[httpx.Client, str], app: App) -> None:
    _, url = api
    app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
    app.connections.put_connection(
        "shop", "orders-mq", kind="rabbitmq", url="amqp://127.0.0.1:5672/",
        password_secret="mq-pass",
    )  # fmt: skip
    cookie = session_cookie(url)
    with httpx.Client(base_url=url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get("/connections")
    assert page.status_code == 200
    assert "orders-mq" in page.text and "amqp://127.0.0.1:5672/" in page.text
    assert "mq-pass" in page.text and 'href="/connections"' in page.text


def test_cli_locally_and_with_server(api: tuple[httpx.Client, str], app: App) -> None:
    _, url = api
    runner = CliRunner()
    db = app.store.url
    made = runner.invoke(
        main,
        ["connections", "create", "shop/cache", "--kind", "redis", "--url",
         "redis://127.0.0.1:6379/0", "--password-secret", "redis-pass", "--tls-insecure",
         "--db", db],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert made.output.strip() == "created connection shop/cache"
    listed = runner.invoke(main, ["connections", "list", "--db", db, "-o", "json"])
    assert [r["name"] for r in json.loads(listed.output)] == ["cache"]
    shown = json.loads(
        runner.invoke(main, ["connections", "show", "shop/cache", "--db", db]).output
    )
    assert shown["tls"] == {"insecure": True} and shown["password_secret"] == "redis-pass"
    refused = runner.invoke(
        main,
        ["connections", "create", "shop/x", "--kind", "redis", "--url", "redis://:pw@h",
         "--db", db],
    )  # fmt: skip
    assert refused.exit_code == 2 and "holds a password" in refused.output

    token, _ = app.accounts.create_token("cli", {"*": "admin"}, expires="never")
    env = {"ORCHESTRION_TOKEN": token}
    remote = runner.invoke(
        main,
        ["connections", "create", "shop/mq", "--kind", "mqtt", "--url", "mqtt://127.0.0.1:1883",
         "--server", url],
        env=env,
    )  # fmt: skip
    assert remote.exit_code == 0, remote.output
    table = runner.invoke(main, ["connections", "list", "--server", url], env=env)
    assert "cache" in table.output and "mqtt://127.0.0.1:1883" in table.output
    gone = runner.invoke(main, ["connections", "delete", "shop/mq", "--server", url], env=env)
    assert gone.exit_code == 0 and gone.output.strip() == "deleted connection shop/mq"
    assert [c.name for c in app.connections.list_connections()] == ["cache"]


def test_consumers_api_and_page(api: tuple[httpx.Client, str], app: App) -> None:
    client, url = api
    app.store.triggers.put_consumer(
        ConsumerRecord(
            key="w/redis:bus:orders", workflow="w", kind="redis", connection="bus",
            destination="orders", holder="h:1:x", epoch=2, state="running", lag=7,
        ),
        now=1.0,
    )  # fmt: skip
    stale = ConsumerRecord(
        key="w/redis:bus:orders", workflow="w", kind="redis", connection="bus",
        destination="orders", holder="old:9:y", epoch=1, state="stopped",
    )  # fmt: skip
    app.store.triggers.put_consumer(stale, now=2.0)  # an older epoch changes nothing
    (row,) = client.get("/api/v1/consumers").json()
    assert (row["key"], row["state"], row["lag"], row["holder"]) == (
        "w/redis:bus:orders", "running", 7, "h:1:x",
    )  # fmt: skip
    assert (row["received"], row["dead_lettered"], row["last_dead_letter"]) == (0, 0, None)
    app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
    cookie = session_cookie(url)
    with httpx.Client(base_url=url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get("/consumers")
    assert page.status_code == 200
    assert "orders" in page.text and "h:1:x" in page.text
