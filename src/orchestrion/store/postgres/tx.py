"""The PostgreSQL side of the shared transactional code (`sql/advance.py`, `lifecycle.py`,
`trigger_verbs.py`, `claim.py`): a `Tx` over a psycopg connection, the `Advance`
hooks that concurrent writers need, and the migrations.

**Locking rule.** SQLite runs one writer at a time; PostgreSQL runs writers concurrently
under READ COMMITTED. Counter updates (``waiting = waiting - 1 ... RETURNING``) and guarded
compare-and-sets are safe as they are; a read that a decision rests on is not. So on
PostgreSQL every transaction that changes a run's task runs locks the **run row first**:

- reporting or reaping an attempt (`PgAdvance.task_row`) takes ``FOR KEY SHARE``: the
  finishers of one run go on in parallel and meet on the counter rows they update, always
  in the order task run -> downstream or group rows -> run row;
- deciding about the run as a whole (`Advance.run_row`: cancel, retry, rerun) takes
  ``FOR UPDATE``, which waits for every finisher in flight and keeps new ones out, so a
  cancel sees every task run, including mapped items another transaction just inserted.

Row reads that precede a change within one run (a cancel's task runs, a queued run to
admit, a queued fire, a backfill) use ``FOR UPDATE`` through `Advance.for_update`, and
admission under ``max_active_runs`` is serialised per workflow by an advisory lock.
Claims and heartbeats only move a task run's own lease; they lock just those rows
(claims with ``SKIP LOCKED``) and never wait for a run. Whatever cycles remain (a parent
run canceled while its child finishes) end in a deadlock error that the store answers by
running the whole transaction again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg import pq

from orchestrion.states import TaskEvent
from orchestrion.store.postgres.queries import PG
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.queries import Q

__all__ = [
    "ADMISSION_LOCKS",
    "CONCURRENCY_LOCKS",
    "Conn",
    "PgAdvance",
    "PgTx",
    "migrate",
    "pipelined_transaction",
    "translate",
]

Conn = psycopg.Connection[dict[str, Any]]

_MIGRATIONS = Path(__file__).parents[1] / "migrations" / "postgres"
#: ``pg_advisory_xact_lock`` key held while migrating (any process, any schema).
_MIGRATION_LOCK = 7_300_000_001

#: Advisory lock namespaces (the first key of ``pg_advisory_xact_lock(int, int)``).
CONCURRENCY_LOCKS = 7301
ADMISSION_LOCKS = 7302

_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s``, and every literal ``%`` doubled. A ``?``
    inside a quoted string literal stays as it is."""
    done = _translated.get(sql)
    if done is not None:
        return done
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted  # an escaped '' toggles twice
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    done = "".join(out)
    if len(_translated) < 8192:  # the IN (?, ?, ...) lists vary; the rest is fixed text
        _translated[sql] = done
    return done


def migrate(conn: Conn, *, until: str | None = None) -> list[str]:
    """Apply the migrations that `conn`'s schema lacks (up to and including `until`), in
    one transaction under an advisory lock; returns the versions applied."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute(translate(PG.migration_lock), (_MIGRATION_LOCK,))
        conn.execute(PG.create_schema_migrations)
        done = {r["version"] for r in conn.execute(Q.applied_versions)}
        for file in sorted(_MIGRATIONS.glob("*.sql")):
            if until is not None and file.stem > until:
                break
            if file.stem in done:
                continue
            for statement in _statements(file.read_text()):
                conn.execute(statement)  # no parameters: no placeholder parsing
            conn.execute(translate(PG.record_migration), (file.stem,))
            applied.append(file.stem)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration file into statements at a ``;`` that ends a line, except inside a
    ``$$``-quoted function body (no other text in our migrations holds a ``;``)."""
    statements: list[str] = []
    pending: list[str] = []
    in_body = False
    for line in script.splitlines():
        if line.strip().startswith("--") or not (pending or line.strip()):
            continue
        pending.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            statements.append("\n".join(pending).strip().rstrip(";"))
            pending = []
    rest = "\n".join(pending).strip()
    return [s for s in [*statements, rest] if s]


@contextmanager
def pipelined_transaction(
    conn: Conn, count: Callable[[int, int], None] = lambda trips, statements: None
) -> Iterator[PgTx]:
    """One transaction in pipeline mode, BEGIN and COMMIT sent as plain statements: the
    BEGIN travels with the first statement whose result is waited for, and the COMMIT
    with the statements queued last (the event rows), in the pipeline's closing sync. So a
    transaction of one read and some writes costs two round trips. (psycopg's
    ``transaction()`` would sync after BEGIN and again before COMMIT.) On any error the
    transaction is rolled back once the pipeline is closed (or the connection closed, if
    the pipeline cannot be). `count` is told the round trips and statements it took,
    whatever the end."""
    tx = PgTx(conn, None)
    try:
        with conn.pipeline() as pipe:
            tx.pipeline = pipe
            tx.queue(PG.begin)
            yield tx
            tx.queue(Q.commit)
            tx.round_trips += 1  # the closing sync waits for the COMMIT
    except BaseException:
        if not conn.closed and conn.pgconn.pipeline_status != pq.PipelineStatus.OFF:
            # The pipeline could not be closed: the connection's protocol state is unknown,
            # and the pool (which only looks at the transaction status) would hand it out
            # again. Closed, the pool replaces it.
            conn.close()
        elif not conn.closed and conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            tx.round_trips += 1
            with suppress(psycopg.Error):
                conn.execute(Q.rollback)
        raise
    finally:
        count(tx.round_trips, tx.statements)


class PgTx:
    """`orchestrion.store.sql.advance.Tx` over one psycopg connection (dict rows), inside the
    transaction the store opened, in pipeline mode when `pipeline` is given.

    `execute` waits for its result (one round trip, which also carries the BEGIN and any
    statement queued before it); `queue` sends a statement without waiting, for writes
    whose result nobody reads (its errors surface at the next wait, at the latest the
    COMMIT, and abort the transaction as usual). Counts round trips for measurements."""

    def __init__(self, conn: Conn, pipeline: psycopg.Pipeline | None = None) -> None:
        self.conn = conn
        self.pipeline = pipeline
        self.statements = 0
        self.round_trips = 0

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        """Send and wait: one round trip, which also carries whatever was queued."""
        cur = self.queue(sql, params)
        self.wait()
        return cur

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        """One statement per parameter row, sent together, then waited for."""
        self.statements += 1
        cur = self.conn.cursor()
        cur.executemany(translate(sql), [tuple(p) for p in params])
        self.wait()
        return cur

    def queue(self, sql: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        """Send without waiting (outside pipeline mode: send and wait)."""
        self.statements += 1
        if self.pipeline is None:
            self.round_trips += 1
        return self.conn.execute(translate(sql), tuple(params))

    def wait(self) -> None:
        """Wait for every result sent so far (rowcounts included): one round trip."""
        if self.pipeline is not None:
            self.round_trips += 1
            self.pipeline.sync()

    def queue_expecting(self, update: str, params: Sequence[Any], rows: int, what: str, /) -> Any:
        """`queue` a guarded ``UPDATE`` (no RETURNING) that must move exactly `rows` rows:
        the server checks it (``orchestrion_expect_rows``, migration 0010) and fails the
        transaction otherwise, so the COMMIT queued behind it rolls back. No wait."""
        return self.queue(PG.expect_rows.fill(update=update), (*params, rows, what))


class PgAdvance(Advance):
    """`Advance` with PostgreSQL's row locks (see the module docstring), and the event rows
    and notifications written in one statement at the end of the transaction."""

    #: ``NOTIFY`` payload: the sending store's token, so its own listener ignores it.
    token = ""

    def for_update(self, *, skip_locked: bool = False) -> str:
        """Lock the rows read (see the module docstring's locking rule)."""
        return " " + (PG.for_update_skip_locked if skip_locked else PG.for_update)

    def lock_admission(self, workflow: str) -> None:
        """A transaction advisory lock per workflow, held until commit."""
        self.tx.execute(PG.lock_admission, (ADMISSION_LOCKS, workflow))

    def cas_held(
        self, row: Any, event: TaskEvent, data: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """Queued: the row is locked by this transaction, so the update cannot miss; the
        server checks that it moved (`PgTx.queue_expecting`)."""
        sql, params = self.task_move(row, event, fields)
        cast(PgTx, self.tx).queue_expecting(sql, params, 1, f"task run {row['id']} {event.value}")
        self.task_moved(row, event, data)

    def task_row(self, task_run_id: int) -> Any:
        """The task run, locked, after a share lock on its run; None if missing."""
        return self.tx.execute(PG.task_row, (task_run_id, task_run_id)).fetchone()

    def flush(self, channels: Sequence[str] = ()) -> None:
        """Write the buffered event rows and send `channels`' notifications (delivered at
        commit) in one statement, queued: it travels with the COMMIT."""
        tx = cast(PgTx, self.tx)
        if not self._events:
            if channels:
                tx.queue(PG.notify, (self.token, list(channels)))
            return
        cols = [list(c) for c in zip(*self._events, strict=True)]
        self._events.clear()
        tx.queue(PG.insert_events_and_notify, (*cols, self.token, list(channels)))
