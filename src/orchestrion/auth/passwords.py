"""Passwords: argon2id hashes, and a login rate limiter with time passed in.

`verify_password` never raises for a wrong password, and costs the same for an unknown user
(it verifies against a dummy hash), so timing does not tell which user names exist. It says
when a stored hash was made with weaker parameters than today's, so the caller can store a
fresh hash after a successful login.

`LoginLimiter` is a pure object (no clock of its own, P4): after ``max_failures`` failed
logins for one (user, source) inside ``window`` seconds, further attempts are refused for a
lockout that doubles with every further failure, up to ``max_lockout``. A success clears it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from orchestrion.errors import ParameterError

__all__ = [
    "DEFAULT_HASHER",
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "LimitDecision",
    "LoginLimiter",
    "PasswordCheck",
    "hash_password",
    "verify_password",
]

MIN_PASSWORD_CHARS: Final = 12
#: Longer inputs are refused before hashing, so a login cannot be used to burn CPU.
MAX_PASSWORD_CHARS: Final = 1024

#: argon2id with the RFC 9106 "low memory" parameters (64 MiB, 3 passes, 4 lanes).
DEFAULT_HASHER: Final = PasswordHasher(
    time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16, type=Type.ID
)


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """Truthy when the password matched; ``needs_rehash``: store a new hash now."""

    ok: bool
    needs_rehash: bool = False

    def __bool__(self) -> bool:
        return self.ok


def hash_password(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """An argon2id hash (PHC string, salt included) for a new password."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ParameterError(f"password too short: use at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ParameterError(f"password too long: use at most {MAX_PASSWORD_CHARS} characters")
    return hasher.hash(password)


def verify_password(
    stored_hash: str | None, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> PasswordCheck:
    """Check ``password`` against ``stored_hash`` (None: no such user; still costs a verify)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return PasswordCheck(False)
    if stored_hash is None:
        _burn(hasher, password)
        return PasswordCheck(False)
    try:
        hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(False)
    return PasswordCheck(True, needs_rehash=hasher.check_needs_rehash(stored_hash))


_dummy: dict[int, str] = {}


def _burn(hasher: PasswordHasher, password: str) -> None:
    """Spend what a real verify would, against a dummy hash made once per hasher."""
    dummy = _dummy.get(id(hasher))
    if dummy is None:
        dummy = _dummy.setdefault(id(hasher), hasher.hash("orchestrion dummy password"))
    with contextlib.suppress(VerificationError):
        hasher.verify(dummy, password)


# ----------------------------------------------------------------------------- limiter


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """Truthy when a login attempt may go ahead; else wait ``retry_after`` seconds."""

    allowed: bool
    retry_after: float = 0.0

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(slots=True)
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginLimiter:
    """Sliding-window failure counting with exponential lockout, per (user, source).

    Thread-safe; memory is bounded by ``max_keys`` (the least recently seen key goes first).
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 900.0,
        base_lockout: float = 30.0,
        max_lockout: float = 3600.0,
        max_keys: int = 100_000,
    ) -> None:
        if max_failures < 1 or window <= 0 or base_lockout <= 0 or max_lockout < base_lockout:
            raise ValueError("limiter needs max_failures >= 1 and positive, ordered times")
        self.max_failures = max_failures
        self.window = window
        self.base_lockout = base_lockout
        self.max_lockout = max_lockout
        self.max_keys = max_keys
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def check(self, user: str, source: str, *, now: float) -> LimitDecision:
        """May this (user, source) try to log in at ``now``?"""
        with self._lock:
            entry = self._entries.get(_key(user, source))
            if entry is None or entry.locked_until <= now:
                return LimitDecision(True)
            return LimitDecision(False, retry_after=entry.locked_until - now)

    def record_failure(self, user: str, source: str, *, now: float) -> LimitDecision:
        """Count a failed login; the answer says whether the next attempt may go ahead."""
        with self._lock:
            entry = self._entry(_key(user, source))
            failures = entry.failures
            failures.append(now)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            excess = len(failures) - self.max_failures
            if excess >= 0:
                lockout = min(self.max_lockout, self.base_lockout * 2.0 ** min(excess, 60))
                entry.locked_until = max(entry.locked_until, now + lockout)
                return LimitDecision(False, retry_after=entry.locked_until - now)
            return LimitDecision(True)

    def record_success(self, user: str, source: str) -> None:
        """A successful login clears the (user, source) history."""
        with self._lock:
            self._entries.pop(_key(user, source), None)

    def _entry(self, key: tuple[str, str]) -> _Entry:
        entry = self._entries.pop(key, None) or _Entry()
        self._entries[key] = entry  # re-inserted: dict order is least recently seen first
        while len(self._entries) > self.max_keys:
            del self._entries[next(iter(self._entries))]
        return entry


def _key(user: str, source: str) -> tuple[str, str]:
    return (user.strip().casefold(), source)
