"""The records of notifications (issue 16): channels, rules, the outbox of deliveries, and
the history facts that rules match. Pure, like `orchestrion.store.records`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrion.store.record import Record, field

__all__ = [
    "CHANNEL_KINDS",
    "DELIVERY_STATES",
    "NOTIFY_EVENTS",
    "ChannelRecord",
    "DeliveryRecord",
    "NotableEvent",
    "RuleRecord",
]

#: Where a message can go.
CHANNEL_KINDS = ("webhook", "slack", "smtp")
#: What a rule may ask to hear about.
NOTIFY_EVENTS = (
    "run.failed",
    "run.succeeded",
    "task.retries_exhausted",
    "run.late",
    "schedule.missed",
    "worker.down",
    "consumer.down",
    # A run waits on an approval step (`wait.approval_pending` in the history).
    "approval.pending",
    "asset.stale",
    # A Git sync found a commit that failed validation or apply (not applied).
    "sync.failed",
)
#: An outbox row's states: waiting for (another) attempt, delivered, given up.
DELIVERY_STATES = ("pending", "sent", "failed")


class ChannelRecord(Record, frozen=True, kw_only=True):
    """A named destination of a namespace. `secret` names a secret of the same namespace
    (the HMAC key, the Slack URL, the SMTP password); `config` holds nothing secret."""

    namespace: str
    name: str
    #: ``webhook``, ``slack`` or ``smtp``.
    kind: str
    #: webhook: ``url``; smtp: ``host``, ``port``, ``username``, ``sender``, ``to``,
    #: ``starttls``; slack: nothing (its URL is the secret).
    config: Mapping[str, Any] = field(default_factory=dict)
    secret: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class RuleRecord(Record, frozen=True, kw_only=True):
    """Which workflows of a namespace, on which events, notify which channel."""

    namespace: str
    name: str
    channel: str
    #: A glob over workflow names (``etl-*``); ``*`` is every workflow of the namespace.
    workflows: str = "*"
    #: Tags a workflow must all carry (none: any workflow).
    tags: tuple[str, ...] = ()
    #: Names from `NOTIFY_EVENTS`.
    events: tuple[str, ...] = ()
    #: The message text, a ``{{ expression }}`` template over the event; None: a default.
    template: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class DeliveryRecord(Record, frozen=True, kw_only=True):
    """One message in the outbox, and how sending it went."""

    id: int
    dedupe_key: str
    namespace: str
    rule: str
    channel: str
    event: str
    workflow: str | None
    run_id: str | None
    #: The rendered text.
    message: str
    #: The facts of the event (what a webhook receives as JSON, with `message`).
    payload: Mapping[str, Any]
    #: ``pending``, ``sent`` or ``failed``.
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None


class NotableEvent(Record, frozen=True, kw_only=True):
    """A history row that a rule may match, with the names a rule needs."""

    id: int
    #: One of `NOTIFY_EVENTS` but ``run.late``.
    kind: str
    at: float
    workflow: str | None
    run_id: str | None
    task: str | None = None
    error: str | None = None
    #: What else the history row says (a schedule's key and nominal time).
    data: Mapping[str, Any] = field(default_factory=dict)
    #: The run's trigger, creation and start (a finished run may have missed its SLA
    #: between two looks at the unfinished ones).
    trigger: str | None = None
    created_at: float | None = None
    started_at: float | None = None
