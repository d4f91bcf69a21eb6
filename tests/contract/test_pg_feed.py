"""PostgreSQL's event feed: a reader never passes an event id that is still committing
(`store/postgres/feed.py`), and gives up an id whose transaction rolled back."""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from orchestrion.store.stores import Stores
from tests.contract.conftest import MakeStore, pg_db
from tests.contract.test_store_contract import start
from tests.helpers import py, wf

MakePg = MakeStore


def _insert_event(conn: psycopg.Connection[TupleRow], kind: str) -> int:
    row = conn.execute(
        "INSERT INTO events (run_id, task_run_id, at, kind) VALUES (NULL, NULL, 0, %s)"
        " RETURNING id",
        (kind,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _kinds(store: Stores, after: int) -> list[str]:
    return [e.kind for e in store.reads.list_events(after_id=after)]


def test_an_event_still_committing_holds_the_feed_back(pg_url: str, make_pg_store: MakePg) -> None:
    store = make_pg_store()
    start(store, wf("feed", py("a")))
    before = store.reads.last_event_id()
    with psycopg.connect(pg_url) as slow, psycopg.connect(pg_url, autocommit=True) as fast:
        slow_id = _insert_event(slow, "slow")  # drawn first, committed last
        fast_id = _insert_event(fast, "fast")
        assert fast_id > slow_id
        assert _kinds(store, before) == []  # "fast" is visible, but "slow" may still come
        assert store.reads.last_event_id() == before
        slow.commit()
    assert _kinds(store, before) == ["slow", "fast"]
    assert store.reads.last_event_id() == fast_id


def test_a_rolled_back_id_is_given_up_after_the_patience(
    pg_url: str, make_pg_store: MakePg
) -> None:
    store = make_pg_store()
    run_id = start(store, wf("feed2", py("a")))
    before = store.reads.last_event_id()
    with psycopg.connect(pg_url) as aborted, psycopg.connect(pg_url, autocommit=True) as fast:
        _insert_event(aborted, "never")
        aborted.rollback()
        _insert_event(fast, "after")
    assert _kinds(store, before) == []  # the gap is young: it may be a commit in flight
    pg_db(store).feed.patience = 0.0
    assert _kinds(store, before) == ["after"]
    # a run's events go through the same horizon
    assert next(e.kind for e in store.reads.list_events(run_id)) == "run.created"
