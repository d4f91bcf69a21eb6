"""The PostgreSQL `Store`: a psycopg 3 connection pool, every verb one transaction.

The verbs are `SqlStore`'s (`sql_store.py`, `sql_triggers.py`), shared with SQLite, over
the dialect-free transactional code (`advance.py`, `lifecycle.py`, `trigger_verbs.py`,
`queries.py`), driven through `PgTx` and `PgAdvance` (`postgres_tx.py`: placeholders, row
locks for concurrent writers). What differs lives here (the hooks and the verbs run
differently) and in `postgres_claim.py` (``FOR UPDATE SKIP LOCKED`` claims, advisory locks
for concurrency limits) and `postgres_listen.py` (LISTEN/NOTIFY wake-ups).

Failures: every database error becomes `StoreError`, so the loops that call the store back
off and try again; a deadlock or serialization failure is retried here, from the start of
the transaction. The pool checks a connection before handing it out and reconnects after
a PostgreSQL restart. Migrations run at open, under an advisory lock, so several processes
may start at once.
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
from orchestrion.store import (
    lifecycle,
    postgres_claim,
    postgres_finish,
    queries,
    trigger_queries,
)
from orchestrion.store.advance import Advance
from orchestrion.store.base import (
    Claim,
    EventRecord,
    FinishedRun,
    FinishResult,
    LogLine,
    Outcome,
)
from orchestrion.store.postgres_feed import EventFeed
from orchestrion.store.postgres_finish import TaskFacts
from orchestrion.store.postgres_listen import HISTORY_CHANNEL, WORK_CHANNEL, Listener
from orchestrion.store.postgres_tx import (
    Conn,
    PgAdvance,
    migrate,
    pipelined_transaction,
    translate,
)
from orchestrion.store.queries import Claimed
from orchestrion.store.round_trips import TripCounter
from orchestrion.store.sql_store import SqlStore

__all__ = ["PostgresStore"]

log = logging.getLogger("orchestrion.store")

T = TypeVar("T")

#: A deadlock or serialization failure rolls the transaction back: run it again.
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 6
#: How many claimed task runs' `TaskFacts` a store remembers for their finish.
_FACTS_KEPT = 100_000


class PostgresStore(SqlStore):
    """See `orchestrion.store.base.Store` for the contract of every method; the shared
    verbs are `SqlStore`'s."""

    _SEQ = "seq"
    _WORKER_ORDER = "started_at, id"

    def __init__(self, url: str, *, max_connections: int = 10, timeout: float = 10.0) -> None:
        super().__init__()
        self.url = url
        self._token = secrets.token_hex(8)
        self._listener: Listener | None = None
        self._listen_work = self._listen_history = False
        #: Round trips and statements per verb (for benchmarks).
        self.trips = TripCounter()
        #: How far event ids are final (`list_events`, the live stream).
        self.feed = EventFeed()
        #: What the finish of a task run claimed here needs to know (`postgres_finish`).
        self._facts: dict[int, TaskFacts] = {}
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
        if self._closed:
            raise StoreError("the store is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(f"no database connection: {exc}") from exc

    def _transact(self, now: float, fn: Callable[[Advance], T]) -> T:
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
                    adv = PgAdvance(tx, functools.partial(self._spec_in, tx), now)
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
                if exc.sqlstate == postgres_finish.COUNTED_TO_ZERO and attempt < _ATTEMPTS - 1:
                    continue  # rolled back; the finish runs again the full way
                if self._reconnect(conn, exc) and not committing and attempt < _ATTEMPTS - 1:
                    continue
                raise StoreError(f"database error: {exc}") from exc
            if work:
                self._notify_local()
            if adv.wrote_events:
                self._notify_history()
            return result
        raise AssertionError("unreachable")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement in autocommit (also a single-statement write: atomic by itself,
        and each of ours is idempotent, so it is sent again on a fresh connection when
        the first one turns out dead)."""
        for attempt in range(2):
            conn: Conn | None = None
            try:
                with self._connection() as conn:
                    self.trips.add(1, 1)
                    return conn.execute(translate(sql), tuple(params)).fetchall()
            except psycopg.Error as exc:
                if attempt == 0 and self._reconnect(conn, exc):
                    continue
                raise StoreError(f"database error: {exc}") from exc
        raise AssertionError("unreachable")

    def _reconnect(self, conn: Conn | None, exc: psycopg.Error) -> bool:
        """True when `exc` came from a dead connection: the pool has dropped it, and now
        tests its idle ones too (a restart killed them all)."""
        if conn is None or not conn.closed or not isinstance(exc, psycopg.OperationalError):
            return False
        log.warning("store.reconnect", extra={"error": str(exc).strip().splitlines()[0:1]})
        self._pool.check()
        return True

    # ------------------------------------------------------------------ wake-ups

    def _notify(self) -> None:
        self._notify_local()

    def _on_work(self) -> None:
        if self._listen_work:
            self._notify_local()

    def _on_history(self) -> None:
        if self._listen_history:
            self._notify_history()

    def listen(self, *, work: bool = True, history: bool = False) -> None:
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
        if self._closed or not handlers:
            return
        if self._listener is not None:
            if self._listener.channels == set(handlers):
                return
            self._listener.stop()  # a channel more: listen again, on both
        self._listener = Listener(self.url, handlers, self._token)
        self._listener.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        self._pool.close()
        self._notify_local()

    # ------------------------------------------------------------------ dialect hooks

    def _latest_rows(self, cols: str) -> list[Any]:
        rows = self._read(
            f"SELECT DISTINCT ON (name) {cols} FROM workflows"
            " ORDER BY name, created_at DESC, seq DESC"
        )
        return sorted(rows, key=lambda r: str(r["name"]))  # code point order, as SQLite

    def _upsert_workflow(
        self, adv: Advance, spec: WorkflowSpec, source: str | None, now: float
    ) -> bool:
        row = adv.tx.execute(
            "INSERT INTO workflows (name, version, spec, source, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, version) DO NOTHING RETURNING name",
            (spec.name, spec.version, spec.to_json(), source, now),
        ).fetchone()
        if row is not None:
            data = {"workflow": spec.name, "version": spec.version}
            adv.event(None, None, "workflow.registered", data=data)
        elif source is not None:
            adv.tx.execute(
                "UPDATE workflows SET source = ? WHERE name = ? AND version = ?"
                " AND source IS DISTINCT FROM ?",
                (source, spec.name, spec.version, source),
            )
        return row is not None

    def _claim(
        self,
        adv: Advance,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        until: float,
        labels: Mapping[str, str] | None,
    ) -> Claimed:
        return postgres_claim.claim(cast(PgAdvance, adv), worker_id, queues, limit, until, labels)

    def _queue_filter(self, queues: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        return "= ANY(?)", (list(queues),)

    def _write_one(self, now: float, sql: str, params: Sequence[Any]) -> None:
        # One statement, so autocommit makes it atomic (and it is idempotent).
        self._read(sql + " RETURNING id", params)

    def _insert_logs(self, adv: Advance, lines: Sequence[LogLine]) -> None:
        adv.tx.execute(
            "INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line)"
            " SELECT * FROM unnest(?::text[], ?::bigint[], ?::int[], ?::float8[],"
            " ?::text[], ?::text[])",
            [
                [x.run_id for x in lines],
                [x.task_run_id for x in lines],
                [x.attempt for x in lines],
                [x.at for x in lines],
                [x.stream for x in lines],
                [x.line for x in lines],
            ],
        )

    # ------------------------------------------------------------------ verbs run differently

    def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: float,
        labels: Mapping[str, str] | None = None,
    ) -> list[Claim]:
        with self.trips.verb("claim") as items:
            claims = super().claim(
                worker_id=worker_id,
                queues=queues,
                limit=limit,
                lease_seconds=lease_seconds,
                now=now,
                labels=labels,
            )
            items.append(len(claims))
        self._remember(claims)
        return claims

    def _remember(self, claims: Sequence[Claim]) -> None:
        if len(self._facts) > _FACTS_KEPT:
            self._facts.clear()  # outcomes never reported (released, reaped): start afresh
        for c in claims:
            self._facts[c.task_run_id] = TaskFacts(
                c.run_id, c.workflow, c.version, c.task_name, c.kind
            )

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        return self._finish_then(outcomes, now, None)[0]

    def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        *,
        now: float,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[FinishResult, list[Claim]]:
        until = now + lease_seconds
        self._claimed_at.seq = self._change_seq

        def claim(adv: Advance) -> Claimed:
            return self._claim(adv, worker_id, queues, limit, until, labels)

        result, claims = self._finish_then(outcomes, now, claim if limit > 0 else None)
        self._remember(claims)
        return result, claims

    def _finish_then(
        self,
        outcomes: Sequence[Outcome],
        now: float,
        then: Callable[[Advance], Claimed] | None,
    ) -> tuple[FinishResult, list[Claim]]:
        """Finish `outcomes`; if that made work ready, `then` claims in the same
        transaction."""
        known = {o.task_run_id: f for o in outcomes if (f := self._facts.get(o.task_run_id))}
        tries: list[bool] = []

        def fn(adv: Advance) -> tuple[list[int], list[int], int, Claimed | None]:
            # Optimistic the first time only (see `postgres_finish.finish`).
            applied, superseded = postgres_finish.finish(adv, outcomes, known, optimistic=not tries)
            tries.append(True)
            ready = adv.newly_ready
            claimed = None
            if then is not None and ready:
                claimed = then(adv)
                # What this worker took wakes nobody (no NOTIFY, no local wake-up).
                adv.newly_ready = max(0, ready - claimed.taken)
            return applied, superseded, ready, claimed

        with self.trips.verb("finish") as items:
            items.append(len(outcomes))
            applied, superseded, ready, claimed = self._transact(now, fn)
        claims = claimed.build() if claimed is not None else []
        for o in outcomes:
            self._facts.pop(o.task_run_id, None)
        if applied and not (then is not None and ready):
            self._notify_local()  # a finish may free a concurrency slot that claims wait on
        result = FinishResult(
            applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready
        )
        return result, claims

    def heartbeat(
        self,
        *,
        worker_id: str,
        leases: Sequence[tuple[int, int]],
        lease_seconds: float,
        now: float,
    ) -> list[int]:
        if not leases:
            return []
        with self.trips.verb("heartbeat") as items:
            items.append(len(leases))
            return self._heartbeat(worker_id, leases, lease_seconds, now)

    def _heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, int]], lease_seconds: float, now: float
    ) -> list[int]:
        # One statement, so autocommit makes it atomic. Fenced by (owner, epoch).
        rows = self._read(
            "UPDATE task_runs t SET lease_expires_at = ? FROM unnest(?::bigint[], ?::bigint[])"
            " AS l(id, epoch) WHERE t.id = l.id AND t.lease_epoch = l.epoch"
            " AND t.lease_owner = ? AND t.state = 'running' RETURNING t.id, t.lease_epoch",
            (now + lease_seconds, [tr for tr, _ in leases], [e for _, e in leases], worker_id),
        )
        held = {(r["id"], r["lease_epoch"]) for r in rows}
        return [tr for tr, epoch in leases if (tr, epoch) not in held]

    def reap_expired(self, *, now: float) -> int:
        expired = self._read(
            "SELECT id FROM task_runs WHERE state = 'running' AND lease_expires_at < ? ORDER BY id",
            (now,),
        )

        def reap(adv: Advance, task_run_id: int) -> int:
            row = adv.task_row(task_run_id)  # locked; then check it is still expired
            if row is None or row["state"] != "running" or not row["lease_expires_at"] < now:
                return 0  # finished, reaped by someone else, or its heartbeat came in time
            lifecycle.apply_lost(adv, row)
            return 1

        # One transaction per task run: a reaper never holds the locks of two runs.
        return sum(
            self._transact(now, functools.partial(reap, task_run_id=r["id"])) for r in expired
        )

    def list_events(
        self, run_id: str | None = None, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        # Only up to the feed's horizon: a cursor never passes an id still committing.
        horizon = self.feed.horizon(self._read, after_id)
        if run_id is None:
            rows = self._read(
                "SELECT * FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (after_id, horizon, limit),
            )
        else:
            rows = self._read(
                "SELECT * FROM events WHERE run_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                (run_id, after_id, horizon, limit),
            )
        return [queries.event_record(r) for r in rows]

    def last_event_id(self) -> int:
        return self.feed.horizon(self._read)

    def finished_runs(self, after: int, *, limit: int = 500) -> tuple[list[FinishedRun], int]:
        def fn(adv: Advance) -> tuple[list[FinishedRun], int]:
            # Event ids are drawn at insert, not at commit: below the newest id, a row of a
            # transaction still running may appear later. SHARE mode waits for every
            # transaction that wrote events to end (and holds new writers back for these
            # two reads), so every id up to the max read here is final.
            adv.tx.execute("LOCK TABLE events IN SHARE MODE")
            return trigger_queries.finished_runs(
                lambda sql, params: list(adv.tx.execute(sql, params).fetchall()), after, limit
            )

        return self._transact(0.0, fn)
