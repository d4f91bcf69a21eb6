"""WAL checkpoints on a thread of their own, so that a commit does not wait for a whole one.

SQLite appends each commit's pages to the WAL; a checkpoint copies them into the database
file and syncs both, and a writer that then finds the whole WAL copied starts it again from
the beginning. Left to SQLite (``wal_autocheckpoint``), the commit that crosses the mark
copies the whole WAL itself: about 10 ms here for 4,000 pages, the time of some 40 hops of
a chain, every 300 hops (docs/performance.md, session 18).

`Checkpointer` moves the bulk of that copy beside the writers. Every `every` commits the
committing thread wakes a thread that, on a connection of its own, copies the WAL with a
``PASSIVE`` checkpoint (one that neither waits for nor blocks a writer or a reader). When
the WAL had reached `START_AT` pages, it then:

1. copies what was appended meanwhile, pass after pass, until a pass had little to copy;
2. takes the writer locks (this process's, which its readers share too, and the
   cross-process file lock, if no other process holds it) and copies the few pages
   appended since. The WAL is then usually copied whole (a reader in another process may
   hold back its newest pages), so the next write transaction starts it again from the
   beginning, as it would after SQLite's own checkpoint. If no pass got short (a writer
   faster than the copy), or another process is writing, this step waits for a later
   cycle rather than holding anyone up.

`every` adapts to what a commit writes: from the pages a cycle finds and the commits since
the WAL last started again, the next cycle is due after about `AIM` pages' worth of them.
Only this thread's restarts are seen, so `every` stops adapting once a cycle leaves a long
WAL as it is (SQLite's own checkpoint may then start it again unseen) or finds the WAL
shorter than before, until the thread's next restart. A restart by SQLite's own checkpoint
that no cycle sees still inflates the count: an `every` already far too long can grow.
SQLite's own checkpoint stays on at a higher mark (``wal_autocheckpoint`` in queries.sql)
as the backstop for a burst that outruns the thread; by then the thread has usually copied
most of the WAL, so what the committing thread copies is short.

The thread speaks to the file only through SQLite (its own connection): opening the
``-shm`` or ``-wal`` file directly and closing it would drop the POSIX locks that every
SQLite connection of the process holds on it (sqlite.org/howtocorrupt.html, 2.2).

Durability is unchanged: a checkpoint only copies what the WAL holds already, and one that
is interrupted or fails leaves the WAL as it was, to be copied again.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

__all__ = ["AIM", "CATCH_UP", "START_AT", "Checkpointer"]

log = logging.getLogger("orchestrion.store")

#: A cycle that finds the WAL at least this long copies it whole and has it started
#: again; a shorter one is only copied.
START_AT = 2000
#: Pages a cycle aims to find: between `START_AT` and the backstop (queries.sql: 4,000),
#: with room for a misjudged `every` either way.
AIM = 2600
#: A pass that copied at most this many pages is short: the pages appended while it ran,
#: which the writers then wait for, are usually fewer still (plus the two fsyncs that end
#: any checkpoint).
CATCH_UP = 200
#: Passes beside the writers after the first, before leaving the catch-up to a later cycle.
_PASSES = 3
#: Bounds of `every`, in commits: the first cycle comes after `_FIRST` of them (a chain
#: hop writes about 12 pages).
_FIRST, _FEWEST, _MOST = 256, 8, 2048
#: How long `close` waits for a cycle to end (a copy is interrupted; the writer locks are
#: only ever tried, so this is a pass's last fsyncs, or this process's writer).
_JOIN_SECONDS = 30.0


class Checkpointer:
    """The checkpoints of one database file, on a daemon thread started when first
    needed (a short-lived process that commits little never starts it)."""

    def __init__(self, path: str, writers: Callable[[], AbstractContextManager[bool]]) -> None:
        """`writers()` holds every writer of the file off while it is entered, and says
        whether it could (False: the database is closed, or another process is
        writing)."""
        # Absolute: the thread connects later, and the process may change directory.
        self._path = str(Path(path).resolve())
        self._writers = writers
        self._lock = threading.Lock()  # guards the fields below against `close`
        #: Commits since the WAL last started again after a cycle, and the count at which
        #: the next cycle is due.
        self._commits = 0
        self._due = _FIRST
        #: Commits between cycles that find about `AIM` pages (adapting).
        self.every = _FIRST
        #: Whether `every` may adapt from `_commits`: no cycle since the thread's last
        #: restart left a long WAL or found it shorter than before. (A restart by SQLite's
        #: own checkpoint before the first cycle, or one the WAL has since outgrown, goes
        #: unseen.) This field and the next are the thread's alone.
        self._counted = True
        self._pages = 0  # what the last cycle found since the thread's last restart
        self._wake = threading.Event()
        self._stopping = False
        self._working = False  # a cycle is under way or about to be
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        #: Cycles that reached the writer locks, and those that left the WAL copied whole.
        self.cycles = 0
        self.caught_up = 0
        # A store dropped without `close`: its thread must not keep it alive, nor wait on.
        weakref.finalize(self, self._wake.set)

    def committed(self) -> None:
        """A write transaction committed (the committing thread calls this; cheap)."""
        self._commits += 1
        if self._commits < self._due or self._working:
            return
        with self._lock:
            if self._stopping or self._working:
                return
            self._working = True
            if self._thread is None:
                thread = threading.Thread(
                    target=_serve,
                    args=(weakref.ref(self), self._wake),
                    name="sqlite-checkpoints",
                    daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError:  # no thread to be had (shutting down): the backstop alone
                    self._stopping = True
                    return
                self._thread = thread
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (interrupting a copy under way: whoever checkpoints next begins
        it again) and close its connection. Call before the writers' connection closes,
        without holding the writer locks, so that the last connection to close is that
        one (which copies the rest and removes the WAL)."""
        with self._lock:
            self._stopping = True
            thread, conn = self._thread, self._conn
        self._wake.set()
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.interrupt()
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():
                log.warning("store.checkpoint_thread_busy_at_close")
                return
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------ the thread

    def _serve_once(self) -> None:
        """One cycle, on the thread; whatever happens, the thread goes on."""
        try:
            self._cycle()
        except Exception as exc:
            # Interrupted by close, or the disk refused: the WAL is as it was, and
            # SQLite's own checkpoint still runs at its mark.
            if not self._stopping:
                log.warning("store.checkpoint_failed", extra={"error": str(exc)})
            self._due = self._commits + self.every
        finally:
            self._working = False

    def _cycle(self) -> None:
        conn = self._connection()
        if conn is None:
            return
        commits = max(self._commits, 1)
        _, pages, done = self._pass(conn)
        if pages < 0:  # another connection's checkpoint was under way, or no WAL
            self._due = self._commits + _FEWEST
            return
        if pages < self._pages:  # started again by another checkpoint: `pages` is short
            self._counted = False
        if self._counted:
            self._adapt(commits, pages)
        restarted = pages >= START_AT and self._catch_up(conn, done)
        if restarted:
            self._commits = 0  # the next write starts the WAL again
            self._due = self.every
            self._counted, self._pages = True, 0
        else:  # it goes on from `pages`: due when it holds about AIM
            rest = (AIM - pages) * commits // max(pages, 1)
            self._due = self._commits + max(_FEWEST, min(self.every, rest))
            # A long WAL left as it is nears SQLite's own mark, whose checkpoint may start
            # it again unseen. (Adapting from such counts, a busy disk's cycles, a few
            # commits apart, each grew `every` by a quarter, up to its bound.)
            self._counted = self._counted and pages < START_AT
            self._pages = pages

    def _catch_up(self, conn: sqlite3.Connection, done: int) -> bool:
        """Copy what was appended since the first pass, until a pass got short, then the
        rest under the writer locks; whether the WAL was then copied whole."""
        for _ in range(_PASSES):
            _, pages, copied = self._pass(conn)
            if pages < 0 or self._stopping:
                return False
            short, done = copied - done <= CATCH_UP, copied
            if short:
                break
        else:
            return False  # a writer faster than the copy: a later cycle
        with self._writers() as held:
            if not held or self._stopping:
                return False
            _, pages, done = self._pass(conn)
        self.cycles += 1
        whole = 0 <= pages == done
        self.caught_up += whole
        return whole

    def _pass(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One ``PASSIVE`` checkpoint: (busy, pages in the WAL, pages copied in all)."""
        busy, pages, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(done)

    def _adapt(self, commits: int, pages: int) -> None:
        """Aim `every` at `AIM` pages: `pages` came from about `commits` commits.

        SQLite's own checkpoint may have started the WAL again since this count began,
        and then `pages` is short of what the commits wrote: a long WAL is the measure to
        trust. So `every` shrinks to the aim at once, but grows by a quarter a cycle at
        most, and from a short WAL only back to `_FIRST`."""
        if pages >= START_AT:
            aim = commits * AIM // pages
            self.every = max(_FEWEST, min(aim, _MOST, self.every + self.every // 4 + 1))
        elif self.every < _FIRST:
            self.every = min(_FIRST, self.every + self.every // 4 + 1)

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None:
            # It only checkpoints: it never writes, and it reads no table. Read-write, not
            # create: a file removed meanwhile is not made again, empty, by this.
            uri = f"file:{urllib.parse.quote(self._path)}?mode=rw"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous = NORMAL")
            with self._lock:
                if self._stopping:
                    conn.close()
                    return None
                self._conn = conn
        return self._conn


def _serve(ref: weakref.ref[Checkpointer], wake: threading.Event) -> None:
    """The thread: a cycle each time it is woken, until its checkpointer is closed or
    dropped (it holds only a weak reference, so that a store never closed can go)."""
    while True:
        wake.wait()
        wake.clear()
        checkpointer = ref()
        if checkpointer is None or checkpointer._stopping:
            return
        checkpointer._serve_once()
        del checkpointer
