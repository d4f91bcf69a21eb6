"""The claim, written once for both dialects: ready task runs move to running under a
worker's lease, and each becomes a `Claim` with what its execution needs.

SQLite runs `claim` as it is; PostgreSQL (`postgres.claim`) reads its candidates its own
way (locked, skipping rows other claimers hold) and shares the rest: `claim_parts`,
`make_claims` and the limits of `slots.within_limits`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from orchestrion.errors import IllegalTransition, StoreError
from orchestrion.states import TASK_TRANSITIONS, TaskEvent, TaskState, task_target
from orchestrion.store.records import Claim
from orchestrion.store.sql.advance import Advance, loads
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.routing import route_filter
from orchestrion.store.sql.slots import within_limits

__all__ = ["ClaimPart", "Claimed", "build_claims", "claim", "claim_parts", "make_claims"]

_RUNNING = task_target(TaskEvent.CLAIM).value
_CLAIM_EVENT = f"task.{TaskEvent.CLAIM.value}"


@functools.lru_cache(maxsize=256)
def _candidates(queues: int, routed: str) -> str:
    """``Q.claim_candidates`` for a number of queues and a label filter: composed once for
    each (a worker sends the same one on every claim)."""
    return Q.claim_candidates.fill(queues=marks(queues), routed=routed)


def claim(
    adv: Advance,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease_until: float,
    labels: Mapping[str, str] | None = None,
) -> list[Claim]:
    """Move up to `limit` ready task runs to running under `worker_id`'s lease.

    Runs inside the caller's write transaction, so the concurrency counts it reads cannot
    change before its updates land.
    """
    tx, now = adv.tx, adv.now
    routed, route_params = route_filter(labels)
    rows = tx.execute(
        _candidates(len(queues), routed),
        (*queues, now, *route_params, now, now, limit * 4),
    ).fetchall()
    chosen = within_limits(adv, rows, limit)
    if not chosen:
        return []
    for row in chosen:
        if (TaskState(row["state"]), TaskEvent.CLAIM) not in TASK_TRANSITIONS:
            raise IllegalTransition(f"task run cannot claim from {row['state']}")
    ids = [row["id"] for row in chosen]
    # One statement for the batch: within this transaction the rows cannot have moved
    # since they were read, and the count proves it.
    moved = tx.execute(
        Q.claim_chosen.fill(ids=marks(len(ids))), (worker_id, lease_until, now, *ids)
    ).rowcount
    if moved != len(ids):
        raise StoreError(f"{len(ids) - moved} claimed task runs moved while claiming")
    attempts: list[tuple[Any, ...]] = []
    for row in chosen:
        epoch, number = row["lease_epoch"] + 1, row["attempts"] + 1
        adv.event(
            row["run_id"],
            row["id"],
            _CLAIM_EVENT,
            row["state"],
            _RUNNING,
            {"worker": worker_id, "attempt": number},
        )
        attempts.append((row["id"], row["run_id"], number, epoch, worker_id, now))
    tx.executemany(Q.insert_attempts, attempts)
    return build_claims(adv, chosen)


class ClaimPart(NamedTuple):
    """What a claim needs of its transaction (row, run, upstream names), gathered inside
    it; the upstream results may come back later (`Claimed`)."""

    row: Any
    run: Any
    task_name: str
    wanted: tuple[str, ...]


class Claimed(NamedTuple):
    """A claim's outcome: how many task runs it took, and a way to build their `Claim`s,
    called once the transaction is over (on PostgreSQL the upstream results arrive with
    the COMMIT, in the same round trip)."""

    taken: int
    build: Callable[[], list[Claim]]


def claim_parts(adv: Advance, rows: Sequence[Any]) -> list[ClaimPart]:
    """Each just-claimed row (as read before the claim's update) with what its claim needs."""
    parts: list[ClaimPart] = []
    for row in rows:
        spec, run = adv.spec_for_run(row["run_id"])
        name = str(row["task_name"]).removeprefix("undo:")
        if row["kind"] == "undo":
            # an undo step also sees the result of what it undoes
            wanted = tuple(sorted({*spec.task(name).depends_on, name}))
        else:
            wanted = spec.results_read(name)
        parts.append(ClaimPart(row, run, name, wanted))
    return parts


def make_claims(
    parts: Sequence[ClaimPart], results: Mapping[str, Mapping[str, Any]]
) -> list[Claim]:
    """The `Claim`s, given the upstream results (run id -> task name -> result)."""
    out: list[Claim] = []
    for part in parts:
        row, run = part.row, part.run
        found = results.get(row["run_id"], {})
        out.append(
            Claim(
                task_run_id=row["id"],
                run_id=row["run_id"],
                workflow=run["workflow"],
                version=run["version"],  # spec.version hashes the whole spec each time
                task_name=str(row["task_name"]),
                kind=row["kind"],
                map_index=row["map_index"],
                attempt=row["attempts"] + 1,
                epoch=row["lease_epoch"] + 1,
                params=loads(run["params"]),
                upstream={n: found.get(n) for n in part.wanted},
                item=loads(row["item"]),
                undo_of_result=found.get(part.task_name) if row["kind"] == "undo" else None,
            )
        )
    return out


def build_claims(adv: Advance, rows: Sequence[Any]) -> list[Claim]:
    """The `Claim` of each just-claimed row, its upstream results read now."""
    parts = claim_parts(adv, rows)
    wanted: dict[str, set[str]] = {}
    for part in parts:
        wanted.setdefault(part.row["run_id"], set()).update(part.wanted)
    return make_claims(parts, {run: adv.results_of(run, names) for run, names in wanted.items()})
