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

from orchestrion.errors import AlreadyExists, NotFound
from orchestrion.store.records import (
    AuditEntry,
    AuditFilter,
    AuditRecord,
    SessionRecord,
    TokenRecord,
    UserRecord,
)
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance, dumps
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.named import also_set, where
from orchestrion.store.sql.queries import Q

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
                Q.insert_user, (user_id, name, password_hash, dumps(dict(bindings)), now, now)
            )
            if made.rowcount != 1:
                raise AlreadyExists(f"a user named {name!r} exists already")

        self._db.transact(now, fn)
        return self.get_user(name)

    def get_user(self, name: str) -> UserRecord:
        found = self._db.read(Q.user_by_name, (name,))
        if not found:
            raise NotFound(f"no user named {name!r}")
        return rows.USER(found[0])

    def get_user_by_id(self, user_id: str) -> UserRecord:
        found = self._db.read(Q.user_by_id, (user_id,))
        if not found:
            raise NotFound(f"no user with id {user_id!r}")
        return rows.USER(found[0])

    def list_users(self) -> list[UserRecord]:
        return [rows.USER(r) for r in self._db.read(Q.users, ())]

    def count_users(self) -> int:
        return int(self._db.read(Q.count_users, ())[0]["n"])

    # ----------------------------------------------------------------- failed logins

    def add_login_failure(self, key: str, at: float, *, keep_since: float) -> list[float]:
        def fn(adv: Advance) -> list[float]:
            adv.tx.execute(Q.forget_login_failures, (keep_since,))
            adv.tx.execute(Q.insert_login_failure, (key, at))
            found = adv.tx.execute(Q.login_failures, (key,)).fetchall()
            return [float(r["at"]) for r in found]

        return self._db.transact(at, fn)

    def login_failures(self, key: str, *, since: float) -> list[float]:
        found = self._db.read(Q.login_failures_since, (key, since))
        return [float(r["at"]) for r in found]

    def clear_login_failures(self, key: str) -> None:
        self._db.transact(0.0, lambda adv: adv.tx.execute(Q.clear_login_failures, (key,)))

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
            row = adv.tx.execute(Q.user_id, (name,)).fetchone()
            if row is None:
                raise NotFound(f"no user named {name!r}")
            changed = {
                column: value
                for column, value in (
                    ("password_hash", password_hash),
                    ("bindings", None if bindings is None else dumps(dict(bindings))),
                    ("disabled", None if disabled is None else int(disabled)),
                )
                if value is not None
            }
            adv.tx.execute(
                Q.update_user.fill(sets=also_set(changed)), (now, *changed.values(), row["id"])
            )
            adv.tx.execute(Q.revoke_sessions_of, (now, row["id"]))

        self._db.transact(now, fn)
        return self.get_user(name)

    # ---------------------------------------------------------------------------- tokens

    def create_token(self, token: TokenRecord) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(
                Q.insert_token,
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
        found = self._db.read(Q.token, (token_id,))
        if not found:
            raise NotFound(f"no API token with id {token_id!r}")
        return rows.TOKEN(found[0])

    def list_tokens(self) -> list[TokenRecord]:
        return [rows.TOKEN(r) for r in self._db.read(Q.tokens, ())]

    def revoke_token(self, token_id: str, *, now: float) -> bool:
        """Revoke from `now` on; False when it was revoked already. NotFound if unknown."""

        def fn(adv: Advance) -> bool:
            found = adv.tx.execute(Q.token_exists, (token_id,))
            if found.fetchone() is None:
                raise NotFound(f"no API token with id {token_id!r}")
            done = adv.tx.execute(Q.revoke_token, (now, token_id))
            return bool(done.rowcount)

        return self._db.transact(now, fn)

    # -------------------------------------------------------------------------- sessions

    def create_session(self, session: SessionRecord) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(
                Q.insert_session,
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
                Q.drop_old_sessions, (session.created_at - 86400, session.created_at - 86400)
            )

        self._db.transact(session.created_at, fn)

    def get_session(self, id_hash: str) -> SessionRecord | None:
        found = self._db.read(Q.session, (id_hash,))
        return rows.SESSION(found[0]) if found else None

    def revoke_session(self, id_hash: str, *, now: float) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(Q.revoke_session, (now, id_hash))

        self._db.transact(now, fn)

    # ----------------------------------------------------------------------------- audit

    def append_audit(self, entry: AuditEntry) -> int:
        def fn(adv: Advance) -> int:
            row = adv.tx.execute(
                Q.insert_audit,
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
        given = (
            (Q.audit_where_actor, filt.actor),
            (Q.audit_where_action, filt.action),
            (Q.audit_where_namespace, filt.namespace),
            (Q.audit_where_outcome, filt.outcome),
            (Q.audit_where_since, filt.since),
            (Q.audit_where_before, filt.before),
        )
        conditions = [(condition, value) for condition, value in given if value is not None]
        sql = Q.audit_page.fill(where=where(*(condition for condition, _ in conditions)))
        found = self._db.read(sql, (*(value for _, value in conditions), filt.limit))
        return [rows.AUDIT(r) for r in found]
