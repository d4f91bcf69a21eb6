"""`App.triggers`: events that start runs, schedules, and backfills.

The scheduler that fires schedules and paces backfills is built by `App.runtime`. The
trigger modules (service, webhooks, events) are imported by the methods that use them, so
that opening an App (every CLI command does) does not import them (issue 20, start-up).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from orchestrion.app.core import Facet
from orchestrion.store.records import BackfillRecord, ConsumerRecord, EventReceipt, Replay

if TYPE_CHECKING:
    from orchestrion.triggers.service import ScheduleInfo
    from orchestrion.triggers.webhooks import Delivery

__all__ = ["Triggers", "scoped_source"]


def scoped_source(source: str, namespaces: Collection[str]) -> str:
    """The inbox source of an event sent with a namespace scope: ``api:finance,ops``; a
    digest of the list when it is long (the source is at most 200 characters)."""
    names = ",".join(sorted(set(namespaces)))
    if len(names) > 120:
        names = "sha256-" + hashlib.sha256(names.encode()).hexdigest()[:32]
    return f"{source}:{names}"


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
        self,
        event_type: str,
        payload: Any,
        event_id: str | None = None,
        *,
        source: str = "api",
        replay: Replay | None = None,
        extra: Mapping[str, Any] | None = None,
        namespaces: Collection[str] | None = None,
    ) -> EventReceipt:
        """`send_event` with the full receipt (duplicate flag, trigger errors); `replay` and
        `extra` are a webhook delivery's (`service.send_event`).

        With `namespaces` (the sender's: where it may send events), only the triggers of
        workflows in those namespaces see the event, and its id is its own: the source is
        ``<source>:<namespaces>``, so a sender of another scope can neither start nor
        pre-empt (by reusing its id) what this one sends.
        """
        from orchestrion.app.policies import Policies
        from orchestrion.triggers import service

        event_id = event_id if event_id is not None else f"ev-{secrets.token_hex(12)}"
        if namespaces is not None:
            source = scoped_source(source, namespaces)
        audit = {"id": event_id, "source": source}
        with self._core.audited("events.send", f"event {event_type}", params=audit):
            receipt = service.send_event(
                self.store.workflows,
                self.store.triggers,
                self.clock.now(),
                event_type,
                payload,
                event_id,
                source=source,
                replay=replay,
                extra=extra,
                admit=Policies(self._core).admission().matches,
                namespaces=namespaces,
            )
            if not receipt.duplicate:
                # The same intake resolves the steps waiting on this event (`wait_for: {event}`).
                from orchestrion.app.waits import Waits

                Waits(self._core).deliver_event(event_type, payload, namespaces=namespaces)
            return receipt

    def verify_webhook(self, name: str, headers: Mapping[str, str], body: bytes) -> Delivery:
        """A request to webhook `name`, verified with its configuration in the environment
        (read per request: a secret set later counts); send it with `receive_event`."""
        from orchestrion.triggers import webhooks

        return webhooks.accept(name, os.environ, headers, body, self.clock.now())

    def receive_webhook(
        self, name: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Delivery, EventReceipt]:
        """Verify a delivery to webhook `name` (`verify_webhook`) and send it as its event,
        once: a delivery id seen before, or a replay of a signed body seen before (whatever
        delivery id it claims), starts nothing new. Without a delivery id, the event id is
        made from the replay key, so a replay and its original share one event."""
        delivery = self.verify_webhook(name, headers, body)
        event_id = delivery.delivery_id or f"wh-{delivery.replay_key[:32]}"
        receipt = self.receive_event(
            delivery.event,
            delivery.payload,
            event_id,
            source=f"hook:{name}",
            replay=Replay(delivery.replay_key, delivery.replay_until),
            extra=delivery.scope(),
        )
        return delivery, receipt

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
        from orchestrion.triggers import service

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
        from orchestrion.triggers import service

        records = None if workflow is None else [self.store.workflows.get_workflow(workflow)]
        return service.list_schedules(self.store.workflows, self.store.triggers, records)
