"""`SqlTriggers`: the `TriggerStore` of both dialects, over a `Database`.

Each verb runs one `Database.transact` transaction (or a `read`) and hands the work to
`orchestrion.store.sql.trigger_verbs` or `orchestrion.store.sql.trigger_queries`. Exactly-once rests
on unique keys; under concurrent writers (PostgreSQL) ``INSERT ... ON CONFLICT DO NOTHING``
waits for a competing insert of the key to commit or roll back, so only one transaction
ever acts on a fire or an event.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.record import replace
from orchestrion.store.records import (
    BackfillRecord,
    ConsumerRecord,
    EventReceipt,
    FinishedRun,
    FireRecord,
    Replay,
    RunRequest,
    ScheduleState,
)
from orchestrion.store.sql import duties, trigger_queries, trigger_verbs
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.jsontext import loads
from orchestrion.store.sql.lifecycle import new_run_id
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.rows import reader

__all__ = ["SqlTriggers"]


class SqlTriggers:
    """See `orchestrion.store.triggers.TriggerStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def schedule_states(self) -> dict[str, ScheduleState]:
        return trigger_queries.schedule_states(self._db.read)

    def fire_schedule(
        self,
        spec: WorkflowSpec,
        *,
        schedule_key: str,
        nominal: float,
        params: dict[str, Any],
        now: float,
        priority: int = 0,
        overlap: str = "allow",
        error: str | None = None,
        missed: Sequence[float] = (),
    ) -> FireRecord | None:
        # On PostgreSQL, two fires of one schedule serialise on its schedule_state row
        # (upserted before the overlap decision), so `skip` and `queue` see each other's runs.
        return self._db.transact(
            now,
            lambda adv: trigger_verbs.fire_schedule(
                adv,
                spec,
                key=schedule_key,
                nominal=nominal,
                params=params,
                priority=priority,
                overlap=overlap,
                error=error,
                new_id=new_run_id,
                missed=missed,
            ),
        )

    def advance_schedule(
        self,
        schedule_key: str,
        workflow: str,
        cursor: float,
        *,
        now: float,
        missed: Sequence[float] = (),
    ) -> None:
        self._db.transact(
            now,
            lambda adv: trigger_verbs.advance_schedule(
                adv, schedule_key, workflow, cursor, missed=missed
            ),
        )

    def start_queued_fire(
        self, spec: WorkflowSpec, schedule_key: str, *, now: float, priority: int = 0
    ) -> str | None:
        return self._db.transact(
            now,
            lambda adv: trigger_verbs.start_queued_fire(
                adv, spec, schedule_key, priority=priority, new_id=new_run_id
            ),
        )

    def queued_fire_keys(self) -> set[str]:
        return trigger_queries.queued_fire_keys(self._db.read)

    def list_fires(self, schedule_key: str | None = None, *, limit: int = 100) -> list[FireRecord]:
        return trigger_queries.list_fires(self._db.read, schedule_key, limit)

    def record_event(
        self,
        source: str,
        event_id: str,
        event_type: str,
        payload: Any,
        *,
        now: float,
        runs: Sequence[RunRequest] = (),
        errors: Sequence[str] = (),
        replay: Replay | None = None,
    ) -> EventReceipt:
        return self._db.transact(
            now,
            lambda adv: trigger_verbs.record_event(
                adv,
                source=source,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                runs=runs,
                errors=errors,
                new_id=new_run_id,
                replay=replay,
            ),
        )

    def finished_runs(self, after: int, *, limit: int = 500) -> tuple[list[FinishedRun], int]:
        """`postgres.triggers.PostgresTriggers` overrides this: its event ids may commit
        out of order."""
        return trigger_queries.finished_runs(self._db.read, after, limit)

    def count_unfinished(self, workflow: str, trigger_prefix: str) -> int:
        prefix = trigger_prefix
        rows = self._db.read(Q.count_unfinished_runs_of, (workflow, len(prefix), prefix))
        return int(rows[0]["n"])

    def put_consumer(self, record: ConsumerRecord, *, now: float) -> None:
        r = record
        values = (
            r.key, r.workflow, r.kind, r.connection, r.destination, r.holder, r.epoch,
            r.state, r.lag, r.last_message_at, r.error, now,
        )  # fmt: skip
        self._db.transact(now, lambda adv: adv.tx.execute(Q.put_broker_consumer, values))

    def list_consumers(self) -> list[ConsumerRecord]:
        out = []
        for row in self._db.read(Q.broker_consumers):
            record = reader(ConsumerRecord)(row)
            if record.last_dead_letter is not None:
                reasons = loads(record.last_dead_letter) or []
                record = replace(record, last_dead_letter="; ".join(reasons))
            out.append(record)
        return out

    def get_cursor(self, name: str) -> int | None:
        return trigger_queries.get_cursor(self._db.read, name)

    def set_cursor(self, name: str, position: int, *, now: float) -> None:
        self._db.transact(now, lambda adv: duties.set_cursor(adv, name, position))

    def acquire_lease(self, name: str, holder: str, *, ttl: float, now: float) -> int | None:
        return self._db.transact(now, lambda adv: duties.acquire_lease(adv, name, holder, ttl))

    def renew_lease(self, name: str, holder: str, epoch: int, *, ttl: float, now: float) -> bool:
        return self._db.transact(now, lambda adv: duties.renew_lease(adv, name, holder, epoch, ttl))

    def release_lease(self, name: str, holder: str, epoch: int) -> None:
        self._db.transact(0.0, lambda adv: duties.release_lease(adv, name, holder, epoch))

    def create_backfill(
        self,
        spec: WorkflowSpec,
        *,
        schedule_key: str,
        start: float,
        end: float,
        total: int,
        max_active: int,
        priority: int,
        now: float,
    ) -> BackfillRecord:
        backfill_id = f"bf-{int(now * 1000):012x}{secrets.token_hex(3)}"
        self._db.transact(
            now,
            lambda adv: trigger_verbs.create_backfill(
                adv,
                spec,
                backfill_id=backfill_id,
                key=schedule_key,
                start=start,
                end=end,
                total=total,
                max_active=max_active,
                priority=priority,
            ),
        )
        return self.get_backfill(backfill_id)

    def get_backfill(self, backfill_id: str) -> BackfillRecord:
        return trigger_queries.get_backfill(self._db.read, backfill_id)

    def list_backfills(
        self, *, workflow: str | None = None, state: str | None = None
    ) -> list[BackfillRecord]:
        return trigger_queries.list_backfills(self._db.read, workflow, state)

    def cancel_backfill(self, backfill_id: str, *, now: float) -> bool:
        workflow = self.get_backfill(backfill_id).workflow
        return self._db.transact(
            now, lambda adv: trigger_verbs.cancel_backfill(adv, backfill_id, workflow)
        )

    def pace_backfill(
        self,
        backfill_id: str,
        spec: WorkflowSpec,
        fires: Sequence[tuple[float, dict[str, Any]]],
        *,
        exhausted: bool,
        now: float,
    ) -> list[str]:
        return self._db.transact(
            now,
            lambda adv: trigger_verbs.pace_backfill(
                adv, spec, backfill_id, fires, exhausted=exhausted, new_id=new_run_id
            ),
        )
