"""``orchestrion db upgrade`` / ``db status`` on a real SQLite file and a real PostgreSQL
database: the first upgrade applies every migration, the second nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrion.store import migration_names
from tests import pg
from tests.acceptance.conftest import Cli


def _upgrade_twice(cli: Cli, url: str) -> None:
    first = cli("db", "upgrade", "--db", url, "-o", "json")
    assert first.code == 0, first
    assert first.json()["applied"] == migration_names(url)
    again = cli("db", "upgrade", "--db", url, "-o", "json")
    assert again.code == 0 and again.json()["applied"] == []
    status = cli("db", "status", "--db", url, "-o", "json").json()
    assert status["missing"] == [] and status["applied"] == migration_names(url)
    assert "password" not in again.output


@pytest.mark.sqlite_only(reason="migrates a fresh SQLite file; the PostgreSQL twin is below")
def test_db_upgrade_on_sqlite(cli: Cli, tmp_path: Path) -> None:
    _upgrade_twice(cli, f"sqlite:///{tmp_path / 'fresh.db'}")


def test_db_upgrade_on_postgres(cli: Cli) -> None:
    if "postgres" not in pg.backends():
        pytest.skip("ORCHESTRION_TEST_DATABASE=sqlite: PostgreSQL tests are off")
    pg.require_postgres()
    url = pg.create_database()
    try:
        _upgrade_twice(cli, url)
    finally:
        pg.drop_database(url)
