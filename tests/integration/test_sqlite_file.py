"""The SQLite file the store makes: its page size and journal, an older file's kept, and
its WAL copied into it by a thread beside the writers."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrion.store import open_store
from orchestrion.store.sqlite.checkpoints import AIM, START_AT, Checkpointer
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


def _fill(
    store: object,
    until: Callable[[], bool],
    limit: int = 5000,
    size: int = 1500,
    name: str = "filler",
) -> int:
    """Commit workflow versions (each a transaction of a few pages) until `until()`."""
    for i in range(limit):
        if until():
            return i
        spec = wf(name, py("a"), description=f"version {i} " + "x" * size)
        store.workflows.register_workflow(spec, source=None, now=time.time())  # type: ignore[attr-defined]
    raise AssertionError(f"not after {limit} commits")


def _wal_pages(path: Path) -> float:
    page = _pragma(path, "page_size")
    assert isinstance(page, int)
    return (path.with_name(path.name + "-wal").stat().st_size - 32) / (page + 24)


def test_the_wal_is_copied_beside_the_writers_and_started_again(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}")
    checkpoints = store.backend._checkpoints  # type: ignore[attr-defined]
    try:
        commits = _fill(store, lambda: checkpoints.caught_up >= 3, size=6000)
        wal_pages = _wal_pages(path)
        thread = checkpoints._thread
    finally:
        store.close()  # joins the thread: its counts are final
    # Every cycle ended with the whole WAL in the file, so the writers started it again
    # each time and it stays near the mark. (Without the copy under the writer locks, a
    # thread beside a busy writer never finds the WAL copied whole and the WAL grows
    # without end; session 17 saw 78 MB.) The bound leaves room for SQLite's own
    # checkpoint, at 4,000 pages, coming first on a loaded machine.
    assert checkpoints.caught_up == checkpoints.cycles >= 3
    assert wal_pages < 2 * 4000, (wal_pages, commits)
    # Its thread and connection are gone: the writers' connection closed last, which
    # copied the rest and removed the WAL.
    assert thread is not None and not thread.is_alive()
    assert not path.with_name("busy.db-wal").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_store_that_commits_little_starts_no_checkpoint_thread(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'quiet.db'}")
    try:
        for i in range(20):
            spec = wf("one", py("a"), description=f"version {i}")
            store.workflows.register_workflow(spec, source=None, now=time.time())
        assert store.backend._checkpoints._thread is None  # type: ignore[attr-defined]
    finally:
        store.close()


_TRY_THE_INDEX_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)  # SQLite's DMS byte of -shm
except OSError:
    print("held")
else:
    print("free")
"""


def test_a_closed_store_leaves_the_locks_of_another_store_of_its_file(tmp_path: Path) -> None:
    """Each store's thread reaches the file only through SQLite. Opening and closing a
    descriptor of the WAL index directly would drop every lock this process holds on it,
    the other store's included: another process could then rebuild the index under it."""
    path = tmp_path / "shared.db"
    first = open_store(f"sqlite:///{path}")
    second = open_store(f"sqlite:///{path}")
    try:
        checkpoints = first.backend._checkpoints  # type: ignore[attr-defined]
        _fill(first, lambda: checkpoints.caught_up >= 2, size=6000)
        first.close()
        probe = subprocess.run(
            [sys.executable, "-c", _TRY_THE_INDEX_LOCK, f"{path}-shm"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert probe.stdout.strip() == "held"  # by the second store's connection
        other = second.backend._checkpoints  # type: ignore[attr-defined]
        _fill(second, lambda: other.caught_up >= 2, size=6000, name="other")
        assert second.workflows.get_workflow("other").spec.name == "other"
    finally:
        first.close()
        second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _dropped_with_a_thread(path: Path) -> tuple[threading.Thread, weakref.ref[object]]:
    """A store that commits until its checkpoint thread has started, then is dropped."""
    store = open_store(f"sqlite:///{path}")
    checkpoints = store.backend._checkpoints  # type: ignore[attr-defined]
    _fill(store, lambda: checkpoints._thread is not None)
    return checkpoints._thread, weakref.ref(store.backend)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the unclosed store's socket and files
def test_a_store_dropped_without_closing_takes_its_thread_with_it(tmp_path: Path) -> None:
    thread, backend = _dropped_with_a_thread(tmp_path / "dropped.db")
    gc.collect()
    assert backend() is None  # the thread holds no strong reference to it
    thread.join(10)
    assert not thread.is_alive()


def test_the_cycles_come_after_as_many_commits_as_fill_the_aim() -> None:
    """`every` from what a cycle found: a long WAL is a sure measure (shrink to it, grow
    a quarter at most); a short one may follow SQLite's own checkpoint, so it only brings
    `every` back towards the first guess."""
    checkpoints = Checkpointer("unused.db", lambda: contextlib.nullcontext(True))
    first = checkpoints.every
    checkpoints._adapt(first, AIM * 4)  # commits four times the aim's size
    assert checkpoints.every == first // 4
    shrunk = checkpoints.every
    checkpoints._adapt(shrunk, START_AT)  # smaller commits now: grows, a quarter at most
    assert checkpoints.every == shrunk + shrunk // 4 + 1
    checkpoints._adapt(checkpoints.every, START_AT // 4)  # short: back towards the first
    assert shrunk < checkpoints.every <= first
    for _ in range(20):
        checkpoints._adapt(checkpoints.every, 10)
    assert checkpoints.every == first  # never past it from short WALs
    checkpoints._adapt(first, 10**9)
    assert checkpoints.every >= 1  # bounded below
