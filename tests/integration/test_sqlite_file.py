"""The SQLite file the store makes: its page size and journal, and an older file's kept."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from orchestrion.store import open_store
from tests.helpers import py, wf

pytestmark = pytest.mark.sqlite_only(reason="a SQLite file's format: its page size")


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_file_gets_small_pages_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = open_store(f"sqlite:///{path}")
    store.close()
    # 2 KiB: a commit writes every page it dirtied to the WAL (queries.sql says why).
    assert _pragma(path, "page_size") == 2048
    assert _pragma(path, "journal_mode") == "wal"


def test_an_existing_file_keeps_its_page_size_and_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # as a store before 2 KiB pages made it
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE earlier (x INTEGER)")
    store = open_store(f"sqlite:///{path}")
    try:
        spec = wf("kept", py("a"), py("b", "a"))
        store.workflows.register_workflow(spec, source=None, now=time.time())
        assert store.workflows.get_workflow("kept").spec.name == "kept"
    finally:
        store.close()
    assert _pragma(path, "page_size") == 4096
