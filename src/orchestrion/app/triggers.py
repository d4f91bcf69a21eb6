"""`App.triggers`: events that start runs, schedules, and backfills.

The scheduler that fires schedules and paces backfills is built by `App.runtime`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from typing import Any

from orchestrion.app.core import Facet
from orchestrion.store.records import BackfillRecord, ConsumerRecord, EventReceipt
from orchestrion.triggers import service, webhooks
from orchestrion.triggers.events import listening_namespaces
from orchestrion.triggers.service import ScheduleInfo

__all__ = ["Triggers"]


class Triggers(Facet):
    """What starts runs besides a manual trigger: events, schedules, backfills."""

    def send_event(
        self, event_type: str, payload: Any, event_id: str | None = None, *, source: str = "api"
    ) -> list[str]:
        """Start every workflow whose event trigger matches; the ids of the runs started.
        An `event_id` seen before starts nothing new (its first delivery's runs are
        returned); without one, a fresh id is generated."""
        return list(self.receive_event(event_type, payload, event_id, source=source).run_ids)

    def receive_event(
        self, event_type: str, payload: Any, event_id: str | None = None, *, source: str = "api"
    ) -> EventReceipt:
        """`send_event` with the full receipt (duplicate flag, trigger errors)."""
        event_id = event_id if event_id is not None else f"ev-{secrets.token_hex(12)}"
        with self._core.audited("events.send", f"event {event_type}", params={"id": event_id}):
            return service.send_event(
                self.store.workflows,
                self.store.triggers,
                self.clock.now(),
                event_type,
                payload,
                event_id,
                source=source,
            )

    def event_namespaces(self, event_type: str) -> set[str]:
        """The namespaces whose workflows have a trigger on this event type: where sending
        it needs ``events.send``."""
        specs = (r.spec for r in self.store.workflows.list_workflows())
        return listening_namespaces(specs, event_type)

    def verify_webhook(
        self, name: str, headers: Mapping[str, str], body: bytes
    ) -> webhooks.Delivery:
        """A request to webhook `name`, verified with its configuration in the environment
        (read per request: a secret set later counts); send it with `receive_event`."""
        return webhooks.accept(name, os.environ, headers, body, self.clock.now())

    def create_backfill(
        self,
        workflow: str,
        start: str | float,
        end: str | float,
        *,
        schedule: str | None = None,
        max_active: int = 1,
        dry_run: bool = False,
    ) -> BackfillRecord:
        """Runs for every nominal time of a schedule in [start, end] (ISO dates or
        datetimes in the schedule's time zone; a date-only end includes its day), paced by
        the scheduler at most `max_active` at once, at a priority below fresh runs. A dry
        run records nothing and returns the plan."""
        args = {"start": start, "end": end, "schedule": schedule, "max_active": max_active}
        with (
            contextlib.nullcontext()
            if dry_run
            else self._core.audited(
                "backfill.create", f"workflow {workflow}", workflow=workflow, params=args
            )
        ):
            return service.create_backfill(
                self.store.workflows,
                self.store.triggers,
                self.clock.now(),
                workflow,
                start,
                end,
                schedule=schedule,
                max_active=max_active,
                dry_run=dry_run,
            )

    def list_backfills(self, workflow: str | None = None) -> list[BackfillRecord]:
        """Backfills, of one workflow or all."""
        return self.store.triggers.list_backfills(workflow=workflow)

    def list_consumers(self) -> list[ConsumerRecord]:
        """Every broker trigger's consumer: its state, lag and message counts."""
        return self.store.triggers.list_consumers()

    def get_backfill(self, backfill_id: str) -> BackfillRecord:
        """One backfill, or `NotFound`."""
        return self.store.triggers.get_backfill(backfill_id)

    def cancel_backfill(self, backfill_id: str) -> bool:
        """Stop a backfill and cancel its unfinished runs; False if it had already ended."""
        with self._core.audited("backfill.cancel", f"backfill {backfill_id}"):
            return self.store.triggers.cancel_backfill(backfill_id, now=self.clock.now())

    def list_schedules(self, workflow: str | None = None) -> list[ScheduleInfo]:
        """Every schedule of the latest workflow versions (or of `workflow`'s), with its
        next fire time."""
        records = None if workflow is None else [self.store.workflows.get_workflow(workflow)]
        return service.list_schedules(self.store.workflows, self.store.triggers, records)
