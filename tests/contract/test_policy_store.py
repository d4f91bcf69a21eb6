"""The policy store under writers racing for a policy's first version, on both dialects.

A policy's first version has no row for a writer to lock. Two admins creating the same
policy at once (two server processes, or the API and a project apply) both read "none";
before this was handled, PostgreSQL refused the second on the version's key and the API
answered 503. Both writes must land, as versions 1 and 2 in some order.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from orchestrion.store.policy_records import PolicyRecord
from orchestrion.store.stores import Stores
from tests.contract.conftest import MakeStore

ROUNDS = 12


def _document(name: str, who: int) -> dict[str, Any]:
    return {"policy": name, "rules": [{"name": f"r{who}", "deny": "false", "message": "x"}]}


def _race(
    stores: list[Stores], name: str, documents: list[dict[str, Any]]
) -> tuple[list[PolicyRecord], list[BaseException]]:
    """Each store writes its document of `name` at the same moment (threads behind one
    barrier): what was written, and what was raised."""
    start = threading.Barrier(len(stores))
    written: list[PolicyRecord] = []
    failed: list[BaseException] = []

    def write(who: int) -> None:
        start.wait()
        try:
            written.append(
                stores[who].policies.put_policy(
                    name, documents[who], by=f"admin{who}", now=1000.0 + who
                )
            )
        except BaseException as exc:  # collected: the test asserts there is none
            failed.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return written, failed


def test_racing_first_writes_both_land(make_store: MakeStore) -> None:
    stores = [make_store(), make_store()]  # two store objects, as two processes would have
    for round_ in range(ROUNDS):
        name = f"race-{round_}"
        written, failed = _race(stores, name, [_document(name, 0), _document(name, 1)])
        assert failed == [], (round_, failed)
        assert sorted(r.version for r in written) == [1, 2], round_
        history = stores[0].policies.policy_history(name)
        assert sorted(r.version for r in history) == [1, 2]
        assert {r.created_by for r in history} == {"admin0", "admin1"}


def test_racing_writes_of_the_same_content_make_one_version(make_store: MakeStore) -> None:
    stores = [make_store(), make_store()]
    for round_ in range(ROUNDS):
        name = f"same-{round_}"
        written, failed = _race(stores, name, [_document(name, 0)] * 2)
        assert failed == [], (round_, failed)
        assert [r.version for r in written] == [1, 1], round_
        assert [r.version for r in stores[0].policies.policy_history(name)] == [1]


# ------------------------------------------------------------- PostgreSQL, in a set order


def _blocked(thread: threading.Thread) -> bool:
    """Whether `thread` is still waiting a moment after it started (on a lock)."""
    thread.start()
    thread.join(0.5)
    return thread.is_alive()


def _events(url: str, kind: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE kind = %s", (kind,)).fetchone()
        assert row is not None
        return int(row[0])


def test_a_writer_that_loses_the_first_version_writes_the_second(
    make_pg_store: MakeStore, pg_url: str
) -> None:
    """Another writer's first version, not yet committed: the put waits for it, then
    lands as version 2, with one event of its own."""
    store = make_pg_store()
    written: list[PolicyRecord] = []
    put = threading.Thread(
        target=lambda: written.append(
            store.policies.put_policy("p", _document("p", 1), by="late", now=2.0)
        )
    )
    with psycopg.connect(pg_url) as other:
        other.execute(
            "INSERT INTO policies (name, version, document, digest, deleted, created_at,"
            " created_by) VALUES ('p', 1, '{}', 'other', 0, 1.0, 'first')"
        )
        assert _blocked(put)  # its insert waits for this transaction's outcome
    put.join(10)  # the `with` committed
    assert [r.version for r in written] == [2]
    history = store.policies.policy_history("p")
    assert sorted((r.version, r.created_by) for r in history) == [(1, "first"), (2, "late")]
    assert _events(pg_url, "policy.put") == 1


def test_a_delete_handed_a_stale_row_decides_again(make_pg_store: MakeStore, pg_url: str) -> None:
    """A delete that waited on the lock of version 1 while another writer added version 2
    is handed version 1 again (READ COMMITTED): it must delete version 2, as version 3."""
    store = make_pg_store()
    store.policies.put_policy("p", _document("p", 0), by="a", now=1.0)
    deleted: list[bool] = []
    delete = threading.Thread(
        target=lambda: deleted.append(store.policies.delete_policy("p", by="b", now=3.0))
    )
    with psycopg.connect(pg_url) as other:
        other.execute("SELECT 1 FROM policies WHERE name = 'p' AND version = 1 FOR UPDATE")
        other.execute(
            "INSERT INTO policies (name, version, document, digest, deleted, created_at,"
            " created_by) VALUES ('p', 2, '{}', 'other', 0, 2.0, 'other')"
        )
        assert _blocked(delete)  # waits for version 1's lock
    delete.join(10)
    assert deleted == [True]
    history = sorted(store.policies.policy_history("p"), key=lambda r: r.version)
    assert [(r.version, r.deleted) for r in history] == [(1, False), (2, False), (3, True)]
    assert _events(pg_url, "policy.deleted") == 1
