"""PostgreSQL for tests: which backends to run, whether the server answers, and throwaway
databases and schemas (each test gets a schema of its own, made by the migrations).

``ORCHESTRION_TEST_DATABASE=sqlite|postgres|both`` (default both) picks the backends of the
store contract suite; every other suite runs on SQLite files unless it is ``postgres``,
which puts each of their databases on a fresh schema (`tests.helpers.database_url_for`);
``ORCHESTRION_TEST_PG_URL`` the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
whose user may create databases). Without a server the PostgreSQL tests skip, and with
``CI=true`` they fail.
"""

from __future__ import annotations

import functools
import os
import secrets
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest

__all__ = [
    "ADMIN_URL",
    "backends",
    "create_database",
    "create_schema",
    "drop_database",
    "drop_schema",
    "require_postgres",
    "with_database",
]

ADMIN_URL = os.environ.get(
    "ORCHESTRION_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def backends() -> list[str]:
    """The backends the store tests run against, from ``ORCHESTRION_TEST_DATABASE``."""
    choice = os.environ.get("ORCHESTRION_TEST_DATABASE", "both").strip().lower() or "both"
    if choice not in ("sqlite", "postgres", "both"):
        raise pytest.UsageError(
            f"ORCHESTRION_TEST_DATABASE={choice!r}: use sqlite, postgres or both"
        )
    return ["sqlite", "postgres"] if choice == "both" else [choice]


@functools.cache
def _unavailable() -> str | None:
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def require_postgres() -> None:
    """Skip (fail with ``CI=true``) when PostgreSQL does not answer."""
    reason = _unavailable()
    if reason is None:
        return
    message = (
        f"PostgreSQL is not reachable at {ADMIN_URL} ({reason}). Start PostgreSQL on"
        " 127.0.0.1:5432 (or run ../shared/services.sh postgres), point"
        " ORCHESTRION_TEST_PG_URL at a server, or set ORCHESTRION_TEST_DATABASE=sqlite."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_database() -> str:
    """A new empty database; its URL."""
    name = f"orch_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(ADMIN_URL, name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_schema(database_url: str) -> tuple[str, str]:
    """A new empty schema in the database: (a URL whose search_path is it, its name)."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    parts = urlsplit(database_url)
    query = urlencode({"options": f"-c search_path={name}"}, quote_via=quote)
    return urlunsplit(parts._replace(query=query)), name


def drop_schema(database_url: str, name: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
