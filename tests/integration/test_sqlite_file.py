"""The SQLite file the store makes: its page size and journal, an older file's kept, and
its WAL copied into it by a thread beside the writers."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrion.store import open_store
from orchestrion.store.sqlite.checkpoints import START_AT, wal_lag
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


def _fill(store: object, until: Callable[[], bool], limit: int = 5000) -> int:
    """Commit workflow versions (each a transaction of a few pages) until `until()`."""
    for i in range(limit):
        if until():
            return i
        spec = wf("filler", py("a"), description=f"version {i} " + "x" * 1500)
        store.workflows.register_workflow(spec, source=None, now=time.time())  # type: ignore[attr-defined]
    raise AssertionError(f"not after {limit} commits")


def test_the_wal_is_copied_beside_the_writers_and_started_again(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}")
    checkpoints = store.backend._checkpoints  # type: ignore[attr-defined]
    try:
        commits = _fill(store, lambda: checkpoints.caught_up >= 3)
        lag = checkpoints.lag()
        assert lag is not None and lag < START_AT  # started again since
        page = _pragma(path, "page_size")
        assert isinstance(page, int)
        wal_pages = (path.with_name("busy.db-wal").stat().st_size - 32) / (page + 24)
    finally:
        store.close()  # joins the thread: its counts are final
    # Every copy ended with the whole WAL in the file, so the writers started it again
    # each time: it stays near the mark. (Without the copy under the writer locks, a
    # thread beside a busy writer never finds the WAL copied whole, and it grows without
    # end; session 17 saw 78 MB.) The bound leaves room for SQLite's own checkpoint, at
    # 4,000 pages, coming first on a loaded machine.
    assert checkpoints.caught_up == checkpoints.cycles >= 3
    assert START_AT <= wal_pages < 2 * 4000, (wal_pages, commits)
    # Its thread and connection are gone: the writers' connection closed last, which
    # copied the rest and removed the WAL.
    assert not any(t.name == "sqlite-checkpoints" for t in threading.enumerate())
    assert not path.with_name("busy.db-wal").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_store_that_commits_little_starts_no_checkpoint_thread(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'quiet.db'}")
    try:
        store.workflows.register_workflow(wf("one", py("a")), source=None, now=time.time())
        assert store.backend._checkpoints.cycles == 0  # type: ignore[attr-defined]
        assert not any(t.name == "sqlite-checkpoints" for t in threading.enumerate())
    finally:
        store.close()


def test_the_wal_lag_is_read_from_the_wal_index_as_sqlite_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "lag.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (x BLOB)")
    for _ in range(40):
        conn.execute("INSERT INTO t VALUES (randomblob(3000))")
    shm = os.open(f"{path}-shm", os.O_RDONLY)
    try:
        lag = wal_lag(shm)
        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert lag == frames > 40 and copied == frames
        assert wal_lag(shm) == 0
        conn.execute("INSERT INTO t VALUES (1)")  # copied whole: the WAL starts again
        assert wal_lag(shm) == 1
    finally:
        os.close(shm)
        conn.close()
    junk = tmp_path / "junk-shm"
    junk.write_bytes(b"\x01" * 200)
    fd = os.open(junk, os.O_RDONLY)
    try:
        assert wal_lag(fd) is None  # not SQLite's format: the backstop alone then
    finally:
        os.close(fd)
