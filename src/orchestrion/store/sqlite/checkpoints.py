"""WAL checkpoints on a thread of their own, so that a commit never waits for one.

SQLite appends each commit's pages to the WAL; a checkpoint copies them into the database
file and syncs both, and a writer that then finds the whole WAL copied starts it again from
the beginning. Left to SQLite (``wal_autocheckpoint``), the commit that crosses the mark
copies the whole WAL itself: about 10 ms here for 4,000 pages, the time of some 40 hops of
a chain, every 300 hops (docs/performance.md, session 18).

`Checkpointer` moves that copy beside the writers. Every few commits the committing thread
reads how far the WAL runs ahead of the file (`wal_lag`: two numbers from the WAL index,
one ``pread``). Past `START_AT` pages it wakes a thread that, on a connection of its own:

1. copies the WAL with ``PASSIVE`` checkpoints while writers go on appending (a passive
   checkpoint never waits for, nor blocks, a writer or a reader);
2. once the rest is short, takes the writer locks (this process's and the cross-process
   file lock) and copies the rest. Then the WAL is copied whole, so the next write
   transaction starts it again from the beginning, as it would after SQLite's own.

A writer thus waits only for the last short copy. SQLite's own checkpoint stays on at a
higher mark (``wal_autocheckpoint`` in queries.sql), as the backstop for a burst that runs
ahead of the thread, a WAL index this code cannot read, or a thread that fails.

Durability is unchanged: a checkpoint only copies what the WAL holds already, and one that
is interrupted or fails leaves the WAL as it was, to be copied again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

__all__ = ["CATCH_UP", "LOOK_EVERY", "START_AT", "Checkpointer", "wal_lag"]

log = logging.getLogger("orchestrion.store")

#: Pages the WAL may run ahead of the file before the thread starts copying. Below the
#: backstop (queries.sql: 4,000), so that SQLite's own checkpoint rarely comes first.
START_AT = 3000
#: The bulk is copied beside the writers until at most this many pages are left; the
#: writers then wait for those and the two fsyncs that end a copy (about 1 ms here).
CATCH_UP = 200
#: The committing thread reads the WAL index after every this many commits.
LOOK_EVERY = 8
#: Beside-the-writers passes before the catch-up, whatever is left (a busy writer appends
#: while each pass copies).
_PASSES = 3

_WAL_INDEX_VERSION = 3007000  # SQLite's WALINDEX_MAX_VERSION since 3.7.0
# iVersion, unused, iChange, isInit, bigEndCksum, szPage, mxFrame (native byte order)
_HEADER = struct.Struct("=IIIBBHI")
_BACKFILL = struct.Struct("=I")  # WalCkptInfo.nBackfill, after the header's two copies
_BACKFILL_AT = 96


def wal_lag(shm: int) -> int | None:
    """Pages of the WAL not yet copied into the database file, read from the WAL index
    (the ``-shm`` file open as `shm`); None if the index cannot be read as SQLite's
    documented format (https://sqlite.org/walformat.html, "the WAL-index header").

    SQLite writes the index header twice and its readers compare the copies to catch a
    torn read; so does this. A read that races a writer may be a commit stale, which is
    all a mark needs."""
    try:
        raw = os.pread(shm, _BACKFILL_AT + _BACKFILL.size, 0)
    except OSError:
        return None
    if len(raw) < _BACKFILL_AT + _BACKFILL.size or raw[:48] != raw[48:96]:
        return None
    version, _, _, initialised, _, _, last_frame = _HEADER.unpack_from(raw, 0)
    if version != _WAL_INDEX_VERSION or not initialised:
        return None
    (copied,) = _BACKFILL.unpack_from(raw, _BACKFILL_AT)
    return max(0, int(last_frame) - int(copied))


class Checkpointer:
    """The checkpoints of one database file, on a daemon thread started when first
    needed (a short-lived process that commits little never starts it)."""

    def __init__(self, path: str, writers: Callable[[], AbstractContextManager[bool]]) -> None:
        """`writers()` holds every writer of the file off while it is entered, and says
        whether the database is still open."""
        self._path = path
        self._writers = writers
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._working = False  # a cycle is under way or about to be
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._shm: int | None = None
        #: Cycles completed, and those whose catch-up left the WAL wholly copied.
        self.cycles = 0
        self.caught_up = 0

    def committed(self) -> None:
        """A write transaction committed (the committing thread calls this; cheap)."""
        self._commits += 1
        if self._commits % LOOK_EVERY or self._working or self._stopping:
            return
        lag = self.lag()
        if lag is None or lag < START_AT:
            return
        self._working = True
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-checkpoints", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def lag(self) -> int | None:
        """Pages of the WAL not yet in the file (None: unknown)."""
        if self._shm is None:
            try:
                self._shm = os.open(f"{self._path}-shm", os.O_RDONLY)
            except OSError:
                return None
        return wal_lag(self._shm)

    def close(self) -> None:
        """Stop the thread (interrupting a copy under way: it is begun again by whoever
        checkpoints next) and close its connection. Call before the writers' connection
        is closed, so that the last connection to close is that one."""
        self._stopping = True
        self._wake.set()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._shm is not None:
            os.close(self._shm)
            self._shm = None

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._cycle()
            except sqlite3.Error as exc:
                # Interrupted by close, or the disk refused: the WAL is as it was, and
                # SQLite's own checkpoint still runs at its mark.
                if not self._stopping:
                    log.warning("store.checkpoint_failed", extra={"error": str(exc)})
            finally:
                self._working = False

    def _cycle(self) -> None:
        conn = self._connection()
        for _ in range(_PASSES):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            lag = self.lag()
            if self._stopping or lag is None or lag <= CATCH_UP:
                break
        if self._stopping:
            return
        with self._writers() as still_open:
            if not still_open:
                return
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if self.lag() == 0:
                self.caught_up += 1
        self.cycles += 1

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # It only checkpoints: it never writes, and it reads no table.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn = conn
        return self._conn
