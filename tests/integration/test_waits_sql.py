"""SQL sensors (``wait_for: {sql: ...}``) checked by the waits duty on a fake clock against
a real SQLite file and the real PostgreSQL on loopback: a failing query is recorded in the
run's history and checked again (the step goes on waiting), the step succeeds with the
first row once its first column is truthy, and a sensor that never comes true times out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrion.app import App
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.clock import FakeClock
from orchestrion.kinds.sql_run import engine_url
from orchestrion.spec.yaml.loader import load_yaml_text
from tests.helpers import make_app
from tests.integration.test_sql_tasks import PG_URL, _require

FLOW = """\
name: {name}
params:
  sku: string
tasks:
  stocked:
    wait_for:
      sql:
        connection: warehouse
        query: "SELECT n > 0 AS ready, n FROM {table} WHERE sku = :sku"
        params: {{sku: "{{{{ params.sku }}}}"}}
      every: 1s
      timeout: {timeout}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        _require(5432, "PostgreSQL")
        return PG_URL
    return f"sqlite:///{tmp_path / 'stock.db'}"


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> Iterator[App]:
    app = make_app(tmp_path, clock=FakeClock())
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    app.connections.put_connection("default", "warehouse", kind=kind, url=db_url)
    try:
        yield app
    finally:
        app.close()


def _sql(db_url: str, statement: str, **params: Any) -> None:
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    endpoint = Endpoint(namespace="default", name="warehouse", kind=kind, url=db_url)
    engine = sa.create_engine(engine_url(endpoint), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def _register(app: App, name: str, table: str, timeout: str) -> None:
    spec = load_yaml_text(FLOW.format(name=name, table=table, timeout=timeout), source="f.yaml")
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())


def test_a_sql_sensor_retries_errors_comes_true_and_times_out(app: App, db_url: str) -> None:
    clock = app.clock
    assert isinstance(clock, FakeClock)
    table = f"stock_{uuid.uuid4().hex[:10]}"
    _register(app, "restock", table, "1h")
    _register(app, "never", table, "30s")
    run = app.runs.trigger("restock", {"sku": "a'); DROP TABLE x; --"})
    late = app.runs.trigger("never", {"sku": "none"})
    duty = app.runtime.wait_duty(None)
    try:
        # No table yet: the query fails; recorded, and the step goes on waiting.
        assert duty.pass_once().came_true == []  # type: ignore[union-attr]
        failed = [e for e in app.runs.events(run.id) if e.kind == "wait.check_failed"]
        assert failed and table in str(failed[0].data)
        assert app.runs.get_run(run.id).state.value == "running"
        _sql(db_url, f"CREATE TABLE {table} (sku varchar(100), n integer)")
        _sql(db_url, f"INSERT INTO {table} VALUES (:sku, 0)", sku="a'); DROP TABLE x; --")
        clock.advance(1)
        assert duty.pass_once().came_true == []  # type: ignore[union-attr]  # n = 0: falsy
        _sql(db_url, f"UPDATE {table} SET n = 3")
        clock.advance(1)
        done = duty.pass_once()
        assert done is not None and len(done.came_true) == 1
        assert app.runs.get_run(run.id).state.value == "succeeded"
        [stocked] = app.runs.task_runs(run.id)
        assert stocked.result in ({"ready": True, "n": 3}, {"ready": 1, "n": 3})
        clock.advance(30)
        assert len(duty.pass_once().timed_out) == 1  # type: ignore[union-attr]
        assert app.runs.get_run(late.id).state.value == "failed"
        assert app.store.waits.count_waiting() == 0
    finally:
        _sql(db_url, f"DROP TABLE IF EXISTS {table}")
