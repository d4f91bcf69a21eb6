"""Executing a ``sql`` task with SQLAlchemy Core: the engine for the connection, the statement
timeout, the transaction, and the result as JSON.

The statement has two guards, because one alone is not enough everywhere: the database's
own statement timeout where it has one (PostgreSQL ``statement_timeout``, MariaDB
``max_statement_time``), and a watcher thread that interrupts the statement from outside
when the timeout passes or the attempt is canceled (psycopg's cancel request, MySQL's
``KILL QUERY`` from a second connection, SQLite's ``interrupt()``). Either way the
statement's error ends the transaction with a rollback, and the task ends timed out or
canceled rather than failed.

One engine per attempt, without a pool: an attempt's connection never outlives it, so a
canceled or timed-out session cannot leak into the next task's transaction.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import threading
import time
import uuid
from decimal import Decimal
from types import TracebackType
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.kinds.sql_options import SqlOptions, bind_names
from orchestrion.spec.actions import SQL_KINDS
from orchestrion.spec.kinds import KindConnection, KindContext

__all__ = [
    "Watch",
    "driver_error",
    "engine_url",
    "execute",
    "interrupter",
    "json_value",
    "server_timeout",
    "statement_timeout",
]

#: The SQLAlchemy driver of each connection kind.
_DRIVERS: Final = {"postgres": "postgresql+psycopg", "mysql": "mysql+pymysql", "sqlite": "sqlite"}

#: How often the watcher looks at the cancel event (a cancel takes effect within this).
_POLL: Final = 0.1


def engine_url(conn: KindConnection) -> URL:
    """The SQLAlchemy URL of `conn`: its driver by kind, its user, its password from the
    secret (a `URL` object, never text with the password in it: its repr masks it)."""
    url = make_url(conn.url)
    if conn.kind == "sqlite":
        return url.set(drivername="sqlite")
    return url.set(
        drivername=_DRIVERS[conn.kind],
        username=url.username or conn.username,
        password=conn.password_text(),
    )


def execute(options: SqlOptions, ctx: KindContext) -> Any:
    """Run the statement in a transaction of its own and return its result as JSON."""
    conn_info = ctx.connection(options.connection)
    if conn_info.kind not in SQL_KINDS:
        raise TaskError(
            f"connection {options.connection!r} is a {conn_info.kind} connection, not a"
            f" database ({', '.join(SQL_KINDS)})"
        )
    limit = options.timeout
    left = ctx.time_left()
    if left is not None:
        limit = min(limit, left)
    if limit <= 0:
        raise TaskTimeout("no time left for the statement before the task's timeout")
    ctx.check_cancel()
    connect_args: dict[str, Any] = {"connect_timeout": max(1, min(30, int(limit)))}
    if conn_info.kind == "sqlite":  # waiting for another writer's lock counts too
        connect_args = {"timeout": limit}
    engine = create_engine(engine_url(conn_info), poolclass=NullPool, connect_args=connect_args)
    watch = Watch(ctx.cancel_event, limit)
    try:
        return _in_transaction(engine, conn_info.kind, options, ctx, watch, limit)
    except SQLAlchemyError as exc:
        if watch.fired == "cancel":  # before the timeout: a cancel looks like one
            raise CancelRequested() from None
        if watch.fired == "timeout" or server_timeout(exc):
            raise TaskTimeout(
                f"the statement ran past its {limit:g}s timeout and was rolled back"
            ) from None
        raise TaskError(f"{driver_error(exc)} (rolled back)") from None
    finally:
        engine.dispose()


def _in_transaction(
    engine: Engine, kind: str, options: SqlOptions, ctx: KindContext, watch: Watch, limit: float
) -> Any:
    with engine.connect() as conn:
        watch.interrupt = interrupter(engine, kind, conn)
        with conn.begin() as trans:  # commits when the block ends, rolls back if it raises
            statement_timeout(conn, kind, limit)
            ctx.log(f"sql: running on {options.connection} ({kind}), timeout {limit:g}s")
            started = time.monotonic()
            with watch:
                for query in options.statements:
                    ctx.check_cancel()
                    used = set(bind_names(query))
                    bound = {k: v for k, v in options.params.items() if k in used}
                    result = conn.execute(text(query), bound)
                value = _shape(result, options, ctx)
            # Interrupted statements may also end without an error (MariaDB's SLEEP()).
            if watch.fired == "timeout" or time.monotonic() - started >= limit:
                raise TaskTimeout(f"the statement ran past its {limit:g}s timeout")
            ctx.check_cancel()  # canceled while it ran: roll back rather than commit
            if not trans.is_active:
                raise TaskError("the transaction ended before it could be committed")
        ctx.log(f"sql: committed ({_describe(value, options)})")
        return value


def statement_timeout(conn: Connection, kind: str, limit: float) -> None:
    """The database's own statement timeout, where it has one (bound, never formatted)."""
    if kind == "postgres":
        conn.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(max(1, int(limit * 1000)))},
        )
    elif kind == "mysql" and getattr(conn.dialect, "is_mariadb", False):
        conn.execute(text("SET SESSION max_statement_time = :s"), {"s": limit})


def interrupter(engine: Engine, kind: str, conn: Connection) -> Any:
    """A function that stops `conn`'s running statement from another thread."""
    raw: Any = conn.connection.dbapi_connection
    if kind == "sqlite":
        return raw.interrupt
    if kind == "postgres":
        return getattr(raw, "cancel_safe", raw.cancel)
    thread_id = raw.thread_id()

    def kill() -> None:
        with engine.connect() as other:
            other.execute(text("KILL QUERY :id"), {"id": thread_id})

    return kill


def _shape(result: Any, options: SqlOptions, ctx: KindContext) -> Any:
    if options.result == "none":
        return None
    if options.result == "rowcount":
        return int(result.rowcount)
    if not result.returns_rows:
        return [] if options.result == "rows" else None
    if options.result == "first":
        row = result.mappings().first()
        return None if row is None else {k: json_value(v) for k, v in row.items()}
    rows = result.mappings().fetchmany(options.max_rows + 1)
    if len(rows) > options.max_rows:
        ctx.log(f"sql: more than {options.max_rows} rows; the result keeps the first ones")
        rows = rows[: options.max_rows]
    return [{k: json_value(v) for k, v in row.items()} for row in rows]


def json_value(value: Any) -> Any:
    """A database value as JSON: decimals as numbers when exact as floats (else text),
    dates and times in ISO 8601, bytes in base64, UUIDs as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


def _describe(value: Any, options: SqlOptions) -> str:
    if options.result == "rowcount":
        return f"{value} rows affected"
    if options.result == "rows":
        return f"{len(value)} rows"
    return options.result


def server_timeout(exc: SQLAlchemyError) -> bool:
    """Whether the database's own statement timeout ended the statement: PostgreSQL's
    query_canceled (57014), MariaDB's max_statement_time (1969)."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "57014":
        return True
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and args[0] == 1969


def driver_error(exc: SQLAlchemyError) -> str:
    """The database's own message, without SQLAlchemy's echo of the statement and its
    parameters (a value may be sensitive; the query is in the spec already)."""
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()
    kind = type(orig if orig is not None else exc).__name__
    return f"{kind}: {detail[0] if detail else 'database error'}"


class Watch:
    """Interrupts the statement when the attempt is canceled or `limit` seconds pass; records
    which one (`fired`) so the error the statement then raises is reported as what it is."""

    def __init__(self, cancel: threading.Event, limit: float) -> None:
        self.cancel = cancel
        self.limit = limit
        self.interrupt: Any = None
        self.fired: str | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._watch, name="sql-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._done.is_set():
            if self.cancel.is_set():
                self._fire("cancel")
                return
            left = deadline - time.monotonic()
            if left <= 0:
                self._fire("timeout")
                return
            self._done.wait(min(_POLL, left))

    def _fire(self, why: str) -> None:
        self.fired = why
        if self.interrupt is not None:
            # The statement may have ended meanwhile: then there is nothing to stop.
            with contextlib.suppress(Exception):
                self.interrupt()
