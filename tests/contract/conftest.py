"""Fixtures of the store contract suite: the same tests against every backend.

`make_store()` opens a store on this test's database: a SQLite file in ``tmp_path``, or a
schema of its own (made by the migrations, dropped afterwards) in a PostgreSQL database
that lives as long as the test module. Calling it again opens another store object on the
same database, as another process would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrion.store import open_store
from orchestrion.store.postgres import PostgresDatabase
from orchestrion.store.sql.database import Database
from orchestrion.store.stores import Stores
from tests import pg

MakeStore = Callable[[], Stores]


def sql_db(store: Stores) -> Database:
    """The SQL `Database` behind `store` (to read a table behind the roles' back)."""
    assert isinstance(store.backend, Database)
    return store.backend


def pg_db(store: Stores) -> PostgresDatabase:
    """The PostgreSQL `Database` behind `store` (its event feed, its listener)."""
    assert isinstance(store.backend, PostgresDatabase)
    return store.backend


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    if "postgres" not in pg.backends():
        pytest.skip("ORCHESTRION_TEST_DATABASE=sqlite: PostgreSQL tests are off")
    pg.require_postgres()
    url = pg.create_database()
    yield url
    pg.drop_database(url)


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema of its own."""
    url, schema = pg.create_schema(pg_database)
    yield url
    pg.drop_schema(pg_database, schema)


@pytest.fixture(params=pg.backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _opener(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], Stores]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
        return lambda: open_store(url)
    url = request.getfixturevalue("pg_url")
    return lambda: open_store(url)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    opened: list[Stores] = []
    open_one = _opener(backend, tmp_path, request)

    def make() -> Stores:
        store = open_one()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> Stores:
    return make_store()


@pytest.fixture
def make_pg_store(pg_url: str) -> Iterator[MakeStore]:
    """PostgreSQL only: stores on one fresh schema."""
    opened: list[Stores] = []

    def make() -> Stores:
        store = open_store(pg_url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
