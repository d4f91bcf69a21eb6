"""Fill a real database with many finished runs fast, for the retention tests and bench.

Rows go in through SQL, not the worker: 50,000 runs with a task run, an attempt, two
events and two log lines each take a few seconds this way. Runs are written by
``executemany``; everything they own by ``INSERT ... SELECT`` over the runs of one batch
(named by a one-character tag inside their ids, after the 12 hex digits of the creation
milliseconds real ids start with).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg

__all__ = ["Db", "fill"]


class Db:
    """A plain connection to the test database (SQLite file or PostgreSQL schema), beside
    the App's own, with ``?`` placeholders on both."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgresql")
        if self.pg:
            self._pg = psycopg.connect(url, autocommit=True)
        else:
            self._lite = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
            self._lite.isolation_level = None

    def close(self) -> None:
        (self._pg if self.pg else self._lite).close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.pg:
            return list(self._pg.execute(self._sql(sql), tuple(params)).fetchall())
        return list(self._lite.execute(sql, tuple(params)).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.rows(sql, params)[0][0]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.pg:
            self._pg.execute(self._sql(sql), tuple(params))
        else:
            self._lite.execute(sql, tuple(params))

    def script(self, statements: Sequence[tuple[str, Sequence[Any]]], many: Any = None) -> None:
        """The statements in one transaction (`many`: (sql, rows) sent first, by executemany)."""
        if self.pg:
            with self._pg.transaction():
                if many is not None:
                    with self._pg.cursor() as cur:
                        cur.executemany(self._sql(many[0]), many[1])
                for sql, params in statements:
                    self._pg.execute(self._sql(sql), tuple(params))
            return
        self._lite.execute("BEGIN IMMEDIATE")
        try:
            if many is not None:
                self._lite.executemany(many[0], many[1])
            for sql, params in statements:
                self._lite.execute(sql, tuple(params))
            self._lite.execute("COMMIT")
        except BaseException:
            self._lite.execute("ROLLBACK")
            raise

    def count(self, table: str) -> int:
        return int(self.one(f"SELECT count(*) FROM {table}"))


_OWNED = (
    # one task run per run: succeeded when the run finished, else still pending
    "INSERT INTO task_runs (run_id, task_name, state, queue, waiting, started_at, finished_at)"
    " SELECT id, 'a', CASE WHEN finished_at IS NULL THEN 'pending' ELSE 'succeeded' END,"
    " 'bulk', CASE WHEN finished_at IS NULL THEN 1 ELSE 0 END, started_at, finished_at"
    " FROM runs WHERE workflow = ? AND substr(id, 13, 1) = ?",
    "INSERT INTO attempts (task_run_id, run_id, number, epoch, worker, started_at,"
    " finished_at, outcome) SELECT t.id, t.run_id, 1, 1, 'bulk', t.started_at, t.finished_at,"
    " 'succeeded' FROM task_runs t JOIN runs r ON r.id = t.run_id"
    " WHERE r.workflow = ? AND substr(r.id, 13, 1) = ? AND t.finished_at IS NOT NULL",
    # kinds no duty reads (a run trigger reads run endings)
    "INSERT INTO events (run_id, task_run_id, at, kind, data) SELECT r.id, t.id, r.created_at,"
    " 'bulk.step', '{\"n\":1}' FROM task_runs t JOIN runs r ON r.id = t.run_id"
    " WHERE r.workflow = ? AND substr(r.id, 13, 1) = ?",
    "INSERT INTO events (run_id, at, kind) SELECT id, created_at, 'bulk.note' FROM runs"
    " WHERE workflow = ? AND substr(id, 13, 1) = ?",
    "INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line) SELECT r.id, t.id, 1,"
    " r.created_at, 'stdout', ? FROM task_runs t JOIN runs r ON r.id = t.run_id"
    " WHERE r.workflow = ? AND substr(r.id, 13, 1) = ?",
    "INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line) SELECT r.id, t.id, 1,"
    " r.created_at + 0.5, 'stderr', ? FROM task_runs t JOIN runs r ON r.id = t.run_id"
    " WHERE r.workflow = ? AND substr(r.id, 13, 1) = ?",
)

_LINE = "a log line of about a hundred characters, as a task might print it; " + "x" * 32


def fill(
    db: Db,
    *,
    workflow: str,
    version: str,
    n: int,
    start: float,
    step: float,
    tag: str,
    finished: bool = True,
    keep_every: int = 0,
    parent_task_run_id: int | None = None,
) -> list[str]:
    """`n` runs of `workflow` created at `start`, `start + step`, ... (finished a second
    later, or running), each `keep_every`-th marked kept, and their rows; their ids."""
    assert len(tag) == 1
    runs = []
    for i in range(n):
        created = start + i * step
        run_id = f"{int(created * 1000):012x}{tag}{i:07d}"
        runs.append(
            (
                run_id, workflow, version, "succeeded" if finished else "running", "{}",
                created, created, created + 1.0 if finished else None,
                1 if keep_every and i % keep_every == 0 else 0, parent_task_run_id,
            )
        )  # fmt: skip
    insert = (
        "INSERT INTO runs (id, workflow, version, state, params, created_at, started_at,"
        " finished_at, keep, parent_task_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if db.pg:
        insert = insert.replace("?", "%s")
    statements: list[tuple[str, Sequence[Any]]] = []
    for sql in _OWNED:
        params: tuple[Any, ...] = (workflow, tag)
        if sql.startswith("INSERT INTO logs"):
            params = (_LINE, workflow, tag)
        statements.append((sql, params))
    db.script(statements, many=(insert, runs))
    return [r[0] for r in runs]
