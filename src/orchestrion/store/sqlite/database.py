"""The SQLite `Database`: WAL, one writer at a time (`BEGIN IMMEDIATE`), a busy timeout.

Durability: WAL with ``synchronous=NORMAL`` survives any process crash (SIGKILL included);
only an operating-system crash or power loss may drop the last transactions.

Within one process, a lock serialises use of the single connection and a condition
variable wakes idle workers the moment a transaction makes a task run ready. Other
processes queue on a file lock before SQLite's own, and are woken by datagrams
(`wake.Waker`) or find new work by polling.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from orchestrion.errors import StoreError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import LogLine
from orchestrion.store.sql import claim as shared_claim
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q
from orchestrion.store.sqlite.checkpoints import Checkpointer
from orchestrion.store.sqlite.queries import SQLITE
from orchestrion.store.sqlite.wake import Waker

__all__ = ["SqliteDatabase", "migrate", "path_from_url"]

log = logging.getLogger("orchestrion.store")

T = TypeVar("T")

_MIGRATIONS = Path(__file__).parents[1] / "migrations" / "sqlite"
#: The whole current schema; an empty database is made from it (`_create`).
_SCHEMA = Path(__file__).with_name("schema.sql")


def path_from_url(url: str) -> str:
    """The file path of a ``sqlite:///path`` URL (or of a bare path)."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :]
    return url


def migrate(conn: sqlite3.Connection, *, until: str | None = None) -> list[str]:
    """Apply the migrations that `conn`'s database lacks (up to and including `until`), in
    one ``BEGIN IMMEDIATE`` transaction; returns the versions applied. Other processes are
    kept out by the caller (`SqliteDatabase` holds its writer lock).

    An empty database, when no `until` is given, is built from `schema.sql` instead, with
    every migration recorded as applied (`_create`)."""
    applied: list[str] = []
    files = sorted(_MIGRATIONS.glob("*.sql"))
    conn.execute(SQLITE.begin_immediate)
    try:
        if until is None and conn.execute(SQLITE.any_schema).fetchone() is None:
            applied = _create(conn, [file.stem for file in files])
        else:
            conn.execute(SQLITE.create_schema_migrations)
            done = {r[0] for r in conn.execute(Q.applied_versions)}
            for file in files:
                if until is not None and file.stem > until:
                    break
                if file.stem in done:
                    continue
                for statement in _statements(file.read_text()):
                    conn.execute(statement)
                conn.execute(SQLITE.record_migration, (file.stem,))
                applied.append(file.stem)
        conn.execute(Q.commit)
    except BaseException:
        _rollback(conn)
        raise
    return applied


def _create(conn: sqlite3.Connection, versions: list[str]) -> list[str]:
    """Build an empty database from `schema.sql`, the current schema in one script, and
    record every migration (`versions`) as applied; returns them.

    Every `orchestrion run --db NEW` starts here. The migrations replay the schema's
    history (tables made, copied aside, made again, indexes dropped and merged): 21 ms a
    fresh database on the bench machine, against 9 ms for the final schema alone.
    `tests/contract/test_migrations.py` checks that both build one catalog, column order
    and triggers included, and that a database migrated from any release equals a fresh
    one. No migration writes rows of its own, so there is no data to replay either."""
    for statement in _statements(_SCHEMA.read_text()):
        conn.execute(statement)
    conn.executemany(SQLITE.record_migration, [(v,) for v in versions])
    return versions


def _private_file(path: Path) -> None:
    """Make the database file owner-only (0600) before SQLite opens it, and each folder on
    its way that does not exist yet 0700: it holds sealed secrets, password hashes and the
    audit log. SQLite gives the ``-wal`` and ``-shm`` files the database file's mode. A file
    or folder that exists already keeps the mode its owner gave it."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it just now
            folder.mkdir(mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _open_lock(path: str) -> io.BufferedRandom:
    """The writer lock file, created owner-only like the database beside it."""
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+b")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already.

    On some errors (a full disk, an I/O error, out of memory) SQLite rolls the transaction
    back by itself; a ROLLBACK then fails with "cannot rollback - no transaction is active",
    which would hide the real error and escape as a raw sqlite3 error.
    """
    if not conn.in_transaction:
        return
    try:
        conn.execute(Q.rollback)
    except sqlite3.Error:
        log.warning("store.rollback_failed", exc_info=True)


class SqliteDatabase(Database):
    """One SQLite file, opened (and migrated) by this process: the plumbing and dialect
    hooks of the SQL roles (`orchestrion.store.sql`)."""

    q = SQLITE

    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = path_from_url(url)
        try:
            if path != ":memory:":
                _private_file(Path(path))
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        # Writers from every process queue on this lock before BEGIN IMMEDIATE, so SQLite's
        # own busy handler (which sleeps up to 100 ms between tries) never has to wait.
        self._lock_file = None if path == ":memory:" else _open_lock(f"{path}.lock")
        self._lock = threading.RLock()
        self._waker = None if path == ":memory:" else Waker(Path(path).resolve().parent / ".wake")
        self._checkpoints = None if path == ":memory:" else Checkpointer(path, self._writers_held)
        self._conn.executescript(SQLITE.connection_setup)
        self._migrate()

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _exclusive(self, *, wait: bool = True) -> Iterator[bool]:
        """The cross-process writer lock (an flock on ``<db>.lock``); yields whether it is
        held (without `wait`, False when another process holds it)."""
        if self._lock_file is None:
            yield True
            return
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _writers_held(self) -> Iterator[bool]:
        """Hold off every writer of the file, this process's and the others'; yields
        whether it does. It only tries the cross-process lock: it yields False rather than
        wait for another process's writer (with this process's lock, which its readers
        share, held meanwhile), and False once the database is closed."""
        with self._lock:
            if self.closed:
                yield False
                return
            with self._exclusive(wait=False) as held:
                yield held

    def _migrate(self) -> None:
        with self._lock, self._exclusive():
            migrate(self._conn)

    @contextlib.contextmanager
    def write(self, now: float) -> Iterator[Advance]:
        """One write transaction; yields the `Advance` that applies changes within it."""
        if self.closed:
            raise StoreError("the store is closed")
        with self._lock, self._exclusive():
            try:
                self._conn.execute(SQLITE.begin_immediate)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a write transaction: {exc}") from exc
            adv = Advance(self._conn, functools.partial(self.spec_in, self._conn), now)
            try:
                yield adv
                adv.flush()
                self._conn.execute(Q.commit)
            except sqlite3.Error as exc:
                _rollback(self._conn)
                raise StoreError(f"database error: {exc}") from exc
            except BaseException:
                _rollback(self._conn)
                raise
        if self._checkpoints is not None:
            self._checkpoints.committed()
        work = bool(adv.newly_ready or adv.run_changed)
        if work:
            self.signals.work()
        if adv.wrote_events:
            self.signals.history()
        if self._waker is not None:
            self._waker.ping(work=work, history=adv.wrote_events)

    def transact(self, now: float, fn: Callable[[Advance], T]) -> T:
        """`fn` in one `write` transaction (``BEGIN IMMEDIATE`` under the writer lock)."""
        with self.write(now) as adv:
            return fn(adv)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement on the shared connection; WAL lets it run beside a writer."""
        if self.closed:
            raise StoreError("the store is closed")
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"database error: {exc}") from exc

    def listen(self, *, work: bool, history: bool) -> None:
        """Be woken by other processes' commits too: workers listen for work, the API server
        for history (its live event stream)."""
        if self._waker is not None:
            self._waker.listen(
                self.signals.work if work else None, self.signals.history if history else None
            )

    def close(self) -> None:
        """Close the connection, the lock file and the wake-up socket; wake every waiter."""
        if self._checkpoints is not None:
            self._checkpoints.close()  # first: its thread may be waiting for the lock
        with self._lock:
            if not self.closed:
                self.closed = True
                self._conn.close()
                if self._lock_file is not None:
                    self._lock_file.close()
                if self._waker is not None:
                    self._waker.close()
        self.signals.work()

    # ------------------------------------------------------------------ dialect hooks

    def latest_rows(self, query: str) -> list[Any]:
        """The rows as read: the query orders them by name, in code points already."""
        return self.read(query)

    def upsert_workflow(
        self, adv: Advance, spec: WorkflowSpec, source: str | None, now: float
    ) -> bool:
        """Look, then insert: with one writer at a time nothing can come between."""
        known = adv.tx.execute(Q.workflow_known, (spec.name, spec.version)).fetchone()
        if known is None:
            adv.tx.execute(
                SQLITE.insert_workflow, (spec.name, spec.version, spec.to_json(), source, now)
            )
            adv.event(
                None,
                None,
                "workflow.registered",
                data={"workflow": spec.name, "version": spec.version},
            )
        elif source is not None:
            adv.tx.execute(SQLITE.set_workflow_source, (source, spec.name, spec.version))
        return known is None

    def claim(
        self,
        adv: Advance,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        until: float,
        labels: Mapping[str, str] | None,
    ) -> shared_claim.Claimed:
        """The shared claim, as it is: one writer, so its counts cannot change under it."""
        claims = shared_claim.claim(adv, worker_id, queues, limit, until, labels)
        return shared_claim.Claimed(len(claims), lambda: claims)

    def queue_filter(self, queues: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """``IN (?, ...)``, one parameter per queue."""
        return SQLITE.in_queues.fill(marks=marks(len(queues))), tuple(queues)

    def write_one(self, now: float, sql: str, params: Sequence[Any]) -> None:
        """A write transaction of its own (SQLite writes only in one)."""
        with self.write(now) as adv:
            adv.tx.execute(sql, params)

    def insert_logs(self, adv: Advance, lines: Sequence[LogLine]) -> None:
        """One row per line (executemany: in process, so no round trips to save)."""
        adv.tx.executemany(
            SQLITE.insert_logs,
            [(x.run_id, x.task_run_id, x.attempt, x.at, x.stream, x.line) for x in lines],
        )


def _statements(script: str) -> list[str]:
    """Split a migration file into statements; a trigger body's inner ``;`` does not end one
    (`sqlite3.complete_statement` knows ``BEGIN ... END``)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") or not (pending or line.strip()):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return [s for s in statements if s]
