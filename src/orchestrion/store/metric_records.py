"""The metrics read model (docs/operating.md): counts and gauges the store derives for a
scrape. Pure, like `orchestrion.store.records`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from orchestrion.store.broker_records import ConsumerRecord
from orchestrion.store.record import Record
from orchestrion.store.records import RunRecord, WorkerRecord

__all__ = [
    "DURATION_BUCKETS",
    "ActiveCount",
    "EndedCount",
    "MetricsSnapshot",
    "QueueDepth",
    "ScheduleLag",
    "TraceLineage",
]


# ------------------------------------------------------------------ metrics (docs/operating.md)

#: Upper bounds (seconds) of the duration histograms' buckets; bucket ``len(...)`` is +Inf.
#: Durable totals are kept per bucket index: change these and old totals keep their old
#: meaning, so only ever append a bound.
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
)  # fmt: skip


class EndedCount(Record, frozen=True, kw_only=True):
    """How many runs or attempts of a workflow ended with one outcome in one duration
    bucket (an index into `DURATION_BUCKETS`), and their total seconds: ever, from the
    durable totals plus the deltas not yet folded into them."""

    #: ``run`` or ``attempt``.
    family: str
    workflow: str
    outcome: str
    bucket: int
    n: int
    seconds: float


class ActiveCount(Record, frozen=True, kw_only=True):
    """How many runs of a workflow are in one unfinished state now."""

    workflow: str
    state: str
    n: int


class QueueDepth(Record, frozen=True, kw_only=True):
    """A queue's task runs ready to be claimed now, and when the oldest became ready."""

    queue: str
    ready: int
    oldest_ready_at: float


class ScheduleLag(Record, frozen=True, kw_only=True):
    """A schedule's latest fire: its nominal time and when it was decided (None: unknown)."""

    schedule_key: str
    workflow: str
    last_fire: float | None
    fired_at: float | None


class MetricsSnapshot(Record, frozen=True, kw_only=True):
    """What a scrape reports from the database, read by a bounded number of indexed
    queries (none scans the run or task run history)."""

    taken_at: float
    ended: tuple[EndedCount, ...]
    active_runs: tuple[ActiveCount, ...]
    queues: tuple[QueueDepth, ...]
    #: Worker id -> attempts it runs now (leases held).
    running: Mapping[str, int]
    #: Workers registered as running, with a recent heartbeat.
    workers: tuple[WorkerRecord, ...]
    schedules: tuple[ScheduleLag, ...]
    #: How long a trivial statement took (the database round trip), in seconds.
    db_seconds: float
    #: Broker triggers' consumers as their schedulers last reported them (lag included).
    consumers: tuple[ConsumerRecord, ...] = ()


class TraceLineage(Record, frozen=True, kw_only=True):
    """Where a run sits in its trace (docs/operating.md): the run, the top-level run whose
    id names the trace, and for a child run the parent task run (its run and current
    lease epoch) whose attempt started it."""

    run: RunRecord
    root_run_id: str
    parent_run_id: str | None = None
    parent_task_run_id: int | None = None
    parent_epoch: int | None = None
