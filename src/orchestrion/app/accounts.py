"""Accounts: who may sign in and how, over the store and the pure `orchestrion.auth` parts.

`Accounts` turns credentials into a `Principal` (an API token, or a UI session cookie),
manages users and tokens, and appends audit records. It holds no policy of its own: what a
principal may do is `orchestrion.auth.principals.authorize`'s decision, made at the edges.

Secrets handled here never leave as they came in: passwords are stored as argon2id hashes,
tokens and session ids as SHA-256 hashes, and nothing here logs or returns a credential
except the one-time plaintext of a token or session just made.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from argon2 import PasswordHasher

from orchestrion.app.audit import append_audit
from orchestrion.auth.masking import Masker
from orchestrion.auth.passwords import (
    DEFAULT_HASHER,
    LoginLimiter,
    hash_password,
    verify_password,
)
from orchestrion.auth.principals import ALL_NAMESPACES, Principal, PrincipalKind, Role
from orchestrion.auth.tokens import check_token, expiry_time, new_token, parse_token
from orchestrion.clock import Clock
from orchestrion.errors import AlreadyExists, AuthError, NotFound, ParameterError
from orchestrion.spec.rules import check_text
from orchestrion.store.accounts import AccountStore
from orchestrion.store.records import (
    AuditFilter,
    AuditRecord,
    SessionRecord,
    TokenRecord,
    UserRecord,
)

__all__ = [
    "FIRST_START_TOKEN_TTL",
    "SESSION_TTL",
    "Accounts",
    "FirstStart",
    "NewSession",
    "parse_bindings",
    "principal_of",
]

#: A UI session lasts this long from login (seconds); a password or role change ends it.
SESSION_TTL: Final = 12 * 3600.0
#: How long the admin token made at first start works (an expiry `create_token` takes).
FIRST_START_TOKEN_TTL: Final = "24h"
#: What a user name may look like (it appears in audit records and URLs).
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: set ``session_id`` as the cookie; forms carry ``csrf``."""

    session_id: str
    csrf: str
    principal: Principal

    def __repr__(self) -> str:
        return f"NewSession(principal={self.principal.name!r})"


@dataclass(frozen=True, slots=True)
class FirstStart:
    """The one-time admin credentials made when a store has no user yet."""

    user: str
    password: str
    token: str
    #: When the token stops working (`FIRST_START_TOKEN_TTL` after it was made).
    token_expires_at: float | None = None

    def __repr__(self) -> str:
        return f"FirstStart(user={self.user!r})"


def parse_bindings(pairs: Mapping[str, str]) -> dict[str, Role]:
    """``{"finance": "operator"}`` to roles; `ParameterError` names a bad role or namespace."""
    try:
        bindings = {ns: Role.parse(role) for ns, role in pairs.items()}
        Principal(kind=PrincipalKind.USER, id="-", name="-", bindings=bindings)  # checks names
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    return bindings


def principal_of(kind: PrincipalKind, id: str, name: str, pairs: Mapping[str, str]) -> Principal:
    """A principal from stored role labels (``{"finance": "operator"}``), checked as
    `parse_bindings` checks them."""
    return Principal(kind=kind, id=id, name=name, bindings=parse_bindings(pairs))


def _labels(bindings: Mapping[str, Role]) -> dict[str, str]:
    return {ns: role.label for ns, role in bindings.items()}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StoredFailureLog:
    """Failed logins in the database: every server on it limits the same attempts."""

    def __init__(self, accounts: AccountStore) -> None:
        self._accounts = accounts

    def add(self, key: str, at: float, *, keep_since: float) -> list[float]:
        return self._accounts.add_login_failure(key, at, keep_since=keep_since)

    def times(self, key: str, *, keep_since: float) -> list[float]:
        return self._accounts.login_failures(key, since=keep_since)

    def clear(self, key: str) -> None:
        self._accounts.clear_login_failures(key)


class Accounts:
    """Users, tokens, sessions and the audit log of one store."""

    def __init__(
        self,
        accounts: AccountStore,
        clock: Clock,
        *,
        hasher: PasswordHasher = DEFAULT_HASHER,
        limiter: LoginLimiter | None = None,
        session_ttl: float = SESSION_TTL,
        known_secrets: Callable[[], Masker] | None = None,
    ) -> None:
        self._accounts = accounts
        self._known_secrets = known_secrets
        self._clock = clock
        self._hasher = hasher
        self._limiter = limiter or LoginLimiter(log=StoredFailureLog(accounts))
        self._session_ttl = session_ttl

    # ----------------------------------------------------------------- authentication

    def principal_for_token(self, text: str) -> Principal:
        """The principal of an API token; `AuthError` says why not (never echoing it)."""
        parsed = parse_token(text)
        try:
            row = self._accounts.get_token(parsed.token_id)
        except NotFound:
            raise AuthError(f"API token {parsed.token_id} refused: unknown") from None
        check = check_token(
            text,
            row.token_hash,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            now=self._clock.now(),
        )
        check.raise_if_invalid()
        return principal_of(PrincipalKind.TOKEN, row.id, row.name, row.bindings)

    def login(self, name: str, password: str, *, source: str) -> NewSession:
        """Check a password and open a session; rate-limited per (user, source)."""
        now = self._clock.now()
        if not self._limiter.check(name, source, now=now):
            raise AuthError("too many failed logins; try again later")
        user = self._find_user(name)
        check = verify_password(
            user.password_hash if user and not user.disabled else None,
            password,
            hasher=self._hasher,
        )
        if user is None or user.disabled or not check:
            self._limiter.record_failure(name, source, now=now)
            raise AuthError("wrong user name or password")
        self._limiter.record_success(name, source)
        if check.needs_rehash:  # a stronger hash now; the epoch bump also ends old sessions
            user = self._accounts.update_user(
                name, password_hash=hash_password(password, hasher=self._hasher), now=now
            )
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        self._accounts.create_session(
            SessionRecord(
                id_hash=_digest(session_id),
                user_id=user.id,
                csrf=csrf,
                auth_epoch=user.auth_epoch,
                created_at=now,
                expires_at=now + self._session_ttl,
                revoked_at=None,
            )
        )
        return NewSession(session_id, csrf, self._user_principal(user))

    def principal_for_session(self, session_id: str) -> tuple[Principal, str]:
        """The principal and CSRF token of a live session; `AuthError` otherwise."""
        if not session_id or len(session_id) > 200:
            raise AuthError("no session")
        found = self._accounts.get_session(_digest(session_id))
        now = self._clock.now()
        if found is None or found.revoked_at is not None or found.expires_at <= now:
            raise AuthError("session ended; sign in again")
        try:
            user = self._accounts.get_user_by_id(found.user_id)
        except NotFound:
            raise AuthError("session ended; sign in again") from None
        if user.disabled or user.auth_epoch != found.auth_epoch:
            raise AuthError("session ended; sign in again")
        return self._user_principal(user), found.csrf

    def logout(self, session_id: str) -> None:
        """End the session `session_id` at once; its cookie no longer signs anyone in."""
        self._accounts.revoke_session(_digest(session_id), now=self._clock.now())

    # ------------------------------------------------------------------------- users

    def create_user(self, name: str, password: str, bindings: Mapping[str, str]) -> UserRecord:
        """A new user with the argon2id hash of `password` and roles by namespace; `ParameterError`
        for a bad name or role, `AlreadyExists` for a taken name."""
        _check_name(name)
        checked = _labels(parse_bindings(bindings))
        return self._accounts.create_user(
            name,
            password_hash=hash_password(password, hasher=self._hasher),
            bindings=checked,
            now=self._clock.now(),
        )

    def set_password(self, name: str, password: str) -> UserRecord:
        """Replace the user's password; every session of the user ends, so an old password's
        sessions do not outlive it."""
        digest = hash_password(password, hasher=self._hasher)
        return self._accounts.update_user(name, password_hash=digest, now=self._clock.now())

    def set_roles(self, name: str, bindings: Mapping[str, str]) -> UserRecord:
        """Replace the user's roles; the user's sessions end, so that none keeps the old roles."""
        checked = _labels(parse_bindings(bindings))
        return self._accounts.update_user(name, bindings=checked, now=self._clock.now())

    def set_disabled(self, name: str, disabled: bool) -> UserRecord:
        """Disable a user, or enable one again; either way the user's sessions end at once."""
        return self._accounts.update_user(name, disabled=disabled, now=self._clock.now())

    def list_users(self) -> list[UserRecord]:
        """Every user, by name. The records hold password hashes, which no edge shows."""
        return self._accounts.list_users()

    def get_user(self, name: str) -> UserRecord:
        """The user named `name`, or `NotFound`."""
        return self._accounts.get_user(name)

    # ------------------------------------------------------------------------ tokens

    def create_token(
        self,
        name: str,
        bindings: Mapping[str, str],
        *,
        expires: str = "90d",
        created_by: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token: the plaintext (show it once) and the stored record."""
        if not name.strip() or len(name) > 100:
            raise ParameterError("a token needs a name of 1 to 100 printable characters")
        check_text(name, field="the token name")
        checked = _labels(parse_bindings(bindings))
        now = self._clock.now()
        try:
            expires_at = expiry_time(expires, now=now)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        made = new_token()
        record = TokenRecord(
            id=made.token_id,
            name=name,
            token_hash=made.token_hash,
            bindings=checked,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
        self._accounts.create_token(record)
        return made.plaintext, record

    def revoke_token(self, token_id: str) -> bool:
        """Revoke the token `token_id`; False when it was already revoked, `NotFound` when
        unknown."""
        return self._accounts.revoke_token(token_id, now=self._clock.now())

    def list_tokens(self) -> list[TokenRecord]:
        """Every API token (their records: hashes, never plaintext), oldest first."""
        return self._accounts.list_tokens()

    def get_token(self, token_id: str) -> TokenRecord:
        """The token record `token_id`, or `NotFound`."""
        return self._accounts.get_token(token_id)

    # ------------------------------------------------------------------- first start

    def first_start(self, *, user: str = "admin") -> FirstStart | None:
        """On a store with no user: an admin with a random password and an admin token.

        None when a user exists already. Never a built-in default: both are random and
        shown once by the caller. The token expires after `FIRST_START_TOKEN_TTL`: it is
        printed to a terminal (and perhaps a log), so it is for the first steps only; the
        admin makes lasting tokens of their own (`orchestrion tokens create`).
        """
        if self._accounts.count_users():
            return None
        password = secrets.token_urlsafe(18)
        try:
            self.create_user(user, password, {ALL_NAMESPACES: "admin"})
        except AlreadyExists:  # servers starting together: another one made it just now
            return None
        token, record = self.create_token(
            f"{user} (first start)",
            {ALL_NAMESPACES: "admin"},
            expires=FIRST_START_TOKEN_TTL,
            created_by=user,
        )
        return FirstStart(user, password, token, record.expires_at)

    # ------------------------------------------------------------------------- audit

    def audit(
        self,
        *,
        actor: str,
        actor_kind: str,
        action: str,
        object: str,
        namespace: str | None = None,
        params: Mapping[str, Any] | None = None,
        outcome: str = "ok",
        detail: str | None = None,
        request_id: str | None = None,
        source: str | None = None,
    ) -> int:
        """Append one audit record. Secrets never land in it: ``params`` keys that name a
        credential are masked, and every known secret's value is masked in every text field,
        before anything is cut to size (a cut through a value would hide it from the mask)."""
        return append_audit(
            self._accounts,
            self._clock,
            actor=actor,
            actor_kind=actor_kind,
            action=action,
            object=object,
            namespace=namespace,
            params=params,
            outcome=outcome,
            detail=detail,
            request_id=request_id,
            source=source,
            known=self._known_secrets() if self._known_secrets is not None else None,
        )

    def list_audit(self, filt: AuditFilter) -> list[AuditRecord]:
        """Audit records, newest first, as `filt` selects them."""
        return self._accounts.list_audit(filt)

    # ----------------------------------------------------------------------- helpers

    def _find_user(self, name: str) -> UserRecord | None:
        if not _valid_name(name):
            return None  # no user can have it; and a NUL never reaches SQL
        try:
            return self._accounts.get_user(name)
        except NotFound:
            return None

    @staticmethod
    def _user_principal(user: UserRecord) -> Principal:
        return principal_of(PrincipalKind.USER, user.id, user.name, user.bindings)


def _valid_name(name: str) -> bool:
    return 1 <= len(name) <= 64 and set(name) <= _NAME_CHARS


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise ParameterError(
            f"invalid user name {name!r}: use 1 to 64 lowercase letters, digits, '.', '_',"
            " '-' or '@'"
        )
