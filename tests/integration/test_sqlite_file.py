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
from typing import cast

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
    limit: int = 60_000,
    seconds: float = 90.0,
    size: int = 1500,
    name: str = "filler",
) -> int:
    """Commit workflow versions (each a transaction of a few pages) until `until()`.

    About 800 commits reach three caught-up cycles on a quiet disk. A disk shared with
    busy neighbours (CI's other test worker) slows the checkpoints, and this tight loop
    then outruns several cycles before one catches up. Beside three processes writing
    and syncing 64 MB files, runs here took up to 21,647 commits (16 s), and one of 15
    did not get there in 30,000. `limit` is about three times the first, and `seconds`
    keeps a test that fills twice within pytest's timeout (300 s)."""
    deadline = time.monotonic() + seconds
    for i in range(limit):
        if until():
            return i
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {i} commits in {seconds:.0f} s")
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
    # thread beside a busy writer never finds the WAL copied whole: `_fill` gives up, and
    # the WAL grows without end; session 17 saw 78 MB, some 38,000 pages.) The bound
    # leaves room for SQLite's own checkpoint, at 4,000 pages, coming first on a loaded
    # machine, and for what this loop appends while a slow disk holds a checkpoint up
    # (17,057 pages once, beside the writers of `_fill`'s docstring).
    assert checkpoints.caught_up == checkpoints.cycles >= 3
    assert wal_pages < 8 * 4000, (wal_pages, commits)
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


class _Scripted(Checkpointer):
    """A checkpointer whose passes report what a script says (the WAL's pages, and the
    pages copied so far), for a cycle's arithmetic alone."""

    def __init__(self, passes: list[tuple[int, int]]) -> None:
        super().__init__("unused.db", lambda: contextlib.nullcontext(True))
        self.passes = passes

    def _connection(self) -> sqlite3.Connection | None:
        return cast(sqlite3.Connection, object())  # only ever handed to `_pass`

    def _pass(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        pages, done = self.passes.pop(0)
        return 0, pages, done


def test_cycles_that_cannot_start_the_wal_again_leave_every_as_it_was() -> None:
    """A writer faster than the copy (a busy disk): no pass gets short, and the WAL goes
    on towards SQLite's own mark, whose checkpoint may start it again unseen. The commits
    counted since this thread last did no longer measure a commit's pages, and cycles
    come a few commits apart: `every` must not grow from them (it grew a quarter a
    cycle, to its bound, before)."""
    passes = []
    for cycle in range(20):  # each: a long WAL, then three passes that never get short
        pages = START_AT + 100 * cycle
        passes += [(pages, pages - 500), (pages + 400, pages), (pages + 800, pages + 400)]
        passes += [(pages + 1200, pages + 800)]
    checkpoints = _Scripted(passes)
    before = checkpoints.every
    checkpoints._commits = 1000  # 1,000 commits wrote START_AT pages: fewer than aimed at
    checkpoints._cycle()
    grown = checkpoints.every
    assert grown > before  # measured from this thread's count: trusted
    for _ in range(19):
        checkpoints._commits += 8
        checkpoints._cycle()
    assert checkpoints.passes == [] and checkpoints.cycles == 0
    assert checkpoints.every == grown


def test_a_wal_started_again_by_another_checkpoint_is_not_measured() -> None:
    """A cycle that finds fewer pages than the one before: SQLite's own checkpoint started
    the WAL again in between, so its pages are not what the commits counted wrote."""
    checkpoints = _Scripted([(1500, 1500), (600, 600), (900, 900)])
    checkpoints.every = 50  # below the first guess: a short WAL brings it back up
    checkpoints._commits = 200
    checkpoints._cycle()  # short: copied and left to grow
    assert checkpoints.every == 50 + 50 // 4 + 1
    every = checkpoints.every
    checkpoints._commits = 5000
    checkpoints._cycle()  # 600 < 1,500
    checkpoints._commits = 6000
    checkpoints._cycle()
    assert checkpoints.every == every


def test_its_own_restart_lets_every_adapt_again() -> None:
    """After cycles it could not trust, the thread's own restart starts a count that it
    can: the next long WAL adapts `every` again."""
    long = START_AT + 500
    never_short = [(long + 400, long), (long + 800, long + 400), (long + 1200, long + 800)]
    passes = [(long, long - 500), *never_short]  # left long: not trusted
    passes += [(long, long - 100), (long + 50, long), (long + 60, long + 60)]  # restarted
    passes += [(START_AT, START_AT - 100), *never_short]  # a count from the restart
    checkpoints = _Scripted(passes)
    checkpoints._commits = 1000
    checkpoints._cycle()
    every = checkpoints.every
    checkpoints._commits += 8
    checkpoints._cycle()
    assert checkpoints.caught_up == 1 and checkpoints._commits == 0
    assert checkpoints.every == every  # the count was not trusted
    checkpoints._commits = 1000
    checkpoints._cycle()
    assert checkpoints.passes == [] and checkpoints.every != every
