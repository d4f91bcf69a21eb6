"""The checks of polling sensors: is the file there, does the URL answer as expected, does
the SQL query return a truthy first column.

A check returns its result (what the step's task run succeeds with) when the condition is
true, `NOT_YET` when it is not, and raises `SensorError` when it never can be (a refused
URL): the step then fails. A network error is only "not yet": the next check may pass.
A SQL query that fails (the database down, a syntax error, a missing table, a timeout)
raises `CheckFailed`: the duty records the error in the run's history and checks again
at the next `every`, as a flaky database may answer then; the step's `timeout` bounds it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from orchestrion.auth.http_pinning import Pins, pinned_client
from orchestrion.auth.ssrf import AllowList, check_url
from orchestrion.errors import ExpressionError, NotFound, OrchestrionError, SecretError, UnsafeURL
from orchestrion.spec.kinds import KindConnection
from orchestrion.spec.waits import HttpCondition, SqlCondition, WaitAction

__all__ = ["NOT_YET", "CheckFailed", "SensorError", "SqlSource", "check_sensor"]

#: A check whose condition is not true yet.
NOT_YET: Final = object()


class SensorError(OrchestrionError):
    """A sensor that can never come true as written (its step fails with this)."""


class CheckFailed(OrchestrionError):
    """One check could not run; the next one may (the step goes on waiting)."""


@dataclass(frozen=True)
class SqlSource:
    """What a SQL sensor's check needs of its run: the named connection (opened with its
    password secret) and the run's params, over which `SqlCondition.params` renders."""

    connection: Callable[[str], KindConnection]
    params: Mapping[str, Any]


def check_sensor(action: WaitAction, *, allow: AllowList, sql: SqlSource | None = None) -> Any:
    """Check `action`'s condition once: its result when true, else `NOT_YET`."""
    if action.file is not None:
        return _file(action.file)
    if action.http is not None:
        return _http(action.http, allow)
    if action.sql is not None and sql is not None:
        return _sql(action.sql, sql)
    raise SensorError(f"a wait for {action.waits_for} is not polled")


def _sql(cond: SqlCondition, source: SqlSource) -> Any:
    # SQLAlchemy is imported here, on the first SQL check, not when the scheduler starts.
    from orchestrion.kinds.sql_sensor import SqlCheckFailed, first_row
    from orchestrion.spec.expressions import render

    try:
        conn = source.connection(cond.connection)
        params = render(dict(cond.params), {"params": dict(source.params)})
        found = first_row(conn, cond.query, params, cond.timeout)
    except (NotFound, SecretError) as exc:  # created later, the next check finds it
        raise CheckFailed(str(exc)) from None
    except (SqlCheckFailed, ExpressionError) as exc:
        raise CheckFailed(f"sql sensor on {cond.connection!r}: {exc}") from None
    if found is None or not found[0]:
        return NOT_YET
    return found[1]


def _file(path: str) -> Any:
    target = Path(os.path.expanduser(path))
    if not target.exists():
        return NOT_YET
    stat = target.stat()
    return {"path": str(target), "size": stat.st_size, "mtime": stat.st_mtime}


def _http(cond: HttpCondition, allow: AllowList) -> Any:
    try:
        checked = check_url(cond.url, allow=allow)
    except UnsafeURL as exc:
        raise SensorError(f"http sensor: {exc}") from None
    pins = Pins()
    pins.add(checked)
    try:
        with pinned_client(pins) as client:
            response = client.get(cond.url, timeout=cond.timeout, follow_redirects=False)
    except httpx.HTTPError:
        return NOT_YET  # down or slow: the next check may find it up
    wanted = cond.status or tuple(range(200, 300))
    if response.status_code not in wanted:
        return NOT_YET
    return {"status": response.status_code}
