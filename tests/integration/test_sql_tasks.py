"""SQL tasks (issue 15, part 3) against the real databases on loopback: PostgreSQL
(127.0.0.1:5432, trust, database ``test``), MariaDB (127.0.0.1:3306, root, database
``test``) and SQLite files. Each target gets the same cases: results of every shape, a
transaction rolled back on failure, timeout and cancel, and a hostile value that stays
data. A workflow then runs a sql task end to end through a worker, with the connection's
password masked. Needs both servers under ``CI=true``; skips a missing one elsewhere."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.kinds.sql_run import engine_url
from orchestrion.spec.actions import PluginAction
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.worker.context import TaskContext
from orchestrion.worker.kinds import run_plugin
from tests.helpers import database_url_for, task_context

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql://127.0.0.1:3306/test"
HOSTILE = "x'); DROP TABLE {table}; -- \" ; select 1"

#: The statement that runs until it is stopped, per target.
SLOW = {
    "postgres": "select pg_sleep(30)",
    "mysql": "select sleep(30)",
    "sqlite": "with recursive c(x) as (select 1 union all select x + 1 from c)"
    " select count(*) from c",
}


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _require(port: int, what: str) -> None:
    if _listening(port):
        return
    message = f"{what} is not listening on 127.0.0.1:{port}; run ../shared/services.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Target:
    """A database and a table of its own for one test."""

    endpoint: Endpoint
    table: str

    @property
    def kind(self) -> str:
        return self.endpoint.kind

    def admin(self) -> sa.Engine:
        return sa.create_engine(engine_url(self.endpoint), poolclass=sa.pool.NullPool)

    def rows(self) -> list[tuple[Any, ...]]:
        engine = self.admin()
        try:
            with engine.connect() as conn:
                query = f"select id, name from {self.table} order by id"
                return [tuple(r) for r in conn.execute(sa.text(query))]
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    kind = request.param
    if kind == "postgres":
        _require(5432, "PostgreSQL")
        url = PG_URL
    elif kind == "mysql":
        _require(3306, "MariaDB")
        url = MARIADB_URL
    else:
        url = f"sqlite:///{tmp_path / 'data.db'}"
    user = "root" if kind == "mysql" else None
    endpoint = Endpoint(namespace="shop", name="warehouse", kind=kind, url=url, username=user)
    found = Target(endpoint, f"sales_{uuid.uuid4().hex[:10]}")
    engine = found.admin()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"create table {found.table} (id integer primary key, name varchar(200),"
                " amount decimal(10, 2))"
            )
        )
    engine.dispose()
    yield found
    engine = found.admin()
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop table if exists {found.table}"))
    engine.dispose()


def _ctx(**params: Any) -> TaskContext:
    return task_context(task_name="load", params=params)


def _run(
    target: Target,
    options: dict[str, Any],
    ctx: TaskContext | None = None,
    timeout: float | None = None,
    **params: Any,
) -> Any:
    action = PluginAction(plugin="sql", options={"connection": "warehouse", **options})
    context = ctx or _ctx(**params)
    scope = {"params": dict(context.params), "tasks": {}, "item": None}
    return run_plugin(action, context, scope, {"warehouse": target.endpoint}, timeout)


def _insert(target: Target) -> None:
    query = f"insert into {target.table} (id, name, amount) values (1, 'a', 1.50), (2, 'b', 2)"
    assert _run(target, {"query": query}) == 2


def test_results_of_every_shape(target: Target) -> None:
    _insert(target)
    select = f"select id, name, amount from {target.table} where id >= :low order by id"
    rows = _run(target, {"query": select, "params": {"low": 1}, "result": "rows"})
    assert rows == [
        {"id": 1, "name": "a", "amount": 1.5},
        {"id": 2, "name": "b", "amount": 2.0},
    ]
    capped = {"query": select, "params": {"low": 1}, "result": "rows", "max_rows": 1}
    assert _run(target, capped) == [{"id": 1, "name": "a", "amount": 1.5}]
    first = _run(target, {"query": select, "params": {"low": 2}, "result": "first"})
    assert first == {"id": 2, "name": "b", "amount": 2.0}
    nothing = {"query": select, "params": {"low": 9}, "result": "first"}
    assert _run(target, nothing) is None
    update = f"update {target.table} set name = :name where id = :id"
    assert (
        _run(target, {"query": update, "params": {"name": "z", "id": 2}, "result": "none"}) is None
    )
    assert target.rows() == [(1, "a"), (2, "z")]


def test_params_are_rendered_from_templates(target: Target) -> None:
    query = f"insert into {target.table} (id, name) values (:id, :name)"
    options = {"query": query, "params": {"id": 7, "name": "{{ params.day }}"}}
    assert _run(target, options, day="2024-05-01") == 1
    assert target.rows() == [(7, "2024-05-01")]


def test_a_hostile_value_stays_data(target: Target) -> None:
    hostile = HOSTILE.format(table=target.table)
    query = f"insert into {target.table} (id, name) values (1, :name)"
    assert _run(target, {"query": query, "params": {"name": "{{ params.name }}"}}, name=hostile)
    assert target.rows() == [(1, hostile)]  # the table is still there, the value intact
    where = f"select count(*) as n from {target.table} where name = :name"
    assert _run(target, {"query": where, "params": {"name": hostile}, "result": "first"}) == {
        "n": 1
    }


def test_a_failure_rolls_the_whole_transaction_back(target: Target) -> None:
    insert = f"insert into {target.table} (id, name) values (:id, 'first')"
    with pytest.raises(TaskError, match="rolled back"):  # the second insert breaks the key
        _run(target, {"query": [insert, insert], "params": {"id": 5}})
    assert target.rows() == []
    bad = {"query": f"select nope from {target.table}", "result": "rows"}
    with pytest.raises(TaskError) as caught:
        _run(target, bad)
    assert "select nope" not in str(caught.value)  # the database's words, not an echo


def test_a_statement_past_its_timeout_is_stopped_and_rolled_back(target: Target) -> None:
    insert = f"insert into {target.table} (id, name) values (1, 'kept?')"
    started = time.monotonic()
    with pytest.raises(TaskTimeout):
        _run(target, {"query": [insert, SLOW[target.kind]], "timeout": 0.5})
    assert time.monotonic() - started < 10
    assert target.rows() == []
    with pytest.raises(TaskTimeout):  # the task's timeout caps the statement's
        _run(target, {"query": SLOW[target.kind]}, timeout=0.5)


def test_a_canceled_statement_is_stopped_and_rolled_back(target: Target) -> None:
    insert = f"insert into {target.table} (id, name) values (1, 'kept?')"
    ctx = _ctx()
    timer = threading.Timer(0.5, ctx.cancel_event.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(CancelRequested):
            _run(target, {"query": [insert, SLOW[target.kind]]}, ctx=ctx)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    assert target.rows() == []


def test_a_broker_connection_is_refused(target: Target) -> None:
    redis = Endpoint(namespace="shop", name="warehouse", kind="redis", url="redis://h:1/0")
    with pytest.raises(TaskError, match="not a database"):
        _run(Target(redis, target.table), {"query": "select 1"})


# ----------------------------------------------------------------- through a worker

KEY = MasterKey("k", os.urandom(32))
PASSWORD = "pw-" + uuid.uuid4().hex


def test_a_workflow_runs_a_sql_task_with_its_password_masked(tmp_path: Path) -> None:
    """PostgreSQL trusts loopback, so it takes any password: the secret's value goes over
    the wire and must appear in no log line, result or error."""
    _require(5432, "PostgreSQL")
    table = f"orders_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        database_url=database_url_for(tmp_path / "o.db"),
        key_ring=KeyRing([KEY]),
        lease_seconds=5.0,
        heartbeat_every=0.2,
    )
    text = f"""
name: sql_flow
namespace: shop
params: {{day: {{type: string}}}}
tasks:
  create:
    sql: {{connection: wh, query: "create table {table} (day text, note text)", result: none}}
  load:
    depends_on: create
    sql:
      connection: wh
      query: "insert into {table} values (:day, 'n')"
      params: {{day: "{{{{ params.day }}}}"}}
  read:
    depends_on: load
    sql: {{connection: wh, query: "select day from {table}", result: rows}}
  drop:
    depends_on: read
    sql: {{connection: wh, query: "drop table {table}", result: none}}
"""
    with App(settings).open() as app:
        app.secrets.set_secret("shop", "wh-password", PASSWORD)
        app.connections.put_connection(
            "shop", "wh", kind="postgres", url=PG_URL, password_secret="wh-password"
        )
        spec = load_yaml_text(text)
        app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
        run = app.runs.trigger("sql_flow", {"day": "2024-05-01"})
        done = app.runtime.run_until_done(run.id, concurrency=1)
        tasks = {t.task_name: t for t in app.runs.task_runs(run.id)}
        assert done.state.value == "succeeded", {n: t.error for n, t in tasks.items()}
        assert tasks["load"].result == 1
        assert tasks["read"].result == [{"day": "2024-05-01"}]
        logs = " ".join(record.line for record in app.runs.logs(run.id))
    assert "sql: committed" in logs
    assert PASSWORD not in logs
    assert PASSWORD not in repr(tasks)
