"""`SqlAssets` (the `AssetStore` of both dialects) and `record_produced`, which writes a
finish's asset events inside the finish's own transaction.

`record_produced` looks only at outcomes that carry assets, so a finish of tasks that
declare none costs one attribute test per outcome. For those that do, it reads the task
run back and writes events only if its success was recorded (a success whose result was
too large is recorded as a failure; a late one as superseded).

An asset trigger's exactly-once rests on ``asset_consumed``'s primary key (trigger,
event): starting its run inserts one row per consumed event first, and a key already
taken (another scheduler won the race, on PostgreSQL after waiting for its commit) rolls
the whole transaction back, run included.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Final

from orchestrion.errors import StoreError
from orchestrion.store.asset_records import AssetEvent, AssetSummary
from orchestrion.store.records import Outcome, RunRequest
from orchestrion.store.sql import lifecycle, trigger_queries
from orchestrion.store.sql.advance import Advance, dumps
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.duties import set_cursor
from orchestrion.store.sql.lifecycle import new_run_id
from orchestrion.store.sql.named import NamedQueries, load_queries, marks, where
from orchestrion.store.sql.rows import column_list, row_reader
from orchestrion.store.sql.trigger_verbs import audit_started

__all__ = ["SqlAssets", "record_produced"]

_COLUMNS = {"partition": "part"}
AQ: Final[NamedQueries] = load_queries(
    Path(__file__).with_name("asset_queries.sql"),
    substitutions={"event_columns": column_list(AssetEvent, columns=_COLUMNS)},
)
_EVENT = row_reader(AssetEvent, columns=_COLUMNS)
_SUMMARY = row_reader(AssetSummary)
_SUCCEEDED = "succeeded"


class _Consumed(StoreError):
    """Another scheduler consumed one of the events first: roll this start back."""


def record_produced(adv: Advance, outcomes: Sequence[Outcome], applied: Collection[int]) -> None:
    """Write the asset events of the recorded successes among `outcomes`."""
    for outcome in outcomes:
        if not outcome.assets or outcome.task_run_id not in applied:
            continue
        row = adv.tx.execute(AQ.produced_row, (outcome.task_run_id,)).fetchone()
        if row is None or row["state"] != _SUCCEEDED:
            continue
        spec, _ = adv.spec_for_run(row["run_id"])
        for made in outcome.assets:
            metadata = None if made.metadata is None else dumps(made.metadata)
            values = (
                spec.namespace, made.key, made.partition or "", spec.name, row["run_id"],
                row["task_name"], outcome.task_run_id, row["attempts"], metadata, adv.now,
            )  # fmt: skip
            if adv.tx.execute(AQ.insert_event, values).rowcount:
                data = {"asset": made.key, "partition": made.partition}
                adv.event(row["run_id"], outcome.task_run_id, "asset.updated", data=data)


class SqlAssets:
    """See `orchestrion.store.assets.AssetStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_assets(self, namespaces: Sequence[str] | None = None) -> list[AssetSummary]:
        if namespaces is not None and not namespaces:
            return []
        cond = () if namespaces is None else (f"namespace IN ({marks(len(namespaces))})",)
        sql = AQ.summaries.fill(where=where(*cond))
        return [_SUMMARY(r) for r in self._db.read(sql, tuple(namespaces or ()))]

    def asset_events(
        self,
        namespace: str,
        asset: str,
        *,
        partition: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AssetEvent]:
        params: list[object] = [namespace, asset, 2**62 if before is None else before]
        extra = ""
        if partition is not None:
            extra, params = "AND part = ?", [*params, partition]
        sql = AQ.events_of.fill(partition=extra) if extra else AQ.events_of.fill(partition=" ")
        return [_EVENT(r) for r in self._db.read(sql, (*params, limit))]

    def unconsumed(
        self, trigger_key: str, namespace: str, assets: Sequence[str], *, after: int
    ) -> list[AssetEvent]:
        sql = AQ.unconsumed.fill(assets=marks(len(assets)))
        rows = self._db.read(sql, (namespace, *assets, after, trigger_key))
        return [_EVENT(r) for r in rows]

    def trigger_start(self, trigger_key: str, *, now: float) -> int:
        name = f"assets:{trigger_key}"
        found = trigger_queries.get_cursor(self._db.read, name)
        if found is not None:
            return found

        def fn(adv: Advance) -> int:
            top = int(adv.tx.execute(AQ.newest_id).fetchone()["top"])
            set_cursor(adv, name, top)  # never moves back: a racing first sight keeps its own
            return top

        self._db.transact(now, fn)
        again = trigger_queries.get_cursor(self._db.read, name)
        return 0 if again is None else again

    def fire_asset_trigger(
        self,
        trigger_key: str,
        event_ids: Sequence[int],
        request: RunRequest | None,
        *,
        now: float,
    ) -> str | None:
        def fn(adv: Advance) -> str | None:
            run_id = None if request is None else new_run_id(adv.now)
            for event_id in sorted(event_ids):  # one order: two racers wait, never deadlock
                taken = adv.tx.execute(AQ.consume, (trigger_key, event_id, run_id)).rowcount
                if not taken:
                    raise _Consumed(f"event {event_id} was consumed by another scheduler")
            if request is None or run_id is None:
                return None
            started = lifecycle.create_run(
                adv,
                request.spec,
                request.params,
                run_id=run_id,
                trigger=request.trigger,
                priority=request.priority,
                idempotency_key=request.idempotency_key,
                parent_task_run_id=None,
            )
            data = {"trigger": trigger_key, "events": sorted(event_ids), "run": started}
            adv.event(started, None, "asset.triggered", data=data)
            audit_started(adv, request.spec, started, request.trigger, request.params)
            return started

        try:
            return self._db.transact(now, fn)
        except _Consumed:
            return None

    def mark_stale(
        self, namespace: str, asset: str, last_event: int, *, workflow: str, now: float
    ) -> bool:
        def fn(adv: Advance) -> bool:
            values = (namespace, asset, last_event, adv.now)
            if not adv.tx.execute(AQ.insert_stale, values).rowcount:
                return False
            data = {
                "namespace": namespace, "asset": asset, "last_event": last_event,
                "workflow": workflow,
            }  # fmt: skip
            adv.event(None, None, "asset.stale", data=data)
            return True

        return self._db.transact(now, fn)
