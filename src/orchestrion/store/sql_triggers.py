"""The schedule, trigger, backfill and lease verbs shared by both dialects, as a mixin.

`SqlStore` (and so `SqliteStore` and `PostgresStore`) inherits them; each runs one
`_transact` transaction (or a `_read`) and hands the work to
`orchestrion.store.trigger_verbs` or `orchestrion.store.trigger_queries`. Exactly-once rests
on unique keys; under concurrent writers (PostgreSQL) ``INSERT ... ON CONFLICT DO NOTHING``
waits for a competing insert of the key to commit or roll back, so only one transaction
ever acts on a fire or an event.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store import trigger_queries, trigger_verbs
from orchestrion.store.advance import Advance
from orchestrion.store.base import (
    BackfillRecord,
    EventReceipt,
    FinishedRun,
    FireRecord,
    RunRequest,
    ScheduleState,
)

__all__ = ["SqlTriggerVerbs", "new_run_id"]

T = TypeVar("T")


def new_run_id(now: float) -> str:
    """Sortable by creation time (milliseconds), then random: 20 hex characters."""
    return f"{int(now * 1000):012x}{secrets.token_hex(4)}"


class SqlTriggerVerbs(abc.ABC):
    """Schedules, fires, events, cursors, leases and backfills over two plumbing hooks."""

    @abc.abstractmethod
    def _transact(self, now: float, fn: Callable[[Advance], T]) -> T:
        """Run `fn` in one write transaction and return its result."""

    @abc.abstractmethod
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one statement (``?`` placeholders), outside any write transaction."""

    @abc.abstractmethod
    def _latest_rows(self, cols: str) -> list[Any]:
        """`cols` of the newest version of each workflow, ordered by name (code points)."""

    def latest_versions(self) -> dict[str, tuple[str, float]]:
        rows = self._latest_rows("name, version, created_at")
        return {r["name"]: (r["version"], r["created_at"]) for r in rows}

    def schedule_states(self) -> dict[str, ScheduleState]:
        return trigger_queries.schedule_states(self._read)

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
    ) -> FireRecord | None:
        # On PostgreSQL, two fires of one schedule serialise on its schedule_state row
        # (upserted before the overlap decision), so `skip` and `queue` see each other's runs.
        return self._transact(
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
            ),
        )

    def advance_schedule(
        self, schedule_key: str, workflow: str, cursor: float, *, now: float
    ) -> None:
        self._transact(
            now, lambda adv: trigger_verbs.advance_schedule(adv, schedule_key, workflow, cursor)
        )

    def start_queued_fire(
        self, spec: WorkflowSpec, schedule_key: str, *, now: float, priority: int = 0
    ) -> str | None:
        return self._transact(
            now,
            lambda adv: trigger_verbs.start_queued_fire(
                adv, spec, schedule_key, priority=priority, new_id=new_run_id
            ),
        )

    def queued_fire_keys(self) -> set[str]:
        return trigger_queries.queued_fire_keys(self._read)

    def list_fires(self, schedule_key: str | None = None, *, limit: int = 100) -> list[FireRecord]:
        return trigger_queries.list_fires(self._read, schedule_key, limit)

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
    ) -> EventReceipt:
        return self._transact(
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
            ),
        )

    def finished_runs(self, after: int, *, limit: int = 500) -> tuple[list[FinishedRun], int]:
        """PostgreSQL overrides this: its event ids may commit out of order."""
        return trigger_queries.finished_runs(self._read, after, limit)

    def get_cursor(self, name: str) -> int | None:
        return trigger_queries.get_cursor(self._read, name)

    def set_cursor(self, name: str, position: int, *, now: float) -> None:
        self._transact(now, lambda adv: trigger_verbs.set_cursor(adv, name, position))

    def acquire_lease(self, name: str, holder: str, *, ttl: float, now: float) -> int | None:
        return self._transact(now, lambda adv: trigger_verbs.acquire_lease(adv, name, holder, ttl))

    def renew_lease(self, name: str, holder: str, epoch: int, *, ttl: float, now: float) -> bool:
        return self._transact(
            now, lambda adv: trigger_verbs.renew_lease(adv, name, holder, epoch, ttl)
        )

    def release_lease(self, name: str, holder: str, epoch: int) -> None:
        self._transact(0.0, lambda adv: trigger_verbs.release_lease(adv, name, holder, epoch))

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
        self._transact(
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
        return trigger_queries.get_backfill(self._read, backfill_id)

    def list_backfills(
        self, *, workflow: str | None = None, state: str | None = None
    ) -> list[BackfillRecord]:
        return trigger_queries.list_backfills(self._read, workflow, state)

    def cancel_backfill(self, backfill_id: str, *, now: float) -> bool:
        workflow = self.get_backfill(backfill_id).workflow
        return self._transact(
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
        return self._transact(
            now,
            lambda adv: trigger_verbs.pace_backfill(
                adv, spec, backfill_id, fires, exhausted=exhausted, new_id=new_run_id
            ),
        )
