"""Passwords: argon2id hashes, and a login rate limiter with time passed in.

`verify_password` never raises for a wrong password, and costs the same for an unknown user
(it verifies against a dummy hash), so timing does not tell which user names exist. It says
when a stored hash was made with weaker parameters than today's, so the caller can store a
fresh hash after a successful login.

`LoginLimiter` has no clock of its own (P4): after ``max_failures`` failed logins for one
(user, source) inside ``window`` seconds, further attempts are refused for a lockout that
doubles with every further failure, up to ``max_lockout``. A success clears it. The failure
times live in a `FailureLog`: the database's for servers (shared by all of them), memory's
for tests and tools.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from orchestrion.errors import ParameterError

__all__ = [
    "DEFAULT_HASHER",
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "FailureLog",
    "LimitDecision",
    "LoginLimiter",
    "MemoryFailureLog",
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


class FailureLog(Protocol):
    """Where failed logins are kept: this process (`MemoryFailureLog`), or the database,
    shared by every server on it (`orchestrion.app.accounts.StoredFailureLog`)."""

    def add(self, key: str, at: float, *, keep_since: float) -> list[float]:
        """Record a failure of `key` at `at`, forget every failure before `keep_since`;
        the times of `key`'s failures kept, oldest first."""
        ...

    def times(self, key: str, *, keep_since: float) -> list[float]:
        """The times of `key`'s failures at or after `keep_since`, oldest first."""
        ...

    def clear(self, key: str) -> None:
        """Forget `key`'s failures."""
        ...


class MemoryFailureLog:
    """Failures in this process; memory bounded by `max_keys` (least recently seen first)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, at: float, *, keep_since: float) -> list[float]:
        """`FailureLog.add`; the least recently seen key is dropped past `max_keys`, so a flood of
        names cannot grow memory."""
        with self._lock:
            times = self._times.pop(key, None) or deque()
            self._times[key] = times  # re-inserted: dict order is least recently seen first
            times.append(at)
            while times and times[0] < keep_since:
                times.popleft()
            while len(self._times) > self.max_keys:
                del self._times[next(iter(self._times))]
            return list(times)

    def times(self, key: str, *, keep_since: float) -> list[float]:
        """`FailureLog.times`, from this process's memory."""
        with self._lock:
            return [t for t in self._times.get(key, ()) if t >= keep_since]

    def clear(self, key: str) -> None:
        """`FailureLog.clear`: a successful login wipes the slate of its key."""
        with self._lock:
            self._times.pop(key, None)


class LoginLimiter:
    """Sliding-window failure counting with exponential lockout, per (user, source).

    Stateless over its `FailureLog`: the lockout is computed from the failure times kept
    (each failure that is the ``max_failures``-th or later inside the window before it
    locks until its time plus ``base_lockout`` doubled per failure beyond, capped), so a
    log shared through the database makes every server refuse the same attempts.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 900.0,
        base_lockout: float = 30.0,
        max_lockout: float = 3600.0,
        log: FailureLog | None = None,
    ) -> None:
        if max_failures < 1 or window <= 0 or base_lockout <= 0 or max_lockout < base_lockout:
            raise ValueError("limiter needs max_failures >= 1 and positive, ordered times")
        self.max_failures = max_failures
        self.window = window
        self.base_lockout = base_lockout
        self.max_lockout = max_lockout
        self.log: FailureLog = log if log is not None else MemoryFailureLog()

    def check(self, user: str, source: str, *, now: float) -> LimitDecision:
        """May this (user, source) try to log in at ``now``?"""
        times = self.log.times(_key(user, source), keep_since=self._keep_since(now))
        return self._decide(times, now)

    def record_failure(self, user: str, source: str, *, now: float) -> LimitDecision:
        """Count a failed login; the answer says whether the next attempt may go ahead."""
        times = self.log.add(_key(user, source), now, keep_since=self._keep_since(now))
        return self._decide(times, now)

    def record_success(self, user: str, source: str) -> None:
        """A successful login clears the (user, source) history."""
        self.log.clear(_key(user, source))

    def _keep_since(self, now: float) -> float:
        # A failure matters while it is inside some later failure's window, or its own
        # lockout may still run: window + max_lockout covers both.
        return now - self.window - self.max_lockout

    def _decide(self, times: list[float], now: float) -> LimitDecision:
        locked_until = 0.0
        first = 0  # the oldest failure inside the window ending at times[i]
        for i, at in enumerate(times):
            while times[first] <= at - self.window:
                first += 1
            excess = i - first + 1 - self.max_failures
            if excess >= 0:
                lockout = min(self.max_lockout, self.base_lockout * 2.0 ** min(excess, 60))
                locked_until = max(locked_until, at + lockout)
        if locked_until > now:
            return LimitDecision(False, retry_after=locked_until - now)
        return LimitDecision(True)


def _key(user: str, source: str) -> str:
    """A digest: what was typed as a user name (perhaps a password) is never kept."""
    material = f"{user.strip().casefold()}\x00{source}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(material).hexdigest()
