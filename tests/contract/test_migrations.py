"""Migrations, on both dialects: one history, and an upgraded database is a fresh one.

For every released schema version, a database migrated only that far and then opened by
today's store (which applies the rest) must have exactly the tables, columns, indexes,
constraints and triggers of a database created fresh. And a database written at the first
version, holding a finished run and a run still in flight, must keep both through the
upgrade: the finished run reads back whole, and the run in flight finishes on today's
worker.

Each dialect's ``schema.sql`` (the whole current schema, as one file to review) must build
exactly the catalog the migrations build.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.states import RunState, TaskState
from orchestrion.store import open_store, sqlite
from orchestrion.store.postgres import tx as postgres_tx
from orchestrion.store.sql.guards import GUARDS
from tests import pg

_MIGRATIONS = Path(sqlite.__file__).parents[1] / "migrations"
SCHEMAS = {
    "sqlite": Path(sqlite.__file__).with_name("schema.sql"),
    "postgres": Path(postgres_tx.__file__).with_name("schema.sql"),
}
VERSIONS = sorted(p.stem for p in (_MIGRATIONS / "sqlite").glob("*.sql"))

Describe = Callable[[], dict[str, list[tuple[Any, ...]]]]


def test_both_dialects_share_one_history() -> None:
    assert sorted(p.stem for p in (_MIGRATIONS / "postgres").glob("*.sql")) == VERSIONS
    assert VERSIONS[0] == "0001_initial"


class Database:
    """An empty database of one dialect: migrate it raw, open a store on it, describe it."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend, self.url = backend, url

    def migrate(self, until: str) -> list[str]:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                return sqlite.migrate(conn, until=until)
            finally:
                conn.close()
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as pconn:
            return postgres_tx.migrate(pconn, until=until)

    def execute(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Write rows as an older release would have (placeholders ``?``)."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                conn.executemany(sql, rows)
            finally:
                conn.close()
            return
        with psycopg.connect(self.url, autocommit=True) as pconn, pconn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def build(self, schema: Path) -> None:
        """Create the schema from one script (not the migrations)."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                conn.executescript(schema.read_text())
            finally:
                conn.close()
            return
        with psycopg.connect(self.url, autocommit=True) as pconn:
            pconn.execute(schema.read_text())  # no parameters: several statements at once

    def describe(self, *, text: Callable[[str], str] = str) -> dict[str, list[tuple[Any, ...]]]:
        if self.backend == "sqlite":
            return describe_sqlite(self.url, text=text)
        return describe_pg(self.url)

    def versions(self) -> list[str]:
        store = open_store(self.url)
        try:
            return store.schema_versions()
        finally:
            store.close()


@pytest.fixture
def databases(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Database]]:
    """Makes empty databases of this test's dialect (SQLite files, or PostgreSQL schemas)."""
    made: list[str] = []
    count = iter(range(1_000))
    pg_database = request.getfixturevalue("pg_database") if backend == "postgres" else ""

    def make() -> Database:
        if backend == "sqlite":
            return Database(backend, f"sqlite:///{tmp_path / f'db{next(count)}.db'}")
        url, schema = pg.create_schema(pg_database)
        made.append(schema)
        return Database(backend, url)

    yield make
    for schema in made:
        pg.drop_schema(pg_database, schema)


@pytest.mark.parametrize("start", VERSIONS[:-1], ids=VERSIONS[:-1])
def test_an_upgraded_database_equals_a_fresh_one(
    databases: Callable[[], Database], start: str
) -> None:
    fresh, upgraded = databases(), databases()
    assert fresh.versions() == VERSIONS
    assert upgraded.migrate(start) == VERSIONS[: VERSIONS.index(start) + 1]
    assert upgraded.versions() == VERSIONS  # opening the store applied the rest
    # a fresh SQLite database is made from schema.sql: its CREATE texts are laid out
    # otherwise, so they are compared without comments and layout
    assert upgraded.describe(text=sql_text) == fresh.describe(text=sql_text)


def test_schema_sql_builds_the_schema_the_migrations_build(
    databases: Callable[[], Database], backend: str
) -> None:
    migrated, built = databases(), databases()
    assert migrated.migrate(VERSIONS[-1]) == VERSIONS
    built.build(SCHEMAS[backend])
    # SQLite keeps each CREATE statement's text: compared without comments and layout
    assert built.describe(text=sql_text) == migrated.describe(text=sql_text)


def test_the_claim_index_is_the_claim_guard() -> None:
    """The claim's partial index is usable only while its predicate is the claim's guard."""
    guard = sql_text(f"WHERE state IN {GUARDS['task_claimable']}")
    for schema in SCHEMAS.values():
        statements = sql_text(schema.read_text()).split(";")
        [index] = [s for s in statements if s.startswith("CREATE INDEX task_runs_claim ")]
        assert index.endswith(guard), index


def test_the_upgrade_makes_the_latest_registered_version_current(
    databases: Callable[[], Database],
) -> None:
    """Before 0011 "latest" was the version first registered most recently: an upgraded
    database starts with that one current, so it behaves as before until a deploy."""
    db = databases()
    db.migrate("0010_guards")
    t0 = 1_700_000_000.0
    specs = [load_yaml_text(_FLOW.replace("echo, second", f"echo, second-{n}")) for n in range(3)]
    db.execute(
        "INSERT INTO workflows (name, version, spec, source, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (specs[0].name, specs[0].version, specs[0].to_json(), None, t0),
            (specs[1].name, specs[1].version, specs[1].to_json(), None, t0 + 1),
            (specs[2].name, specs[2].version, specs[2].to_json(), None, t0 + 1),  # same instant
        ],
    )
    store = open_store(db.url)
    try:
        assert store.workflows.get_workflow(specs[0].name).version == specs[2].version
        assert store.workflows.latest_versions() == {specs[0].name: (specs[2].version, t0 + 1)}
    finally:
        store.close()


_FLOW = """
name: old_flow
tasks:
  first:
    shell: [echo, first]
  second:
    depends_on: [first]
    shell: [echo, second]
"""


def test_runs_written_at_the_first_version_survive_the_upgrade(
    databases: Callable[[], Database],
) -> None:
    db = databases()
    db.migrate(VERSIONS[0])
    spec = load_yaml_text(_FLOW)
    t0 = 1_700_000_000.0
    db.execute(
        "INSERT INTO workflows (name, version, spec, source, created_at) VALUES (?, ?, ?, ?, ?)",
        [(spec.name, spec.version, spec.to_json(), "old_flow.yaml", t0)],
    )
    db.execute(
        "INSERT INTO runs (id, workflow, version, state, params, unfinished, created_at,"
        " started_at, finished_at) VALUES (?, ?, ?, ?, '{}', ?, ?, ?, ?)",
        [
            ("run-done", spec.name, spec.version, "succeeded", 0, t0, t0, t0 + 2),
            ("run-flying", spec.name, spec.version, "running", 1, t0, t0, None),
        ],
    )
    db.execute(
        "INSERT INTO task_runs (id, run_id, task_name, state, queue, waiting, up_ok, attempts,"
        " lease_epoch, result, started_at, finished_at) VALUES (?, ?, ?, ?, 'default', ?, ?,"
        " ?, ?, ?, ?, ?)",
        [
            (1, "run-done", "first", "succeeded", 0, 0, 1, 1, '"a"', t0, t0 + 1),
            (2, "run-done", "second", "succeeded", 0, 1, 1, 1, '"b"', t0 + 1, t0 + 2),
            (3, "run-flying", "first", "succeeded", 0, 0, 1, 1, '"a"', t0, t0 + 1),
            (4, "run-flying", "second", "queued", 0, 1, 0, 0, None, None, None),
        ],
    )
    db.execute(
        "INSERT INTO attempts (task_run_id, run_id, number, epoch, worker, started_at,"
        " finished_at, outcome) VALUES (?, ?, 1, 1, 'old-worker', ?, ?, 'succeeded')",
        [
            (1, "run-done", t0, t0 + 1),
            (2, "run-done", t0 + 1, t0 + 2),
            (3, "run-flying", t0, t0 + 1),
        ],
    )
    db.execute(
        "INSERT INTO events (run_id, task_run_id, at, kind, from_state, to_state)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [("run-done", None, t0, "run.created", None, "queued")],
    )
    db.execute(
        "INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line)"
        " VALUES (?, ?, 1, ?, 'stdout', ?)",
        [("run-done", 1, t0, "first")],
    )

    with App(Settings(database_url=db.url)) as app:
        assert app.store.schema_versions() == VERSIONS
        done = app.store.reads.get_run("run-done")
        assert done.state is RunState.SUCCEEDED
        results = {t.task_name: t.result for t in app.store.reads.list_task_runs("run-done")}
        assert results == {"first": "a", "second": "b"}
        assert [a.worker for a in app.store.reads.list_attempts("run-done")] == ["old-worker"] * 2
        assert [e.kind for e in app.store.reads.list_events("run-done")] == ["run.created"]
        assert [line.line for line in app.store.reads.get_logs("run-done")] == ["first"]

        final = app.runtime.run_until_done("run-flying")
        assert final.state is RunState.SUCCEEDED
        tasks = {t.task_name: t for t in app.store.reads.list_task_runs("run-flying")}
        assert tasks["second"].state is TaskState.SUCCEEDED
        assert tasks["first"].attempts == 1  # not re-run
        assert "second" in [line.line for line in app.store.reads.get_logs("run-flying")]


# ---------------------------------------------------------------------- describing schemas


def sql_text(sql: str) -> str:
    """SQL without its comments and layout (for statement texts that SQLite keeps)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r"\s*([(),;])\s*", r"\1", sql).strip()


def describe_sqlite(
    url: str, *, text: Callable[[str], str] = str
) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        objects = [
            (kind, name, table, None if sql is None else text(sql))
            for kind, name, table, sql in conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
                " WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
            ).fetchall()
        ]
        tables = [name for kind, name, _, _ in objects if kind == "table"]
        described: dict[str, list[tuple[Any, ...]]] = {"objects": objects}
        for table in tables:
            described[f"{table}.columns"] = conn.execute(
                f"PRAGMA table_xinfo('{table}')"
            ).fetchall()
            described[f"{table}.foreign_keys"] = conn.execute(
                f"PRAGMA foreign_key_list('{table}')"
            ).fetchall()
            indexes = conn.execute(f"PRAGMA index_list('{table}')").fetchall()
            described[f"{table}.indexes"] = sorted(indexes, key=lambda r: str(r[1]))
            for index in indexes:
                described[f"{table}.index.{index[1]}"] = conn.execute(
                    f"PRAGMA index_xinfo('{index[1]}')"
                ).fetchall()
        return described
    finally:
        conn.close()


def describe_pg(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT current_schema()").fetchone()
        assert found is not None
        schema = found[0]

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [
                tuple(str(v).replace(f"{schema}.", "") for v in r)
                for r in conn.execute(sql, (schema,)).fetchall()
            ]

        return {
            "columns": rows(
                "SELECT table_name, column_name, data_type, is_nullable, column_default,"
                " collation_name, is_identity, identity_generation FROM information_schema.columns"
                " WHERE table_schema = %s ORDER BY table_name, ordinal_position"
            ),
            "indexes": rows(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s"
                " ORDER BY tablename, indexname"
            ),
            "constraints": rows(
                "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
                " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1, 2"
            ),
            "triggers": rows(
                "SELECT event_object_table, trigger_name, event_manipulation, action_statement"
                " FROM information_schema.triggers WHERE trigger_schema = %s ORDER BY 1, 2, 3"
            ),
            "functions": rows(
                "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname = %s ORDER BY 1"
            ),
        }
