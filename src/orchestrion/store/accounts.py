"""`AccountStore`: users, failed logins, API tokens, UI sessions and the append-only audit
log. The store keeps hashes only (of passwords, tokens and session ids); what a role may do
is decided by `orchestrion.auth`, never here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from orchestrion.store.records import (
    AuditEntry,
    AuditFilter,
    AuditRecord,
    SessionRecord,
    TokenRecord,
    UserRecord,
)

__all__ = ["AccountStore"]


class AccountStore(Protocol):
    """Who may sign in and how (`orchestrion.app.accounts.Accounts` is its one user)."""

    # ------------------------------------------------------------ users

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

    # ------------------------------------------------------------ failed logins

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

    # ------------------------------------------------------------ changes, tokens, sessions

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

    # ------------------------------------------------------------ audit

    def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit record; returns its id. The log is never changed."""
        ...

    def list_audit(self, filt: AuditFilter) -> list[AuditRecord]:
        """Audit records, newest first, filtered."""
        ...
