"""One check of a SQL sensor (``wait_for: {sql: ...}``): the query on a named connection with
SQLAlchemy Core, in a transaction that is always rolled back, under a statement timeout.

It lives beside `orchestrion.kinds.sql_run` (whose engine URL, statement timeout, interrupt
and JSON values it shares) rather than in the triggers layer: triggers may import kinds
(a lower layer), but not the other way round, and the scheduler must not pay for
SQLAlchemy at start-up, so `orchestrion.triggers.sensors` imports this module only when a
SQL sensor is checked. The connection resolver, which opens password secrets, is the app
layer's and is injected into `WaitDuty`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from orchestrion.errors import OrchestrionError
from orchestrion.kinds.sql_options import bind_names
from orchestrion.kinds.sql_run import (
    Watch,
    driver_error,
    engine_url,
    interrupter,
    json_value,
    server_timeout,
    statement_timeout,
)
from orchestrion.spec.actions import SQL_KINDS
from orchestrion.spec.kinds import KindConnection

__all__ = ["SqlCheckFailed", "first_row"]


class SqlCheckFailed(OrchestrionError):
    """The query could not run (the database's message, without the parameters' values)."""


def first_row(
    conn_info: KindConnection, query: str, params: Mapping[str, Any], timeout: float
) -> tuple[bool, dict[str, Any]] | None:
    """Run `query` once: None when it returns no row, else whether the first row's first
    column is truthy (Python's truth: not NULL, false, zero or an empty string) and that
    row as an object of JSON values. Raises `SqlCheckFailed` when the query fails (or runs
    past `timeout`) or the connection is not a database."""
    if conn_info.kind not in SQL_KINDS:
        raise SqlCheckFailed(
            f"connection {conn_info.name!r} is a {conn_info.kind} connection, not a"
            f" database ({', '.join(SQL_KINDS)})"
        )
    connect_args: dict[str, Any] = {"connect_timeout": max(1, min(30, int(timeout)))}
    if conn_info.kind == "sqlite":
        connect_args = {"timeout": timeout}
    engine = create_engine(engine_url(conn_info), poolclass=NullPool, connect_args=connect_args)
    used = set(bind_names(query))
    bound = {k: v for k, v in params.items() if k in used}
    watch: Watch | None = None
    try:
        # The connection's implicit transaction is rolled back when it closes: a sensor
        # only reads, and the statement timeout is local to that transaction.
        with engine.connect() as conn:
            statement_timeout(conn, conn_info.kind, timeout)
            # The same outside guard as a sql task's (SQLite has no statement timeout).
            watch = Watch(threading.Event(), timeout)
            watch.interrupt = interrupter(engine, conn_info.kind, conn)
            with watch:
                row = conn.execute(text(query), bound).first()
            if row is None:
                return None
            mapping = row._mapping
            return bool(row[0]), {str(k): json_value(v) for k, v in mapping.items()}
    except SQLAlchemyError as exc:
        if (watch is not None and watch.fired == "timeout") or server_timeout(exc):
            raise SqlCheckFailed(f"the query ran past its {timeout:g}s timeout") from None
        raise SqlCheckFailed(driver_error(exc)) from None
    finally:
        engine.dispose()
