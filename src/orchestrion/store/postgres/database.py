"""The PostgreSQL `Database`: a psycopg 3 connection pool, every transaction pipelined.

The roles are the shared SQL classes (`orchestrion.store.sql`), driven through `PgTx` and
`PgAdvance` (`tx.py`: placeholders, row locks for concurrent writers). What differs lives
here (the plumbing and the dialect hooks), in `claim.py` (``FOR UPDATE SKIP LOCKED``
claims, advisory locks for concurrency limits), `listen.py` (LISTEN/NOTIFY wake-ups),
`feed.py` (a gap-free event feed) and the role subclasses with their fast paths:
`runs.py` (claim, finish, heartbeat, reap; `finish.py`), `reads.py` (the history up to the
feed's horizon) and `triggers.py` (finished runs).

Failures: every database error becomes `StoreError`, so the loops that call the store back
off and try again; a deadlock or serialization failure is retried here, from the start of
the transaction. A connection found dead (after a PostgreSQL restart, or one whose
protocol state went wrong) is dropped, and the transaction tried again on another.
Migrations run at open, under an advisory lock, so several processes may start at once.
"""

from __future__ import annotations

import functools
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from orchestrion.errors import StoreError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.postgres.claim import claim as pg_claim
from orchestrion.store.postgres.feed import EventFeed
from orchestrion.store.postgres.finish import COUNTED_TO_ZERO
from orchestrion.store.postgres.listen import HISTORY_CHANNEL, WORK_CHANNEL, Listener
from orchestrion.store.postgres.queries import PG
from orchestrion.store.postgres.round_trips import TripCounter
from orchestrion.store.postgres.tx import Conn, PgAdvance, migrate, pipelined_transaction, translate
from orchestrion.store.records import LogLine
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.claim import Claimed
from orchestrion.store.sql.database import Database

__all__ = ["PostgresDatabase"]

log = logging.getLogger("orchestrion.store")

T = TypeVar("T")

#: A deadlock or serialization failure rolls the transaction back: run it again.
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 6


class PostgresDatabase(Database):
    """One PostgreSQL database (or schema, by the URL's search path), through a pool of
    this process's connections: the plumbing and dialect hooks of the SQL roles."""

    q = PG

    def __init__(self, url: str, *, max_connections: int = 10, timeout: float = 10.0) -> None:
        super().__init__(url)
        self._token = secrets.token_hex(8)
        self._listener: Listener | None = None
        self._listen_work = self._listen_history = False
        #: Round trips and statements per verb (for benchmarks).
        self.trips = TripCounter()
        #: How far event ids are final (`list_events`, the live stream).
        self.feed = EventFeed()
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5},
            timeout=timeout,
            name="orchestrion",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
            with self._pool.connection() as conn:
                migrate(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(f"cannot open PostgreSQL database: {exc}") from exc

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        if self.closed:
            raise StoreError("the store is closed")
        try:
            with self._pool.connection() as conn:
                try:
                    yield conn
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    if exc.sqlstate is None and not conn.closed:
                        # The protocol, not a statement, failed (no SQLSTATE): its state is
                        # unknown, and the pool only looks at the transaction status.
                        # Closed, it is replaced, and the caller may try again.
                        conn.close()
                    raise
        except PoolTimeout as exc:
            raise StoreError(f"no database connection: {exc}") from exc

    def transact(self, now: float, fn: Callable[[Advance], T]) -> T:
        """Run `fn` in one transaction, then wake local waiters (the transaction itself
        sent the NOTIFYs). Run again from the start after a deadlock or a serialization
        failure, or when the connection turned out dead before COMMIT was sent (the server
        rolled the transaction back): after a PostgreSQL restart the pool's idle
        connections are all dead, and this finds out at the cost of one failed BEGIN
        instead of a check before every use."""
        for attempt in range(_ATTEMPTS):
            committing = False
            conn: Conn | None = None
            try:
                with (
                    self._connection() as conn,
                    pipelined_transaction(conn, self.trips.add) as tx,
                ):
                    adv = PgAdvance(tx, functools.partial(self.spec_in, tx), now)
                    adv.token = self._token
                    result = fn(adv)
                    work = bool(adv.newly_ready or adv.run_changed)
                    channels = [WORK_CHANNEL] * work + [HISTORY_CHANNEL] * adv.wrote_events
                    adv.flush(channels)
                    committing = True
            except _RETRIED as exc:
                if attempt == _ATTEMPTS - 1:
                    raise StoreError(f"database error after {_ATTEMPTS} tries: {exc}") from exc
                log.info("store.retry", extra={"error": str(exc).splitlines()[0]})
                time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
                continue
            except psycopg.Error as exc:
                if exc.sqlstate == COUNTED_TO_ZERO and attempt < _ATTEMPTS - 1:
                    continue  # rolled back; the finish runs again the full way
                if self._reconnect(conn, exc) and not committing and attempt < _ATTEMPTS - 1:
                    continue
                raise StoreError(f"database error: {exc}") from exc
            if work:
                self.signals.work()
            if adv.wrote_events:
                self.signals.history()
            return result
        raise AssertionError("unreachable")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement in autocommit (also a single-statement write: atomic by itself,
        and each of ours is idempotent, so it is sent again on a fresh connection when
        the first one turns out dead). A statement without a result gives no rows."""
        for attempt in range(2):
            conn: Conn | None = None
            try:
                with self._connection() as conn:
                    self.trips.add(1, 1)
                    cur = conn.execute(translate(sql), tuple(params))
                    return cur.fetchall() if cur.description is not None else []
            except psycopg.Error as exc:
                if attempt == 0 and self._reconnect(conn, exc):
                    continue
                raise StoreError(f"database error: {exc}") from exc
        raise AssertionError("unreachable")

    def _reconnect(self, conn: Conn | None, exc: psycopg.Error) -> bool:
        """True when `exc` came from a dead connection: the pool has dropped it, and now
        tests its idle ones too (a restart killed them all)."""
        dead = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        if conn is None or not conn.closed or not dead:
            return False
        log.warning("store.reconnect", extra={"error": str(exc).strip().splitlines()[0:1]})
        self._pool.check()
        return True

    # ------------------------------------------------------------------ wake-ups

    def _on_work(self) -> None:
        if self._listen_work:
            self.signals.work()

    def _on_history(self) -> None:
        if self._listen_history:
            self.signals.history()

    def listen(self, *, work: bool, history: bool) -> None:
        """Be woken by other processes' commits too (LISTEN/NOTIFY on a connection of its
        own): workers listen for work, the API server for history."""
        self._listen_work |= work
        self._listen_history |= history
        # Only the channels wanted: a worker is not woken by every history write.
        handlers = {
            channel: handler
            for channel, handler, wanted in (
                (WORK_CHANNEL, self._on_work, self._listen_work),
                (HISTORY_CHANNEL, self._on_history, self._listen_history),
            )
            if wanted
        }
        if self.closed or not handlers:
            return
        if self._listener is not None:
            if self._listener.channels == set(handlers):
                return
            self._listener.stop()  # a channel more: listen again, on both
        self._listener = Listener(self.url, handlers, self._token)
        self._listener.start()

    def close(self) -> None:
        """Stop the listener and close the pool; wake every waiter."""
        if self.closed:
            return
        self.closed = True
        if self._listener is not None:
            self._listener.stop()
        self._pool.close()
        self.signals.work()

    # ------------------------------------------------------------------ dialect hooks

    def latest_rows(self, query: str) -> list[Any]:
        """The rows sorted by name in code points, as SQLite orders them (``DISTINCT ON``
        orders by the database's collation)."""
        rows = self.read(query)
        return sorted(rows, key=lambda r: str(r["name"]))  # code point order, as SQLite

    def upsert_workflow(
        self, adv: Advance, spec: WorkflowSpec, source: str | None, now: float
    ) -> bool:
        """Insert unless there (``ON CONFLICT``: concurrent registrations of one version
        both succeed, one of them creates it)."""
        row = adv.tx.execute(
            PG.insert_workflow, (spec.name, spec.version, spec.to_json(), source, now)
        ).fetchone()
        if row is not None:
            data = {"workflow": spec.name, "version": spec.version}
            adv.event(None, None, "workflow.registered", data=data)
        elif source is not None:
            adv.tx.execute(PG.set_workflow_source, (source, spec.name, spec.version, source))
        return row is not None

    def claim(
        self,
        adv: Advance,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        until: float,
        labels: Mapping[str, str] | None,
    ) -> Claimed:
        """The locked claim of `postgres.claim` (``FOR UPDATE SKIP LOCKED``)."""
        return pg_claim(cast(PgAdvance, adv), worker_id, queues, limit, until, labels)

    def queue_filter(self, queues: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """``= ANY(?)`` with the queues as one array parameter."""
        return PG.in_queues, (list(queues),)

    def write_one(self, now: float, sql: str, params: Sequence[Any]) -> None:
        """In autocommit: one statement is atomic by itself (and it is idempotent)."""
        self.read(sql, params)

    def insert_logs(self, adv: Advance, lines: Sequence[LogLine]) -> None:
        """One statement for every line: an array per column, through ``unnest``."""
        adv.tx.execute(
            PG.insert_logs,
            [
                [x.run_id for x in lines],
                [x.task_run_id for x in lines],
                [x.attempt for x in lines],
                [x.at for x in lines],
                [x.stream for x in lines],
                [x.line for x in lines],
            ],
        )
