"""Cross-process wake-ups on PostgreSQL: LISTEN/NOTIFY.

A transaction that makes work ready sends ``NOTIFY orchestrion_work``, one that writes
history ``NOTIFY orchestrion_history`` (both delivered at its commit; see
`PgAdvance.flush`). A `Listener` thread holds its own connection, LISTENs on the
channels its store wants (workers: work; the API server: history too) and calls the
store's local wake-ups. Notifications are an accelerator only:
every waiter still polls slowly, so a notification lost while the connection was down
costs latency, never correctness. After reconnecting the listener wakes everyone once,
because something may have happened meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import psycopg

from orchestrion.store.postgres.queries import PG

__all__ = ["HISTORY_CHANNEL", "WORK_CHANNEL", "Listener"]

log = logging.getLogger("orchestrion.store")

WORK_CHANNEL = "orchestrion_work"
HISTORY_CHANNEL = "orchestrion_history"


class Listener:
    """A daemon thread that turns notifications on `handlers`' channels into calls,
    ignoring those whose payload is `token` (the store's own: it woke itself already)."""

    def __init__(
        self, conninfo: str, handlers: Mapping[str, Callable[[], None]], token: str
    ) -> None:
        self._conninfo = conninfo
        self._handlers = dict(handlers)
        self._token = token
        self._stop = threading.Event()
        #: Set once the LISTEN commands are in place (tests and `wait_ready` use it).
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    @property
    def channels(self) -> set[str]:
        """The channels it listens on."""
        return set(self._handlers)

    def start(self, wait: float = 5.0) -> None:
        """Start listening; return once the LISTENs are in place, or after `wait` seconds
        (it keeps trying to connect in the background)."""
        self._thread.start()
        self.ready.wait(wait)

    def stop(self) -> None:
        """Stop listening and close its connection (within a notification poll)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    for channel in self._handlers:
                        conn.execute(PG.listen.fill(channel=channel))
                    self.ready.set()
                    self._wake_all()  # anything may have happened while we were not listening
                    backoff = 0.1
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.2):
                            if note.payload != self._token:
                                self._handlers[note.channel]()
            except psycopg.Error as exc:
                self.ready.clear()
                log.warning("store.listen_failed", extra={"error": str(exc)})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _wake_all(self) -> None:
        for handler in self._handlers.values():
            handler()
