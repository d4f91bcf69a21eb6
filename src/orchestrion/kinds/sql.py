"""The ``sql`` task kind: one statement (or a list of them) against a named database
connection, in a transaction of its own (committed on success, rolled back on failure,
timeout or cancel).

```yaml
load:
  sql:
    connection: warehouse
    query: "insert into sales select * from staging where day = :day"
    params: {day: "{{ params.day }}"}
    result: rowcount          # or rows (at most max_rows), first, none
```

Values reach the database only as bound parameters (``:name`` in the query, ``params`` for
the values): the query is never templated, so a hostile value stays data. The connection
(``orchestrion connections create NS/NAME --kind postgres|mysql|sqlite --url ...
--password-secret ...``) says where the database is; its password comes from a secret and
is masked in the task's logs, errors and result. Executed with SQLAlchemy Core
(`orchestrion.kinds.sql_run`), imported only when a task runs.
"""

from __future__ import annotations

from typing import Any

from orchestrion.kinds.sql_options import SqlOptions, bind_names
from orchestrion.spec.kinds import KindContext, TaskKind

__all__ = ["SqlKind", "SqlOptions", "bind_names"]


class SqlKind(TaskKind[SqlOptions]):
    """Run one SQL statement through SQLAlchemy Core in a transaction of its own."""

    name = "sql"
    options = SqlOptions
    templated = ("params",)
    summary = "One SQL statement on a named connection (PostgreSQL, MariaDB/MySQL, SQLite)."

    def check(self, options: SqlOptions) -> None:
        """Every ``:name`` of the query has a value in ``params`` and every value is used:
        a typo fails at load time, not halfway through a run."""
        if not options.statements:
            raise ValueError("'query' lists no statement")
        used = [name for query in options.statements for name in bind_names(query)]
        missing = [name for name in used if name not in options.params]
        if missing:
            raise ValueError(f"the query binds :{missing[0]} but params has no {missing[0]!r}")
        unused = sorted(set(options.params) - set(used))
        if unused:
            raise ValueError(f"params {unused[0]!r} is not used by the query (no :{unused[0]})")

    def connections(self, options: SqlOptions) -> tuple[str, ...]:
        """The one connection the statement runs on."""
        return (options.connection,)

    def run(self, options: SqlOptions, ctx: KindContext) -> Any:
        """Execute the statement; see `orchestrion.kinds.sql_run.execute`."""
        from orchestrion.kinds.sql_run import execute

        return execute(options, ctx)
