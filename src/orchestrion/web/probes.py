"""Requests refused before any route ran (401, 405, 413) leave an audit record, rate-limited.

Probing a server (guessing tokens, trying methods, sending oversized bodies) is refused
before a route's guard runs, so no route writes its record. `ProbeAudit` writes one per
refusal, at most `per_minute` per client address and kind of refusal in a window of a
minute; the others are counted, and when a window that suppressed some ends, one record
of kind ``request.suppressed`` says how many (written with the next refusal or audited
request this server process sees; the limiter is in memory, per process). So a flood
costs a few rows a minute and stays visible. The bad credential itself is never stored:
only what kind it was (a bearer token, a session cookie, a malformed header) and why it
was refused.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from orchestrion.app import App
from orchestrion.errors import OrchestrionError

__all__ = ["PROBE_KINDS", "ProbeAudit", "ProbeLimiter", "Suppressed"]

log = logging.getLogger("orchestrion.web.probes")

#: The refusals recorded, by status: (audit action, outcome).
PROBE_KINDS: Final = {
    401: ("request.unauthenticated", "denied"),
    405: ("request.method_not_allowed", "failed"),
    413: ("request.too_large", "failed"),
}
_WINDOW: Final = 60.0
_MAX_PATH: Final = 200


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Refusals of one kind from one address that a finished window did not record."""

    source: str
    kind: str
    count: int
    since: float


@dataclass(slots=True)
class _Window:
    start: float
    recorded: int = 0
    suppressed: int = 0


class ProbeLimiter:
    """Fixed one-minute windows per (address, kind); pure: time is passed in.

    Windows are kept in the order they started, so the finished ones are found at the
    front without a scan, and at most `max_keys` are open (the oldest closes early)."""

    def __init__(
        self, per_minute: int = 10, *, window: float = _WINDOW, max_keys: int = 10_000
    ) -> None:
        self.per_minute = per_minute
        self._window = window
        self._max_keys = max_keys
        self._open: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._pending: list[Suppressed] = []
        self._lock = threading.Lock()

    def admit(self, source: str, kind: str, now: float) -> bool:
        """True: record this refusal; False: it is counted as suppressed."""
        key = (source, kind)
        with self._lock:
            self._close_finished(now)
            window = self._open.get(key)
            if window is None:
                self._open[key] = _Window(start=now, recorded=1)
                while len(self._open) > self._max_keys:
                    self._close(*self._open.popitem(last=False))
                return True
            if window.recorded < self.per_minute:
                window.recorded += 1
                return True
            window.suppressed += 1
            return False

    def due(self, now: float) -> list[Suppressed]:
        """The finished windows that suppressed refusals, each reported once, oldest first."""
        with self._lock:
            self._close_finished(now)
            out, self._pending = self._pending, []
        return out

    def _close_finished(self, now: float) -> None:
        while self._open:
            key, window = next(iter(self._open.items()))
            if now - window.start < self._window:
                return
            del self._open[key]
            self._close(key, window)

    def _close(self, key: tuple[str, str], window: _Window) -> None:
        if window.suppressed:
            self._pending.append(Suppressed(key[0], key[1], window.suppressed, window.start))


class ProbeAudit:
    """Writes the audit records of refused requests through `app`, as `limiter` allows."""

    def __init__(self, app: App, limiter: ProbeLimiter | None = None) -> None:
        self._app = app
        self.limiter = limiter or ProbeLimiter()

    async def refused(
        self,
        scope: Scope,
        status: int,
        reason: str,
        *,
        params: dict[str, Any] | None = None,
        actor: tuple[str, str] = ("anonymous", "anonymous"),
        request_id: str | None = None,
    ) -> None:
        """Record that the request of `scope` was refused with `status` (401, 405 or 413)
        for `reason`, unless this address has had its share of such records this minute."""
        action, outcome = PROBE_KINDS[status]
        source = _source(scope)
        if not self.limiter.admit(source, action, self._app.clock.now()):
            return
        path = str(scope.get("path", ""))
        record = {
            "actor": actor[0],
            "actor_kind": actor[1],
            "action": action,
            "object": f"{scope.get('method', '?')} {path[:_MAX_PATH]}",
            "params": params or {},
            "outcome": outcome,
            "detail": f"HTTP {status}: {reason}",
            "request_id": request_id or secrets.token_hex(8),
            "source": source,
        }
        await run_in_threadpool(self._write, record)

    def flush(self) -> None:
        """Write a ``request.suppressed`` record for every finished window that suppressed
        refusals (called with every audit write, so counts appear without a timer)."""
        for gone in self.limiter.due(self._app.clock.now()):
            self._write(
                {
                    "actor": "anonymous",
                    "actor_kind": "anonymous",
                    "action": "request.suppressed",
                    "object": gone.kind,
                    "params": {"refused": gone.kind, "count": gone.count, "since": gone.since},
                    "outcome": "denied" if gone.kind == PROBE_KINDS[401][0] else "failed",
                    "detail": f"{gone.count} more {gone.kind} records suppressed in a minute",
                    "request_id": None,
                    "source": gone.source,
                },
                flush=False,
            )

    def _write(self, record: dict[str, Any], *, flush: bool = True) -> None:
        if flush:
            self.flush()
        try:
            self._app.accounts.audit(**record)
        except OrchestrionError:  # the store is down: say so, never fail the response
            log.exception("audit.write_failed", extra={"action": record["action"]})


def _source(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
