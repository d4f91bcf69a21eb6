"""`App` secrets and the /api/v1/secrets routes over a real database (SQLite,
or PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``) and a real server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.errors import NotFound, SecretError
from orchestrion.store.records import AuditFilter
from tests.helpers import admin_client, database_url_for, serve_api

OLD = MasterKey("old", os.urandom(32))
NEW = MasterKey("new", os.urandom(32))


def _app(path: Path, *keys: MasterKey) -> App:
    ring = KeyRing(list(keys)) if keys else None
    return App(Settings(database_url=database_url_for(path), key_ring=ring)).open()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = _app(tmp_path / "s.db", OLD)
    yield app
    app.close()


def test_set_resolve_list_delete(app: App) -> None:
    assert app.secrets.set_secret("finance", "db", "pw-1") is True
    assert app.secrets.set_secret("finance", "db", "pw-2") is False
    app.secrets.set_secret("ops", "token", "t")
    assert app.secrets.resolve_secrets("finance", ["db"])["db"].reveal() == "pw-2"
    assert app.secrets.resolve_secrets("finance", []) == {}
    assert [(m.namespace, m.name) for m in app.secrets.list_secrets()] == [
        ("finance", "db"),
        ("ops", "token"),
    ]
    assert [m.name for m in app.secrets.list_secrets("ops")] == ["token"]
    app.secrets.delete_secret("ops", "token")
    with pytest.raises(NotFound):
        app.secrets.delete_secret("ops", "token")
    with pytest.raises(NotFound, match="secret finance/nope does not exist"):
        app.secrets.resolve_secrets("finance", ["db", "nope"])


@pytest.mark.parametrize(
    ("namespace", "name", "value"),
    [("Bad", "x", "v"), ("a/b", "x", "v"), ("ok", "a/b", "v"), ("ok", "", "v"), ("ok", "x", "")],
    ids=["upper", "slash-ns", "slash-name", "empty-name", "empty-value"],
)
def test_bad_names_and_values_are_refused(app: App, namespace: str, name: str, value: str) -> None:
    with pytest.raises(SecretError):
        app.secrets.set_secret(namespace, name, value)


def test_too_large_a_value_is_refused(app: App) -> None:
    with pytest.raises(SecretError, match="over 65536 bytes"):
        app.secrets.set_secret("a", "b", "x" * 65_537)


def test_rotation_reseals_under_the_newest_key(tmp_path: Path) -> None:
    db = tmp_path / "rot.db"
    with _app(db, OLD) as old:
        for i in range(3):
            old.secrets.set_secret("ns", f"s{i}", f"value-{i}")
    with _app(db, NEW, OLD) as both:
        assert both.secrets.rotate_secrets() == 3
        assert both.secrets.rotate_secrets() == 0
        assert {m.key_id for m in both.secrets.list_secrets()} == {"new"}
    with _app(db, NEW) as new_only:  # the old key can now be dropped
        assert new_only.secrets.resolve_secrets("ns", ["s1"])["s1"].reveal() == "value-1"
    with _app(db, OLD) as old_only, pytest.raises(SecretError, match="unknown master key id"):
        old_only.secrets.resolve_secrets("ns", ["s1"])


def test_a_row_copied_to_another_name_does_not_open(app: App) -> None:
    app.secrets.set_secret("a", "one", "first")
    app.secrets.set_secret("a", "two", "second")
    (row,) = app.store.secrets.sealed_secrets("a", ["one"])
    moved = type(row)(
        namespace="a", name="two", key_id=row.key_id, nonce=row.nonce, ciphertext=row.ciphertext
    )
    app.store.secrets.put_secret(moved, now=time.time())
    with pytest.raises(SecretError, match="cannot open secret a/two"):
        app.secrets.resolve_secrets("a", ["two"])


def test_without_a_key_ring_secrets_cannot_be_set(tmp_path: Path) -> None:
    with _app(tmp_path / "n.db") as app, pytest.raises(SecretError, match="ORCHESTRION_DEV_MODE"):
        app.secrets.set_secret("a", "b", "c")


@pytest.fixture
def api(app: App) -> Iterator[httpx.Client]:
    """A real server on a loopback port, and an admin's client."""
    with serve_api(app) as url, admin_client(app, url) as client:
        yield client


def test_api_routes_never_return_a_value(api: httpx.Client, app: App) -> None:
    value = "api-sentinel-93c1"
    first = api.put("/api/v1/secrets/finance/db", json={"value": value})
    assert first.status_code == 201
    assert first.json() == {"namespace": "finance", "name": "db", "created": True}
    again = api.put("/api/v1/secrets/finance/db", json={"value": value + "x"})
    assert again.status_code == 200 and again.json()["created"] is False
    listed = api.get("/api/v1/secrets")
    assert listed.status_code == 200
    (row,) = listed.json()
    assert set(row) == {"namespace", "name", "key_id", "created_at", "updated_at"}
    assert api.get("/api/v1/secrets", params={"namespace": "other"}).json() == []
    assert app.secrets.resolve_secrets("finance", ["db"])["db"].reveal() == value + "x"

    bad = [
        api.put("/api/v1/secrets/Finance/db", json={"value": value}),
        api.put("/api/v1/secrets/finance/db", json={"value": value, "extra": 1}),
        api.put("/api/v1/secrets/finance/db", json={"value": ""}),
        api.put("/api/v1/secrets/finance/db", content=b"not json"),
    ]
    assert [r.status_code for r in bad] == [422, 422, 422, 422]
    assert api.delete("/api/v1/secrets/finance/db").status_code == 204
    gone = api.delete("/api/v1/secrets/finance/db")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    for response in (first, again, listed, *bad, gone):
        assert value not in response.text
    # Setting and deleting are audited; the value never is.
    records = app.accounts.list_audit(AuditFilter(namespace="finance"))
    assert {r.action for r in records} >= {"secret.set", "secret.delete"}
    assert all(value not in str(r.params) for r in records)
    spec = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/secrets/{namespace}/{name}" in spec["paths"]
