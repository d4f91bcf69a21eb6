"""The policy store under writers racing for a policy's first version, on both dialects.

A policy's first version has no row for a writer to lock. Two admins creating the same
policy at once (two server processes, or the API and a project apply) both read "none";
before this was handled, PostgreSQL refused the second on the version's key and the API
answered 503. Both writes must land, as versions 1 and 2 in some order.
"""

from __future__ import annotations

import threading
from typing import Any

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
