"""The frozen values of the security tables: users, API tokens, UI sessions, audit records.

Role bindings travel as ``{namespace: role label}`` (plain strings): the store knows
nothing of what a role may do; `orchestrion.auth.principals` decides that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AuditEntry",
    "AuditFilter",
    "AuditRecord",
    "SessionRecord",
    "TokenRecord",
    "UserRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRecord:
    id: str
    name: str
    password_hash: str
    bindings: Mapping[str, str]
    disabled: bool
    #: Bumped by every password or role change; sessions made under an older epoch are dead.
    auth_epoch: int
    created_at: float
    updated_at: float

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        return f"UserRecord(id={self.id!r}, name={self.name!r}, bindings={dict(self.bindings)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    id: str
    name: str
    token_hash: str
    bindings: Mapping[str, str]
    created_by: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def __repr__(self) -> str:
        return f"TokenRecord(id={self.id!r}, name={self.name!r}, bindings={dict(self.bindings)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    id_hash: str
    user_id: str
    csrf: str
    auth_epoch: int
    created_at: float
    expires_at: float
    revoked_at: float | None

    def __repr__(self) -> str:
        return f"SessionRecord(user_id={self.user_id!r}, expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One audit record to append: who did what to which object, and how it ended."""

    at: float
    actor: str
    #: user, token, system (scheduler, webhook), cli (a local command), anonymous.
    actor_kind: str
    action: str
    object: str
    namespace: str | None = None
    #: The request's parameters with secrets masked (the caller masks).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: ok, denied, failed, error.
    outcome: str = "ok"
    detail: str | None = None
    request_id: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(AuditEntry):
    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    namespace: str | None = None
    outcome: str | None = None
    since: float | None = None
    #: Only records with an id below this (cursor paging, newest first).
    before: int | None = None
    limit: int = 100
