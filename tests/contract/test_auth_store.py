"""The security verbs on every backend: users, tokens, sessions and the append-only audit log."""

from __future__ import annotations

from typing import Any, cast

import pytest

from orchestrion.errors import AlreadyExists, NotFound
from orchestrion.store.records import AuditEntry, AuditFilter, SessionRecord, TokenRecord
from orchestrion.store.stores import Stores

T0 = 1_700_000_000.0


def test_users_are_created_read_listed_and_names_are_unique(store: Stores) -> None:
    assert store.accounts.count_users() == 0
    ana = store.accounts.create_user(
        "ana", password_hash="h1", bindings={"finance": "operator"}, now=T0
    )
    assert ana.name == "ana" and ana.bindings == {"finance": "operator"} and ana.auth_epoch == 0
    assert store.accounts.get_user_by_id(ana.id) == ana
    store.accounts.create_user("bo", password_hash="h2", bindings={"*": "admin"}, now=T0)
    assert [u.name for u in store.accounts.list_users()] == ["ana", "bo"]
    assert store.accounts.count_users() == 2
    with pytest.raises(AlreadyExists, match="ana"):
        store.accounts.create_user("ana", password_hash="x", bindings={}, now=T0)
    with pytest.raises(NotFound, match="zed"):
        store.accounts.get_user("zed")
    assert "h1" not in repr(ana)


def _session(user_id: str, epoch: int, key: str) -> SessionRecord:
    return SessionRecord(
        id_hash=key,
        user_id=user_id,
        csrf="c-" + key,
        auth_epoch=epoch,
        created_at=T0,
        expires_at=T0 + 3600,
        revoked_at=None,
    )


def test_a_password_or_role_change_bumps_the_epoch_and_revokes_sessions(store: Stores) -> None:
    ana = store.accounts.create_user(
        "ana", password_hash="h1", bindings={"finance": "viewer"}, now=T0
    )
    store.accounts.create_session(_session(ana.id, ana.auth_epoch, "s1"))
    store.accounts.create_session(_session(ana.id, ana.auth_epoch, "s2"))
    found = store.accounts.get_session("s1")
    assert found is not None and found.csrf == "c-s1" and found.revoked_at is None

    changed = store.accounts.update_user("ana", bindings={"finance": "editor"}, now=T0 + 5)
    assert changed.auth_epoch == 1 and changed.bindings == {"finance": "editor"}
    for key in ("s1", "s2"):
        gone = store.accounts.get_session(key)
        assert gone is not None and gone.revoked_at == T0 + 5

    store.accounts.create_session(_session(ana.id, changed.auth_epoch, "s3"))
    after = store.accounts.update_user("ana", password_hash="h2", now=T0 + 9)
    assert after.password_hash == "h2" and after.auth_epoch == 2
    s3 = store.accounts.get_session("s3")
    assert s3 is not None and s3.revoked_at == T0 + 9
    assert store.accounts.update_user("ana", disabled=True, now=T0 + 10).disabled
    with pytest.raises(NotFound):
        store.accounts.update_user("nobody", disabled=True, now=T0)


def test_logout_revokes_one_session(store: Stores) -> None:
    ana = store.accounts.create_user("ana", password_hash="h", bindings={}, now=T0)
    store.accounts.create_session(_session(ana.id, 0, "a"))
    store.accounts.create_session(_session(ana.id, 0, "b"))
    store.accounts.revoke_session("a", now=T0 + 1)
    a, b = store.accounts.get_session("a"), store.accounts.get_session("b")
    assert a is not None and a.revoked_at == T0 + 1
    assert b is not None and b.revoked_at is None
    assert store.accounts.get_session("unknown") is None


def test_tokens_are_stored_by_hash_listed_and_revoked_once(store: Stores) -> None:
    token = TokenRecord(
        id="0123456789abcdef",
        name="ci-bot",
        token_hash="ab" * 32,
        bindings={"finance": "operator"},
        created_by="admin",
        created_at=T0,
        expires_at=T0 + 86400,
        revoked_at=None,
    )
    store.accounts.create_token(token)
    assert store.accounts.get_token(token.id) == token
    assert [t.id for t in store.accounts.list_tokens()] == [token.id]
    assert store.accounts.revoke_token(token.id, now=T0 + 2) is True
    assert store.accounts.revoke_token(token.id, now=T0 + 3) is False
    assert store.accounts.get_token(token.id).revoked_at == T0 + 2
    with pytest.raises(NotFound):
        store.accounts.revoke_token("ffffffffffffffff", now=T0)


def test_the_audit_log_filters_pages_and_refuses_changes(store: Stores) -> None:
    for i in range(6):
        store.accounts.append_audit(
            AuditEntry(
                at=T0 + i,
                actor="ana" if i % 2 else "bo",
                actor_kind="user",
                action="run.cancel" if i < 3 else "run.trigger",
                object=f"run r{i}",
                namespace="finance",
                params={"n": i},
                outcome="ok" if i != 4 else "denied",
                request_id=f"req{i}",
                source="127.0.0.1",
            )
        )
    newest = store.accounts.list_audit(AuditFilter(limit=2))
    assert [r.object for r in newest] == ["run r5", "run r4"]
    older = store.accounts.list_audit(AuditFilter(limit=10, before=newest[-1].id))
    assert [r.object for r in older] == ["run r3", "run r2", "run r1", "run r0"]
    assert [r.object for r in store.accounts.list_audit(AuditFilter(actor="ana"))] == [
        "run r5",
        "run r3",
        "run r1",
    ]
    assert [r.params for r in store.accounts.list_audit(AuditFilter(outcome="denied"))] == [
        {"n": 4}
    ]
    assert len(store.accounts.list_audit(AuditFilter(action="run.trigger", since=T0 + 4))) == 2
    # Append-only: the database itself refuses to change or remove a record.
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            cast(Any, store.backend).transact(T0, lambda adv, sql=sql: adv.tx.execute(sql))
    assert len(store.accounts.list_audit(AuditFilter())) == 6


_COLUMNS = "id, at, actor, actor_kind, action, object, params, outcome"
_FORGED = "1, 0, 'mallory', 'user', 'nothing', 'nothing', '{}', 'ok'"
#: Every statement form that could change or remove a record, per dialect (issue 12,
#: finding 4): SQLite's REPLACE deletes the old row without firing DELETE triggers.
_OVERWRITES: dict[str, dict[str, str]] = {
    "sqlite": {
        "update": "UPDATE audit_log SET actor = 'x'",
        "update or replace": "UPDATE OR REPLACE audit_log SET actor = 'x' WHERE id = 1",
        "delete": "DELETE FROM audit_log WHERE id = 1",
        "insert or replace": f"INSERT OR REPLACE INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})",
        "replace": f"REPLACE INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})",
        "insert or ignore": f"INSERT OR IGNORE INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})",
        "insert": f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})",
        "upsert": f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})"
        " ON CONFLICT (id) DO UPDATE SET actor = excluded.actor",
    },
    "postgres": {
        "update": "UPDATE audit_log SET actor = 'x'",
        "delete": "DELETE FROM audit_log WHERE id = 1",
        "truncate": "TRUNCATE audit_log",
        "insert": f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})",
        "upsert": f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})"
        " ON CONFLICT (id) DO UPDATE SET actor = excluded.actor",
        "upsert nothing": f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({_FORGED})"
        " ON CONFLICT (id) DO NOTHING",
        "merge": "MERGE INTO audit_log a USING (SELECT 1 AS id) s ON a.id = s.id"
        " WHEN MATCHED THEN UPDATE SET actor = 'x'",
        "merge delete": "MERGE INTO audit_log a USING (SELECT 1 AS id) s ON a.id = s.id"
        " WHEN MATCHED THEN DELETE",
    },
}
_FORMS = sorted({form for forms in _OVERWRITES.values() for form in forms})


@pytest.mark.parametrize("form", _FORMS)
def test_no_statement_form_changes_an_audit_record(store: Stores, form: str) -> None:
    dialect = "postgres" if type(store.backend).__name__.startswith("Postgres") else "sqlite"
    sql = _OVERWRITES[dialect].get(form)
    if sql is None:
        pytest.skip(f"{dialect} has no {form}")
    store.accounts.append_audit(
        AuditEntry(at=T0, actor="ana", actor_kind="user", action="run.cancel", object="run r1")
    )
    before = store.accounts.list_audit(AuditFilter())
    assert [r.id for r in before] == [1]
    with pytest.raises(Exception, match="append-only"):
        cast(Any, store.backend).transact(T0, lambda adv: adv.tx.execute(sql))
    assert store.accounts.list_audit(AuditFilter()) == before
    # Appending still works, and the database still picks ids.
    store.accounts.append_audit(
        AuditEntry(at=T0, actor="bo", actor_kind="user", action="run.cancel", object="run r2")
    )
    assert [r.actor for r in store.accounts.list_audit(AuditFilter())] == ["bo", "ana"]


def test_login_failures_are_kept_per_key_pruned_by_age_and_cleared(store: Stores) -> None:
    assert store.accounts.add_login_failure("k1", 100.0, keep_since=0.0) == [100.0]
    assert store.accounts.add_login_failure("k1", 100.0, keep_since=0.0) == [100.0, 100.0]
    assert store.accounts.add_login_failure("k2", 150.0, keep_since=0.0) == [150.0]
    assert store.accounts.login_failures("k1", since=0.0) == [100.0, 100.0]
    assert store.accounts.login_failures("k1", since=100.5) == []
    # adding forgets every key's failures before keep_since
    assert store.accounts.add_login_failure("k2", 300.0, keep_since=120.0) == [150.0, 300.0]
    assert store.accounts.login_failures("k1", since=0.0) == []
    store.accounts.clear_login_failures("k2")
    assert store.accounts.login_failures("k2", since=0.0) == []
    store.accounts.clear_login_failures("never-seen")  # nothing to clear: no error
