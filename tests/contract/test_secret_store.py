"""The secret verbs of the `Store` contract, against every backend.

The store holds sealed bytes only; these tests use arbitrary bytes (sealing is the App's
job, tested in tests/integration/test_secrets_app.py).
"""

from __future__ import annotations

import os

from orchestrion.store.records import SealedRow
from tests.contract.conftest import MakeStore

T0 = 1_700_000_000.0


def _row(namespace: str, name: str, key_id: str = "k1", size: int = 40) -> SealedRow:
    return SealedRow(
        namespace=namespace,
        name=name,
        key_id=key_id,
        nonce=os.urandom(12),
        ciphertext=os.urandom(size) + b"\x00\xff",  # any bytes, NULs included
    )


def test_put_get_list_delete(make_store: MakeStore) -> None:
    store = make_store()
    first = _row("finance", "db-password")
    assert store.secrets.put_secret(first, now=T0) is True
    assert store.secrets.put_secret(_row("finance", "api.key"), now=T0 + 1) is True
    assert store.secrets.put_secret(_row("ops", "token"), now=T0 + 2) is True

    assert store.secrets.sealed_secrets("finance", ["db-password"]) == [first]
    assert [r.name for r in store.secrets.sealed_secrets("finance")] == ["api.key", "db-password"]
    assert store.secrets.sealed_secrets("finance", []) == []
    assert store.secrets.sealed_secrets("finance", ["missing"]) == []
    assert [(r.namespace, r.name) for r in store.secrets.sealed_secrets()] == [
        ("finance", "api.key"),
        ("finance", "db-password"),
        ("ops", "token"),
    ]

    listed = store.secrets.list_secrets("finance")
    assert [(m.name, m.key_id, m.created_at, m.updated_at) for m in listed] == [
        ("api.key", "k1", T0 + 1, T0 + 1),
        ("db-password", "k1", T0, T0),
    ]
    assert [m.namespace for m in store.secrets.list_secrets()] == ["finance", "finance", "ops"]
    assert store.secrets.list_secrets("nobody") == []

    assert store.secrets.delete_secret("finance", "db-password", now=T0 + 3) is True
    assert store.secrets.delete_secret("finance", "db-password", now=T0 + 4) is False
    assert [m.name for m in store.secrets.list_secrets("finance")] == ["api.key"]


def test_replace_keeps_created_at(make_store: MakeStore) -> None:
    store = make_store()
    store.secrets.put_secret(_row("a", "s"), now=T0)
    newer = _row("a", "s", key_id="k2")
    assert store.secrets.put_secret(newer, now=T0 + 10) is False
    (meta,) = store.secrets.list_secrets("a")
    assert (meta.key_id, meta.created_at, meta.updated_at) == ("k2", T0, T0 + 10)
    assert store.secrets.sealed_secrets("a", ["s"]) == [newer]


def test_reseal_is_a_compare_and_set(make_store: MakeStore) -> None:
    store = make_store()
    old = _row("a", "s", key_id="old")
    store.secrets.put_secret(old, now=T0)
    new = _row("a", "s", key_id="new")
    assert store.secrets.reseal_secret(old, new, now=T0 + 1) is True
    assert store.secrets.sealed_secrets("a", ["s"]) == [new]
    # A second rotation that read the old row loses: the row no longer holds `old`.
    assert store.secrets.reseal_secret(old, _row("a", "s", key_id="new"), now=T0 + 2) is False
    assert store.secrets.sealed_secrets("a", ["s"]) == [new]
    # A value set meanwhile is never overwritten by a rotation of the value before it.
    fresh = _row("a", "s", key_id="new")
    store.secrets.put_secret(fresh, now=T0 + 3)
    assert store.secrets.reseal_secret(new, _row("a", "s", key_id="new"), now=T0 + 4) is False
    assert store.secrets.sealed_secrets("a", ["s"]) == [fresh]


def test_changes_write_events_without_values(make_store: MakeStore) -> None:
    store = make_store()
    row = _row("a", "s")
    store.secrets.put_secret(row, now=T0)
    store.secrets.put_secret(_row("a", "s"), now=T0 + 1)
    store.secrets.reseal_secret(
        store.secrets.sealed_secrets("a", ["s"])[0], _row("a", "s", key_id="k2"), now=T0 + 2
    )
    store.secrets.delete_secret("a", "s", now=T0 + 3)
    events = [e for e in store.reads.list_events(after_id=0) if e.kind.startswith("secret.")]
    assert [e.kind for e in events] == [
        "secret.created",
        "secret.updated",
        "secret.rotated",
        "secret.deleted",
    ]
    assert all(
        e.data is not None and e.data["namespace"] == "a" and e.data["name"] == "s" for e in events
    )
    assert all(e.run_id is None for e in events)


def test_secrets_survive_reopening(make_store: MakeStore) -> None:
    row = _row("a", "s", size=5000)
    make_store().secrets.put_secret(row, now=T0)
    assert make_store().secrets.sealed_secrets("a", ["s"]) == [row]
