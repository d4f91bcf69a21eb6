"""Claims on PostgreSQL: `sql.claim.claim` with the candidate rows locked.

Any number of workers claim at once. Each takes its candidates with ``FOR UPDATE SKIP
LOCKED``, so two claimers never wait for each other nor take the same task run, and moves
them to running with one ``UPDATE``.

**Concurrency limits.** Counting running task runs is a read that another claimer's
uncommitted claims do not change, so two claimers could both see a free slot and both take
it. For every limited name among its candidates (task concurrency key, limited queue,
rendered concurrency key: `slots.lock_names`), a claim therefore takes a transaction
advisory lock (``pg_advisory_xact_lock(CONCURRENCY_LOCKS, hashtext(key))``, in key order so
that claimers cannot deadlock) and only then counts. The lock is held until commit, so the
next claimer of that key counts this claim's rows. We chose this over a table of slot rows
because it needs no schema and no cleanup: the lock goes with the transaction, whatever
happens to the process. Claims without limited tasks take no lock. (A hash collision of two
keys only makes their claimers queue behind each other.)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from orchestrion.errors import IllegalTransition
from orchestrion.states import TASK_TRANSITIONS, TaskEvent, TaskState, task_target
from orchestrion.store.postgres.queries import PG
from orchestrion.store.postgres.tx import CONCURRENCY_LOCKS, PgTx
from orchestrion.store.sql.advance import Advance, loads
from orchestrion.store.sql.claim import Claimed, ClaimPart, claim_parts, make_claims
from orchestrion.store.sql.routing import route_filter
from orchestrion.store.sql.slots import lock_names, within_limits

__all__ = ["claim"]

_RUNNING = task_target(TaskEvent.CLAIM).value


@functools.lru_cache(maxsize=256)
def _candidates(queue_match: str, routed: str) -> str:
    """``PG.claim_candidates`` for a queue match and a label filter: composed once for
    each (a worker sends the same one on every claim)."""
    return PG.claim_candidates.fill(queue_match=queue_match, routed=routed)


def claim(
    adv: Advance,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease_until: float,
    labels: Mapping[str, str] | None = None,
) -> Claimed:
    """Move up to `limit` ready task runs to running under `worker_id`'s lease."""
    tx, now = adv.tx, adv.now
    pg = cast(PgTx, tx)
    # One queue (the usual case): the claim index is read in claim order and the scan
    # stops after `limit` rows; ``= ANY`` would read every ready row and sort them.
    routed, route_params = route_filter(labels)
    one = len(queues) == 1
    in_queues, queue_param = (PG.in_one_queue, queues[0]) if one else (PG.in_queues, list(queues))
    rows = tx.execute(
        _candidates(in_queues, routed),
        (queue_param, now, *route_params, now, now, limit),
    ).fetchall()
    if not rows:
        return Claimed(0, list)
    keys = lock_names(rows)
    if keys:
        # Queued: it travels with the count of `within_limits`, which the server runs after
        # the lock is granted, with a snapshot of its own that sees every claim committed
        # meanwhile (read committed); one round trip for both.
        pg.queue(PG.lock_limits, (CONCURRENCY_LOCKS, keys))
    chosen = within_limits(adv, rows, limit)
    if not chosen:
        return Claimed(0, list)
    for row in chosen:
        if (TaskState(row["state"]), TaskEvent.CLAIM) not in TASK_TRANSITIONS:
            raise IllegalTransition(f"task run cannot claim from {row['state']}")
    for row in chosen:
        adv.remember_run(row["run"])
    # The rows are locked: their state cannot have moved since the SELECT. Queued, and
    # checked by the server (`PgTx.queue_expecting`).
    pg.queue_expecting(
        PG.claim_locked,
        (_RUNNING, worker_id, lease_until, now, [r["id"] for r in chosen]),
        len(chosen),
        "claim of locked task runs",
    )
    attempts: list[tuple[Any, ...]] = []
    for row in chosen:
        epoch, number = row["lease_epoch"] + 1, row["attempts"] + 1
        adv.event(
            row["run_id"],
            row["id"],
            f"task.{TaskEvent.CLAIM.value}",
            row["state"],
            _RUNNING,
            {"worker": worker_id, "attempt": number},
        )
        attempts.append((row["id"], row["run_id"], number, epoch, worker_id, now))
    # nobody reads its result: it travels with the next wait
    pg.queue(PG.insert_attempts, [list(c) for c in zip(*attempts, strict=True)])
    parts = claim_parts(adv, chosen)
    # Queued: the upstream results come back with the COMMIT (`Claimed.build`).
    results = _queue_results(pg, parts)
    return Claimed(len(chosen), lambda: make_claims(parts, _read_results(results)))


def _queue_results(pg: PgTx, parts: Sequence[ClaimPart]) -> Any:
    pairs = sorted({(p.row["run_id"], name) for p in parts for name in p.wanted})
    if not pairs:
        return None
    return pg.queue(PG.upstream_results, ([r for r, _ in pairs], [n for _, n in pairs]))


def _read_results(cursor: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for row in cursor.fetchall() if cursor is not None else ():
        found.setdefault(row["run_id"], {})[row["task_name"]] = loads(row["result"])
    return found
