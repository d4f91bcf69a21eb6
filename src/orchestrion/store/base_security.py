"""The security verbs of the `Store` (users, API tokens, UI sessions, the append-only audit
log, sealed secrets), kept apart so that `store/base.py` reads as the engine's verbs.
`orchestrion.store.base.Store` inherits them; `SqlAuthVerbs` and `SqlSecretVerbs` implement
them once for both dialects."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from orchestrion.store.records import (
    AuditEntry,
    AuditFilter,
    AuditRecord,
    SealedRow,
    SecretMeta,
    SessionRecord,
    TokenRecord,
    UserRecord,
)

__all__ = ["SecurityStore"]


class SecurityStore(Protocol):
    # ------------------------------------------------ security: users, tokens, sessions, audit

    def create_user(
        self, name: str, *, password_hash: str, bindings: Mapping[str, str], now: float
    ) -> UserRecord:
        """A new user; `AlreadyExists` when the name is taken."""
        ...

    def get_user(self, name: str) -> UserRecord:
        """The user by name, or `NotFound`."""
        ...

    def get_user_by_id(self, user_id: str) -> UserRecord:
        """The user by id, or `NotFound`."""
        ...

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        ...

    def count_users(self) -> int:
        """How many users exist (zero on a first start)."""
        ...

    def add_login_failure(self, key: str, at: float, *, keep_since: float) -> list[float]:
        """Record a failed login of `key` (a digest of user and source) at `at` and forget
        every failed login before `keep_since`, in one transaction; the times of `key`'s
        failures kept, oldest first."""
        ...

    def login_failures(self, key: str, *, since: float) -> list[float]:
        """The times of `key`'s failed logins at or after `since`, oldest first."""
        ...

    def clear_login_failures(self, key: str) -> None:
        """Forget `key`'s failed logins (after a successful one)."""
        ...

    def update_user(
        self,
        name: str,
        *,
        now: float,
        password_hash: str | None = None,
        bindings: Mapping[str, str] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord:
        """Change what is given, bump the auth epoch and revoke the user's sessions."""
        ...

    def create_token(self, token: TokenRecord) -> None:
        """Store a new API token (its hash only)."""
        ...

    def get_token(self, token_id: str) -> TokenRecord:
        """The token by id, or `NotFound`."""
        ...

    def list_tokens(self) -> list[TokenRecord]:
        """Every API token, oldest first."""
        ...

    def revoke_token(self, token_id: str, *, now: float) -> bool:
        """Revoke from `now`; False when already revoked; `NotFound` when unknown."""
        ...

    def create_session(self, session: SessionRecord) -> None:
        """Store a new UI session (the hash of its id only)."""
        ...

    def get_session(self, id_hash: str) -> SessionRecord | None:
        """The session with this id hash, if any (the caller checks expiry and epoch)."""
        ...

    def revoke_session(self, id_hash: str, *, now: float) -> None:
        """End one session (logout)."""
        ...

    def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit record; returns its id. The log is never changed."""
        ...

    def list_audit(self, filt: AuditFilter) -> list[AuditRecord]:
        """Audit records, newest first, filtered."""
        ...

    # ------------------------------------------------------------ secrets (sealed values only)

    def put_secret(self, sealed: SealedRow, *, now: float) -> bool:
        """Create or replace a sealed secret; True if it was created. Writes an event."""
        ...

    def sealed_secrets(
        self, namespace: str | None = None, names: Collection[str] | None = None
    ) -> list[SealedRow]:
        """Sealed secrets, of one namespace and/or just `names`, by namespace and name."""
        ...

    def list_secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        """Names and metadata of the secrets (of one namespace), by namespace and name."""
        ...

    def delete_secret(self, namespace: str, name: str, *, now: float) -> bool:
        """Delete a secret; False if there was none. Writes an event."""
        ...

    def reseal_secret(self, old: SealedRow, new: SealedRow, *, now: float) -> bool:
        """Replace the sealed value `old` with `new` (a rotation) if the row still holds
        `old`; False if it changed meanwhile."""
        ...
