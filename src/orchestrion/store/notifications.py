"""`NotificationStore`: channels, rules and the outbox of deliveries (issue 16).

Channels and rules change by edge calls (CLI, API, UI), each with its event row; the
outbox is written and drained by the scheduler's ``notifications`` duty
(`orchestrion.triggers.notifications`), which reads what happened from the history after a
stored cursor, so no run or task transaction does any notification work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrion.store.notification_records import (
    ChannelRecord,
    DeliveryRecord,
    NotableEvent,
    RuleRecord,
)
from orchestrion.store.records import RunRecord

__all__ = ["DeliveryDraft", "NotificationStore"]

#: (dedupe key, namespace, rule, channel, event, workflow, run id, message, payload JSON).
DeliveryDraft = tuple[str, str, str, str, str, str | None, str | None, str, str]


class NotificationStore(Protocol):
    """Every channel or rule change writes its event row in the same transaction."""

    def put_channel(self, channel: ChannelRecord, *, now: float) -> bool:
        """Create or replace a channel; True if it was created."""
        ...

    def list_channels(self, namespace: str | None = None) -> list[ChannelRecord]:
        """The channels (of one namespace), by namespace and name."""
        ...

    def get_channel(self, namespace: str, name: str) -> ChannelRecord | None:
        """One channel, or None."""
        ...

    def delete_channel(self, namespace: str, name: str, *, now: float) -> bool:
        """Delete a channel; False if there was none."""
        ...

    def put_rule(self, rule: RuleRecord, *, now: float) -> bool:
        """Create or replace a rule; True if it was created. The first rule also starts
        the notifications duty's history cursor (``notifications``) at the newest event."""
        ...

    def list_rules(self, namespace: str | None = None) -> list[RuleRecord]:
        """The rules (of one namespace), by namespace and name."""
        ...

    def delete_rule(self, namespace: str, name: str, *, now: float) -> bool:
        """Delete a rule; False if there was none."""
        ...

    def notable_events(self, after: int, *, limit: int = 500) -> tuple[list[NotableEvent], int]:
        """History rows a rule may match after event id `after`, and the position to resume
        from (a negative `after`: none, and the current end of the history)."""
        ...

    def late_candidates(self, workflows: Sequence[str], *, limit: int = 1000) -> list[RunRecord]:
        """Unfinished runs of these workflows (the ones with an SLA), oldest first."""
        ...

    def enqueue(self, drafts: Sequence[DeliveryDraft], *, now: float) -> int:
        """Add deliveries to the outbox, skipping any whose dedupe key is there; how many
        were added."""
        ...

    def due_deliveries(self, now: float, *, limit: int = 50) -> list[DeliveryRecord]:
        """Pending deliveries whose next attempt is due, oldest first."""
        ...

    def finish_attempt(
        self,
        delivery: DeliveryRecord,
        *,
        error: str | None,
        retry_at: float | None,
        now: float,
    ) -> bool:
        """Record one attempt: sent (no `error`), pending again at `retry_at`, or failed
        for good (an `error`, no `retry_at`). A compare-and-set on the attempts counted,
        with an audit record; False if someone else recorded this attempt."""
        ...

    def list_deliveries(
        self, namespace: str | None = None, *, state: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """The newest deliveries, of a namespace and in a state where given."""
        ...
