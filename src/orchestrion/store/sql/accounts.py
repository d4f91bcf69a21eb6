"""`SqlAccounts`: the `AccountStore` of both dialects, over a `Database`: users, failed
logins, API tokens, UI sessions and the append-only audit log.

Each write is one `Database.transact` transaction. A password or role change bumps the user's
``auth_epoch`` and revokes the user's sessions in the same transaction, so no session
outlives the credentials it was opened with. The audit table refuses UPDATE and DELETE
(triggers in migration 0004): the store only ever appends.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from orchestrion.errors import AlreadyExists, NotFound
from orchestrion.store.records import (
    AuditEntry,
    AuditFilter,
    AuditRecord,
    SessionRecord,
    TokenRecord,
    UserRecord,
)
from orchestrion.store.sql.advance import Advance, dumps, loads
from orchestrion.store.sql.database import Database

__all__ = ["SqlAccounts"]


class SqlAccounts:
    """See `orchestrion.store.accounts.AccountStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ----------------------------------------------------------------------------- users

    def create_user(
        self, name: str, *, password_hash: str, bindings: Mapping[str, str], now: float
    ) -> UserRecord:
        user_id = secrets.token_hex(8)

        def fn(adv: Advance) -> None:
            # ON CONFLICT rather than a SELECT first: under PostgreSQL's read committed, two
            # servers starting together both saw no admin and one insert then failed on the
            # unique key as a database error instead of `AlreadyExists`.
            made = adv.tx.execute(
                "INSERT INTO users (id, name, password_hash, bindings, disabled, auth_epoch,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (user_id, name, password_hash, dumps(dict(bindings)), now, now),
            )
            if made.rowcount != 1:
                raise AlreadyExists(f"a user named {name!r} exists already")

        self._db.transact(now, fn)
        return self.get_user(name)

    def get_user(self, name: str) -> UserRecord:
        rows = self._db.read("SELECT * FROM users WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no user named {name!r}")
        return _user(rows[0])

    def get_user_by_id(self, user_id: str) -> UserRecord:
        rows = self._db.read("SELECT * FROM users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound(f"no user with id {user_id!r}")
        return _user(rows[0])

    def list_users(self) -> list[UserRecord]:
        return [_user(r) for r in self._db.read("SELECT * FROM users ORDER BY name", ())]

    def count_users(self) -> int:
        return int(self._db.read("SELECT count(*) AS n FROM users", ())[0]["n"])

    # ----------------------------------------------------------------- failed logins

    def add_login_failure(self, key: str, at: float, *, keep_since: float) -> list[float]:
        def fn(adv: Advance) -> list[float]:
            adv.tx.execute("DELETE FROM login_failures WHERE at < ?", (keep_since,))
            adv.tx.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, at))
            rows = adv.tx.execute(
                "SELECT at FROM login_failures WHERE key = ? ORDER BY at, id", (key,)
            ).fetchall()
            return [float(r["at"]) for r in rows]

        return self._db.transact(at, fn)

    def login_failures(self, key: str, *, since: float) -> list[float]:
        rows = self._db.read(
            "SELECT at FROM login_failures WHERE key = ? AND at >= ? ORDER BY at, id",
            (key, since),
        )
        return [float(r["at"]) for r in rows]

    def clear_login_failures(self, key: str) -> None:
        self._db.transact(
            0.0, lambda adv: adv.tx.execute("DELETE FROM login_failures WHERE key = ?", (key,))
        )

    def update_user(
        self,
        name: str,
        *,
        now: float,
        password_hash: str | None = None,
        bindings: Mapping[str, str] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord:
        """Change what is given; any change revokes the user's sessions (same transaction)."""

        def fn(adv: Advance) -> None:
            row = adv.tx.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no user named {name!r}")
            sets, params = ["auth_epoch = auth_epoch + 1", "updated_at = ?"], list[Any]([now])
            if password_hash is not None:
                sets, params = [*sets, "password_hash = ?"], [*params, password_hash]
            if bindings is not None:
                sets, params = [*sets, "bindings = ?"], [*params, dumps(dict(bindings))]
            if disabled is not None:
                sets, params = [*sets, "disabled = ?"], [*params, int(disabled)]
            adv.tx.execute(f"UPDATE users SET {', '.join(sets)} WHERE id = ?", (*params, row["id"]))
            adv.tx.execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (now, row["id"]),
            )

        self._db.transact(now, fn)
        return self.get_user(name)

    # ---------------------------------------------------------------------------- tokens

    def create_token(self, token: TokenRecord) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(
                "INSERT INTO api_tokens (id, name, token_hash, bindings, created_by,"
                " created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    token.id,
                    token.name,
                    token.token_hash,
                    dumps(dict(token.bindings)),
                    token.created_by,
                    token.created_at,
                    token.expires_at,
                ),
            )

        self._db.transact(token.created_at, fn)

    def get_token(self, token_id: str) -> TokenRecord:
        rows = self._db.read("SELECT * FROM api_tokens WHERE id = ?", (token_id,))
        if not rows:
            raise NotFound(f"no API token with id {token_id!r}")
        return _token(rows[0])

    def list_tokens(self) -> list[TokenRecord]:
        rows = self._db.read("SELECT * FROM api_tokens ORDER BY created_at, id", ())
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, *, now: float) -> bool:
        """Revoke from `now` on; False when it was revoked already. NotFound if unknown."""

        def fn(adv: Advance) -> bool:
            found = adv.tx.execute("SELECT 1 FROM api_tokens WHERE id = ?", (token_id,))
            if found.fetchone() is None:
                raise NotFound(f"no API token with id {token_id!r}")
            done = adv.tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, token_id),
            )
            return bool(done.rowcount)

        return self._db.transact(now, fn)

    # -------------------------------------------------------------------------- sessions

    def create_session(self, session: SessionRecord) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(
                "INSERT INTO sessions (id_hash, user_id, csrf, auth_epoch, created_at,"
                " expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    session.id_hash,
                    session.user_id,
                    session.csrf,
                    session.auth_epoch,
                    session.created_at,
                    session.expires_at,
                ),
            )
            # Old sessions are dead weight: drop the ones that ended a day ago.
            adv.tx.execute(
                "DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?",
                (session.created_at - 86400, session.created_at - 86400),
            )

        self._db.transact(session.created_at, fn)

    def get_session(self, id_hash: str) -> SessionRecord | None:
        rows = self._db.read("SELECT * FROM sessions WHERE id_hash = ?", (id_hash,))
        return _session(rows[0]) if rows else None

    def revoke_session(self, id_hash: str, *, now: float) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL",
                (now, id_hash),
            )

        self._db.transact(now, fn)

    # ----------------------------------------------------------------------------- audit

    def append_audit(self, entry: AuditEntry) -> int:
        def fn(adv: Advance) -> int:
            row = adv.tx.execute(
                "INSERT INTO audit_log (at, actor, actor_kind, action, object, namespace,"
                " params, outcome, detail, request_id, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    entry.at,
                    entry.actor,
                    entry.actor_kind,
                    entry.action,
                    entry.object,
                    entry.namespace,
                    dumps(dict(entry.params)),
                    entry.outcome,
                    entry.detail,
                    entry.request_id,
                    entry.source,
                ),
            ).fetchone()
            return int(row["id"])

        return self._db.transact(entry.at, fn)

    def list_audit(self, filt: AuditFilter) -> list[AuditRecord]:
        """Newest first, filtered; ``filt.before`` pages on."""
        sql, params = "SELECT * FROM audit_log WHERE 1 = 1", list[Any]()
        for column, value in (
            ("actor", filt.actor),
            ("action", filt.action),
            ("namespace", filt.namespace),
            ("outcome", filt.outcome),
        ):
            if value is not None:
                sql, params = f"{sql} AND {column} = ?", [*params, value]
        if filt.since is not None:
            sql, params = sql + " AND at >= ?", [*params, filt.since]
        if filt.before is not None:
            sql, params = sql + " AND id < ?", [*params, filt.before]
        rows = self._db.read(sql + " ORDER BY id DESC LIMIT ?", (*params, filt.limit))
        return [_audit(r) for r in rows]


def _user(r: Any) -> UserRecord:
    return UserRecord(
        id=r["id"],
        name=r["name"],
        password_hash=r["password_hash"],
        bindings=loads(r["bindings"]),
        disabled=bool(r["disabled"]),
        auth_epoch=int(r["auth_epoch"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def _token(r: Any) -> TokenRecord:
    return TokenRecord(
        id=r["id"],
        name=r["name"],
        token_hash=r["token_hash"],
        bindings=loads(r["bindings"]),
        created_by=r["created_by"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
    )


def _session(r: Any) -> SessionRecord:
    return SessionRecord(
        id_hash=r["id_hash"],
        user_id=r["user_id"],
        csrf=r["csrf"],
        auth_epoch=int(r["auth_epoch"]),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
    )


def _audit(r: Any) -> AuditRecord:
    return AuditRecord(
        id=int(r["id"]),
        at=r["at"],
        actor=r["actor"],
        actor_kind=r["actor_kind"],
        action=r["action"],
        object=r["object"],
        namespace=r["namespace"],
        params=loads(r["params"]),
        outcome=r["outcome"],
        detail=r["detail"],
        request_id=r["request_id"],
        source=r["source"],
    )
