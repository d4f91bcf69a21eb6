"""`SqlCache`: the `CacheStore` of both dialects, and `record_cache`, what a finish does
for the outcomes of cached tasks (``docs/caching.md``).

The lookup locks the entry row (PostgreSQL; SQLite's writers are serialised anyway) and
takes a key with a guarded write: a unique insert for a new key, a compare-and-set on the
owner and state it saw for one it takes over, so two runs with one key never both
compute it. The entry's result is written by the transaction that records the computing
attempt's success, copied from the task run's result column as that finish wrote it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from orchestrion.states import TaskState
from orchestrion.store.cache_records import CacheEntry, CacheKey, CacheLookup
from orchestrion.store.records import Outcome
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.guarded import loads
from orchestrion.store.sql.named import marks, where
from orchestrion.store.sql.queries import Q

__all__ = ["SqlCache", "record_cache"]

_RUNNING = TaskState.RUNNING.value


class SqlCache:
    """See `orchestrion.store.cache.CacheStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def cache_begin(
        self, key: CacheKey, *, run_id: str, task_run_id: int, now: float
    ) -> CacheLookup:
        # A hit is decided by reads alone (a committed ready entry is whole): only a key to
        # take, or one being computed, needs the write transaction (SQLite's one writer).
        ident = (key.namespace, key.workflow, key.task_name, key.key)
        found = self._db.read(Q.cache_entry, ident)
        if found and found[0]["state"] == "ready":
            hit = _hit(found[0], now)
            no_cache = self._db.read(Q.run_no_cache, (run_id,))
            if hit is not None and not (no_cache and no_cache[0]["no_cache"]):
                return hit
        return self._db.transact(now, lambda adv: _begin(adv, key, run_id, task_run_id))

    def list_cache(
        self,
        *,
        workflow: str | None = None,
        namespaces: Collection[str] | None = None,
        limit: int = 500,
    ) -> list[CacheEntry]:
        condition, params = _filter(workflow, namespaces)
        found = self._db.read(Q.cache_entries.fill(where=condition), (*params, limit))
        return [
            CacheEntry(
                namespace=r["namespace"],
                workflow=r["workflow"],
                task_name=r["task_name"],
                cache_key=r["cache_key"],
                state=r["state"],
                run_id=r["run_id"],
                task_run_id=int(r["task_run_id"]),
                created_at=float(r["created_at"]),
                expires_at=None if r["expires_at"] is None else float(r["expires_at"]),
            )
            for r in found
        ]

    def clear_cache(
        self,
        *,
        workflow: str | None = None,
        namespaces: Collection[str] | None = None,
        now: float,
    ) -> int:
        condition, params = _filter(workflow, namespaces)

        def fn(adv: Advance) -> int:
            gone = int(adv.tx.execute(Q.cache_clear.fill(where=condition), params).rowcount)
            data = {"workflow": workflow, "entries": gone}
            adv.event(None, None, "cache.cleared", data=data)
            return gone

        return self._db.transact(now, fn)


def _filter(
    workflow: str | None, namespaces: Collection[str] | None
) -> tuple[str, tuple[Any, ...]]:
    conditions: list[str] = []
    params: list[Any] = []
    if namespaces is not None:
        names = sorted(namespaces) or [""]  # none visible: a namespace no entry has
        conditions.append(Q.cache_in_namespaces.fill(names=marks(len(names))))
        params += names
    if workflow is not None:
        conditions.append(Q.cache_of_workflow)
        params.append(workflow)
    return where(*conditions), tuple(params)


def _begin(adv: Advance, key: CacheKey, run_id: str, task_run_id: int) -> CacheLookup:
    tx, now = adv.tx, adv.now
    ident = (key.namespace, key.workflow, key.task_name, key.key)
    refresh = bool(tx.execute(Q.run_no_cache, (run_id,)).fetchone()["no_cache"])
    row = tx.execute(Q.cache_entry + adv.for_update(), ident).fetchone()
    if row is None:
        took = tx.execute(Q.cache_claim, (*ident, run_id, task_run_id, now)).fetchone()
        return CacheLookup(verdict="compute" if took is not None else "busy")
    owner = int(row["task_run_id"])
    if row["state"] == "computing":
        if owner == task_run_id:  # this task run's earlier attempt: its retry computes
            return CacheLookup(verdict="compute")
        alive = tx.execute(Q.cache_owner, (owner,)).fetchone()
        if (
            alive is not None
            and alive["state"] == _RUNNING
            and (alive["lease_expires_at"] or 0) > now
        ):
            return CacheLookup(verdict="busy")
    elif not refresh and (hit := _hit(row, now)) is not None:
        return hit
    took = tx.execute(
        Q.cache_take_over, (run_id, task_run_id, now, *ident, owner, row["state"])
    ).fetchone()
    return CacheLookup(verdict="compute" if took is not None else "busy")


def _hit(row: Any, now: float) -> CacheLookup | None:
    """The hit a ready entry's row is, or None once it expired."""
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    return CacheLookup(
        verdict="hit",
        result=loads(row["result"]),
        source_run_id=row["run_id"],
        source_task_run_id=int(row["task_run_id"]),
    )


def record_cache(adv: Advance, outcomes: Sequence[Outcome], applied: Collection[int]) -> None:
    """For the outcomes of cached tasks whose finish was just applied: link a hit to its
    source, write a computed success's entry, give up a failed attempt's key."""
    done = set(applied)
    for outcome in outcomes:
        note = outcome.cache
        if note is None or outcome.task_run_id not in done:
            continue
        k = note.key
        ident = (k.namespace, k.workflow, k.task_name, k.key)
        if outcome.status != "succeeded":
            adv.tx.execute(Q.cache_release, (*ident, outcome.task_run_id))
        elif note.source_run_id is not None:
            adv.tx.execute(
                Q.cache_hit_mark,
                (note.source_run_id, note.source_task_run_id, outcome.task_run_id),
            )
            row = adv.task_row(outcome.task_run_id)
            source = {"run_id": note.source_run_id, "task_run_id": note.source_task_run_id}
            adv.event(
                row["run_id"] if row else None, outcome.task_run_id, "task.cache_hit", data=source
            )
        else:
            expires = None if note.ttl is None else adv.now + note.ttl
            adv.tx.execute(Q.cache_store, (*ident, "ready", adv.now, expires, outcome.task_run_id))
