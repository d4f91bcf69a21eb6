"""`TriggerStore`: what starts runs and the scheduler's bookkeeping: schedules and their
fires, received events, named cursors over the history, leases of scheduler duties and
backfills. Exactly once rests on unique keys ((schedule, nominal time), (source, event id)),
written in the transaction that starts the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from orchestrion.spec.model import WorkflowSpec
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

__all__ = ["TriggerStore"]


class TriggerStore(Protocol):
    """The scheduler's and the event intake's verbs (`orchestrion.triggers`)."""

    # ------------------------------------------------------------ schedules and fires

    def schedule_states(self) -> dict[str, ScheduleState]:
        """Every schedule's cursor (nominal times at or before it were decided), by key."""
        ...

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
        """Record the fire of (`schedule_key`, `nominal`) and act on it in one transaction:
        start a run (trigger and idempotency key ``schedule:<key>@<UTC time>``), or by the
        overlap policy skip it, queue it behind the schedule's unfinished run, or cancel
        that run first. With `error` (its params did not fit) the fire is recorded as
        failed and starts nothing. Moves the cursor to `nominal`, recording `missed` (the
        times the catch-up policy skipped before it) as `advance_schedule` does. None when
        that nominal time was fired before (by anyone): then nothing is recorded."""
        ...

    def advance_schedule(
        self,
        schedule_key: str,
        workflow: str,
        cursor: float,
        *,
        now: float,
        missed: Sequence[float] = (),
    ) -> None:
        """Move a schedule's cursor forward to `cursor` (never back), e.g. past fires that
        the catch-up policy skipped (`missed`: those, recorded as a ``schedule.missed``
        event in the same transaction)."""
        ...

    def start_queued_fire(
        self, spec: WorkflowSpec, schedule_key: str, *, now: float, priority: int = 0
    ) -> str | None:
        """Overlap ``queue``: start the oldest queued fire of the schedule once none of its
        runs is unfinished; the new run id, or None."""
        ...

    def queued_fire_keys(self) -> set[str]:
        """Schedules with queued fires."""
        ...

    def list_fires(self, schedule_key: str | None = None, *, limit: int = 100) -> list[FireRecord]:
        """Recorded fires, newest first."""
        ...

    # ------------------------------------------------------------ events and cursors

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
        """Record a received event under the unique (`source`, `event_id`) and create its
        runs in the same transaction. A redelivered event creates nothing; its receipt is
        marked `duplicate` and names the first delivery's runs. With `replay` (a signed
        webhook delivery), a key seen before and not yet expired is a redelivery too,
        whatever `event_id` says; expired keys are forgotten in the same transaction."""
        ...

    def finished_runs(self, after: int, *, limit: int = 500) -> tuple[list[FinishedRun], int]:
        """Runs that ended after event id `after` (oldest first), and the event id to read
        after next time."""
        ...

    def count_unfinished(self, workflow: str, trigger_prefix: str) -> int:
        """How many runs of `workflow` whose trigger starts with `trigger_prefix` are not
        finished yet (a broker trigger's in-flight runs)."""
        ...

    def put_consumer(self, record: ConsumerRecord, *, now: float) -> None:
        """Record a broker trigger's consumer state (`record.key`), unless a holder of a
        newer lease epoch wrote it already. Telemetry: no event row."""
        ...

    def list_consumers(self) -> list[ConsumerRecord]:
        """Every broker trigger consumer ever run, with its inbox counts, by trigger key."""
        ...

    def get_cursor(self, name: str) -> int | None:
        """A named reader's position in the event history (None if never set)."""
        ...

    def set_cursor(self, name: str, position: int, *, now: float) -> None:
        """Move a named reader's position forward (never back)."""
        ...

    # ------------------------------------------------------------ leases of scheduler duties

    def acquire_lease(self, name: str, holder: str, *, ttl: float, now: float) -> int | None:
        """Take the named lease if free or expired, or extend it for its holder, until
        ``now + ttl``; its epoch (new whenever it changes hands), or None if held."""
        ...

    def renew_lease(self, name: str, holder: str, epoch: int, *, ttl: float, now: float) -> bool:
        """Extend a lease still held under `epoch`; False if it lapsed or changed hands."""
        ...

    def release_lease(self, name: str, holder: str, epoch: int) -> None:
        """Give the lease up so another holder may take it at once."""
        ...

    # ------------------------------------------------------------ backfills

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
        """Record a backfill of `total` nominal times in [start, end]; the scheduler then
        starts its runs (`pace_backfill`)."""
        ...

    def get_backfill(self, backfill_id: str) -> BackfillRecord:
        """One backfill with its run counts, or `NotFound`."""
        ...

    def list_backfills(
        self, *, workflow: str | None = None, state: str | None = None
    ) -> list[BackfillRecord]:
        """Backfills, newest first."""
        ...

    def cancel_backfill(self, backfill_id: str, *, now: float) -> bool:
        """Stop a running backfill and cancel its unfinished runs; False if it had ended."""
        ...

    def pace_backfill(
        self,
        backfill_id: str,
        spec: WorkflowSpec,
        fires: Sequence[tuple[float, dict[str, Any]]],
        *,
        exhausted: bool,
        now: float,
    ) -> list[str]:
        """Start runs for the next `fires` (nominal time, params) while the backfill is
        under its max active runs; mark it completed when `exhausted` and all its runs
        ended. Returns the new run ids."""
        ...
