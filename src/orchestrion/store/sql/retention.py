"""`SqlRetention`: the `RetentionStore` of both dialects, over a `Database`.

Pruning is a series of short transactions, each deleting at most a batch of runs (and
the rows they own) or of log lines: SQLite's single writer is held for one batch at a
time, so workers claim and finish between batches; on PostgreSQL the candidate runs are
locked with ``SKIP LOCKED`` (a run being rerun at that moment is passed over, not waited
for). A run's family (the child runs its sub-workflow tasks started, to any depth) goes
with it or stays with it: never a parent without its children, nor a child alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrion.errors import NotFound
from orchestrion.states import RunState
from orchestrion.store.records import AuditRecord, PruneBatch, PruneCounts, RetentionPolicy
from orchestrion.store.retention import AuditScope
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance, Tx
from orchestrion.store.sql.artifacts import objects_of_runs
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.guarded import dumps
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q

__all__ = ["SqlRetention"]

#: IN lists are sent in chunks of this many values (SQLite's default limit is 32766
#: parameters; PostgreSQL's 65535).
_CHUNK = 500
#: A dry run's chunks: it only reads, so larger chunks mean fewer round trips (its count
#: query repeats the list 5 times: 25,000 parameters, under both limits).
_READ_CHUNK = 5000

#: Deepest sub-workflow nesting followed when gathering a family (a guard against a cycle
#: that a damaged database could hold).
_MAX_DEPTH = 32


class SqlRetention:
    """See `orchestrion.store.retention.RetentionStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------------ policies

    def put_policy(self, policy: RetentionPolicy, *, now: float) -> bool:
        p = policy

        def fn(adv: Advance) -> bool:
            existed = adv.tx.execute(
                Q.retention_policy_exists + adv.for_update(), (p.namespace,)
            ).fetchone()
            adv.tx.execute(
                Q.put_retention_policy,
                (
                    p.namespace,
                    p.runs_days,
                    p.logs_days,
                    p.keep_last,
                    p.audit_days,
                    p.audit_export_dir,
                    now,
                ),
            )
            kind = "retention.updated" if existed else "retention.created"
            adv.event(None, None, kind, data={"namespace": p.namespace})
            return existed is None

        return self._db.transact(now, fn)

    def get_policy(self, namespace: str) -> RetentionPolicy | None:
        found = self._db.read(Q.retention_policy, (namespace,))
        return rows.RETENTION(found[0]) if found else None

    def list_policies(self) -> list[RetentionPolicy]:
        return [rows.RETENTION(r) for r in self._db.read(Q.retention_policies)]

    def delete_policy(self, namespace: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            if adv.tx.execute(Q.delete_retention_policy, (namespace,)).fetchone() is None:
                return False
            adv.event(None, None, "retention.deleted", data={"namespace": namespace})
            return True

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ keep marks

    def set_keep(self, run_id: str, keep: bool, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            row = adv.tx.execute(Q.run_keep + adv.for_update(), (run_id,)).fetchone()
            if row is None:
                raise NotFound(f"no run with id {run_id!r}")
            if bool(row["keep"]) == keep:
                return False
            adv.tx.execute(Q.set_run_keep, (int(keep), run_id))
            adv.event(run_id, None, "run.kept" if keep else "run.unkept")
            return True

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ runs

    def prune_runs(
        self,
        workflow: str,
        *,
        before: float,
        keep_last: int,
        limit: int,
        now: float,
        after: tuple[float, str] | None = None,
        dry_run: bool = False,
    ) -> PruneBatch:
        if dry_run:
            return PruneBatch(counts=self._count_prunable(workflow, before, keep_last))

        def fn(adv: Advance) -> PruneBatch:
            params: tuple[Any, ...] = (workflow, before, before, workflow, keep_last)
            query: str = Q.prunable_runs
            if after is not None:
                query, params = Q.prunable_runs_after, (*params, after[0], after[0], after[1])
            sql = query + adv.for_update(skip_locked=True)
            found = adv.tx.execute(sql, (*params, limit)).fetchall()
            last = (float(found[-1]["created_at"]), str(found[-1]["id"])) if found else None
            ids = _families(adv.tx, [r["id"] for r in found], lock=adv.for_update())
            counts, objects = PruneCounts(), []
            if ids:
                for chunk in _chunks(ids):
                    objects += objects_of_runs(adv.tx, chunk)
                counts = _delete_runs(adv.tx, ids)
                adv.event(None, None, "retention.pruned", data=counts.as_dict())
            return PruneBatch(
                counts=counts,
                next=last if len(found) >= limit else None,
                objects=tuple(objects),
            )

        return self._db.transact(now, fn)

    def _count_prunable(self, workflow: str, before: float, keep_last: int) -> PruneCounts:
        """Every prunable run's family and its rows, counted outside any write."""
        counts = PruneCounts()
        params = (workflow, before, before, workflow, keep_last, 2**62)
        roots = [r["id"] for r in self._db.read(Q.prunable_runs, params)]
        for start in range(0, len(roots), _READ_CHUNK):
            some = roots[start : start + _READ_CHUNK]
            ids = _families(_ReadTx(self._db), some, lock="", size=_READ_CHUNK)
            for chunk in _chunks(ids, _READ_CHUNK):
                row = self._db.read(Q.count_owned.fill(ids=marks(len(chunk))), chunk * 5)[0]
                counts += PruneCounts(runs=len(chunk), **{k: int(row[k]) for k in _OWNED})
        return counts

    # ------------------------------------------------------------------ logs

    def prune_logs(
        self,
        workflows: Sequence[str],
        *,
        before: float,
        limit: int,
        now: float,
        dry_run: bool = False,
    ) -> int:
        if dry_run:
            return sum(
                int(self._db.read(Q.count_old_logs, (w, before, before))[0]["n"]) for w in workflows
            )

        def fn(adv: Advance) -> int:
            found: list[int] = []
            for workflow in workflows:
                if len(found) >= limit:
                    break
                params = (workflow, before, before, limit - len(found))
                found += [r["id"] for r in adv.tx.execute(Q.old_log_ids, params).fetchall()]
            if not found:
                return 0
            deleted = sum(
                int(adv.tx.execute(Q.delete_logs_by_id.fill(ids=marks(len(c))), c).rowcount)
                for c in _chunks(found)
            )
            adv.event(None, None, "retention.pruned", data=PruneCounts(logs=deleted).as_dict())
            return deleted

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ history of no run

    def prune_history(self, *, before: float, limit: int, now: float) -> PruneCounts:
        def fn(adv: Advance) -> PruneCounts:
            gone: dict[str, int] = {}
            for field, pick, delete in _HISTORY:
                found = [r["id"] for r in adv.tx.execute(pick, (before, limit)).fetchall()]
                gone[field] = sum(
                    int(adv.tx.execute(delete.fill(ids=marks(len(c))), c).rowcount)
                    for c in _chunks(found)
                )
            counts = PruneCounts(**gone)
            if counts.total:
                adv.event(None, None, "retention.pruned", data=counts.as_dict())
            return counts

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ the task cache

    def prune_cache(self, *, now: float) -> int:
        def fn(adv: Advance) -> int:
            gone = int(adv.tx.execute(Q.cache_expired, (now,)).rowcount)
            gone += int(adv.tx.execute(Q.cache_orphans).rowcount)
            if gone:
                adv.event(None, None, "retention.pruned", data=PruneCounts(cache=gone).as_dict())
            return gone

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ the audit log

    def audit_to_prune(self, scope: AuditScope, *, before: float, limit: int) -> list[AuditRecord]:
        condition, params = _scope(scope)
        sql = Q.audit_to_prune.fill(scope=condition)
        return [rows.AUDIT(r) for r in self._db.read(sql, (before, *params, limit))]

    def delete_audit(
        self, scope: AuditScope, *, up_to_id: int, before: float, export: str, now: float
    ) -> int:
        condition, params = _scope(scope)

        def fn(adv: Advance) -> int:
            adv.tx.execute(Q.open_audit_gate, (up_to_id, before))
            sql = Q.delete_audit_rows.fill(scope=condition)
            deleted = int(adv.tx.execute(sql, (up_to_id, before, *params)).rowcount)
            adv.tx.execute(Q.close_audit_gate)
            detail = {"deleted": deleted, "up_to_id": up_to_id, "before": before}
            adv.tx.execute(
                Q.insert_audit,
                (
                    now,
                    "retention",
                    "system",
                    "audit.pruned",
                    f"export {export}",
                    scope[0],
                    dumps(detail),
                    "ok",
                    None,
                    None,
                    "maintenance",
                ),
            ).fetchone()
            adv.event(None, None, "retention.pruned", data=PruneCounts(audit=deleted).as_dict())
            return deleted

        return self._db.transact(now, fn)


#: The columns of `Q.count_owned`, each a `PruneCounts` field.
_OWNED = ("task_runs", "attempts", "events", "logs", "fires")

#: Deletes in an order no foreign key objects to (attempts before task runs before runs),
#: and the `PruneCounts` field each one counts.
_DELETES = (
    ("logs", Q.prune_logs_of),
    ("events", Q.prune_events_of),
    ("attempts", Q.prune_attempts_of),
    ("fires", Q.prune_fires_of),
    ("cache", Q.prune_cache_of),
    ("waits", Q.prune_waits_of),
    ("waits", Q.prune_signals_of),
    ("task_runs", Q.prune_task_runs_of),
    ("runs", Q.prune_runs_of),
)


#: The rows of no run that the history rule removes: field, what to pick, how to delete.
_HISTORY = (
    ("events", Q.old_history_events, Q.delete_events_by_id),
    ("inbox", Q.old_inbox, Q.delete_inbox_by_id),
    ("fires", Q.old_fires, Q.delete_fires_by_id),
)


class _ReadTx:
    """A `Tx` that only reads, over `Database.read` (for a dry run's family walk)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> _Rows:
        return _Rows(self._db.read(sql, params))


class _Rows:
    def __init__(self, found: list[Any]) -> None:
        self._found = found

    def fetchall(self) -> list[Any]:
        return self._found


def _chunks(ids: Sequence[Any], size: int = _CHUNK) -> list[list[Any]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def _families(tx: Tx | _ReadTx, roots: list[str], *, lock: str, size: int = _CHUNK) -> list[str]:
    """`roots` and their descendants, without every family that has a kept or unfinished
    member (that family stays whole)."""
    if not roots:
        return []
    root_of = {r: r for r in roots}
    bad: set[str] = set()
    level = list(roots)
    for _ in range(_MAX_DEPTH):
        children: list[Any] = []
        for chunk in _chunks(level, size):
            sql = Q.child_runs_of.fill(ids=marks(len(chunk))) + lock
            children += tx.execute(sql, chunk).fetchall()
        if not children:
            break
        level = []
        for child in children:
            root = root_of[child["parent"]]
            root_of[child["id"]] = root
            if child["keep"] or not RunState(child["state"]).finished:
                bad.add(root)
            level.append(child["id"])
    else:
        bad.update(root_of[r] for r in level)  # deeper than we follow: leave it alone
    return [run for run, root in root_of.items() if root not in bad]


def _delete_runs(tx: Tx, ids: list[str]) -> PruneCounts:
    """Delete the runs and every row they own; the counts by table."""
    counts: dict[str, int] = {}
    for chunk in _chunks(ids):
        for field, statement in _DELETES:
            cur = tx.execute(statement.fill(ids=marks(len(chunk))), chunk)
            counts[field] = counts.get(field, 0) + int(cur.rowcount)
    return PruneCounts(**counts)


def _scope(scope: AuditScope) -> tuple[str, tuple[Any, ...]]:
    """The `audit_scope_*` condition of `scope` and its parameters."""
    namespace, others = scope
    if namespace is not None:
        return Q.audit_scope_namespace, (namespace,)
    if not others:
        return Q.audit_scope_all, ()
    return Q.audit_scope_others.fill(names=marks(len(others))), tuple(others)
