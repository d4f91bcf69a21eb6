"""Pure decisions of notifications: which rules an event matches, whether a run is late
(its workflow's SLA), and the message text. No I/O; `now` is an argument.

A delivery's dedupe key says what it is about, so the outbox takes each at most once:
``<namespace>/<rule>|<event>|<subject>``, where the subject is the history row for events
read from the history (a re-read after a crash, or a second scheduler, finds the key) and
the run for ``run.late`` (once per run, whichever pass sees it first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions.templates import render
from orchestrion.spec.model import SlaSpec, WorkflowSpec
from orchestrion.store.notification_records import NotableEvent, RuleRecord
from orchestrion.store.notifications import DeliveryDraft
from orchestrion.store.records import RunRecord

__all__ = [
    "Fact", "drafts", "fact_of_event", "late_fact", "late_fact_of_end", "late_reasons", "message",
    "nominal_start",
]  # fmt: skip

#: The text of a rule without a template.
DEFAULT_TEMPLATE = (
    "[orchestrion] {{ event }}{{ ': ' + workflow if workflow else '' }}"
    "{{ ' run ' + run_id if run_id else '' }}{{ ' task ' + task if task else '' }}"
    "{{ ': ' + error if error else '' }}{{ ' (' + detail + ')' if detail else '' }}"
)


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened, as rules and templates see it."""

    event: str
    #: What the dedupe key names besides rule and event (a history row, a run).
    subject: str
    workflow: str
    namespace: str
    tags: tuple[str, ...]
    run_id: str | None
    at: float
    task: str | None = None
    error: str | None = None
    detail: str | None = None

    def scope(self) -> dict[str, Any]:
        """The names a template reads."""
        return {
            "event": self.event,
            "workflow": self.workflow,
            "namespace": self.namespace,
            "tags": list(self.tags),
            "run_id": self.run_id,
            "task": self.task,
            "error": self.error,
            "detail": self.detail,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="seconds"),
        }


def fact_of_event(event: NotableEvent, spec: WorkflowSpec) -> Fact:
    """The fact of a history row, about a workflow of `spec`."""
    detail, subject = None, f"e{event.id}"
    if event.kind == "schedule.missed":
        schedule, nominal = event.data.get("schedule"), event.data.get("nominal")
        count = event.data.get("count")
        if isinstance(count, int) and count > 1:
            detail = (
                f"schedule {schedule}: {count} fires from {event.data.get('first')} to {nominal}"
            )
        else:
            detail = f"schedule {schedule} at {nominal}"
        subject = f"{schedule}@{nominal}"  # two schedulers recording one miss: one message
    elif event.kind == "approval.pending":
        message = event.data.get("message")
        detail = f"{message} (needs role {event.data.get('role')})" if message else None
    elif event.kind == "asset.stale":
        asset = event.data.get("asset")
        detail = f"asset {asset} is stale: not updated within its max_age"
        subject = f"{event.data.get('namespace')}/{asset}@{event.data.get('last_event')}"
    return Fact(
        event=event.kind,
        subject=subject,
        workflow=spec.name,
        namespace=spec.namespace,
        tags=tuple(spec.tags),
        run_id=event.run_id,
        at=event.at,
        task=event.task,
        error=event.error,
        detail=detail,
    )


def nominal_start(trigger: str, created_at: float) -> float:
    """When a run was meant to start: a schedule fire's nominal time (its trigger ends in
    ``@<UTC time>``), else when it was created."""
    if trigger.startswith(("schedule:", "backfill:")) and "@" in trigger:
        stamp = trigger.rsplit("@", 1)[1]
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return created_at


def late_reasons(sla: SlaSpec, nominal: float, started: float | None, end: float) -> str | None:
    """Why a run that started at `started` (None: not yet) and ran until `end` missed its
    SLA, or None."""
    reasons: list[str] = []
    if sla.deadline is not None and end > nominal + sla.deadline:
        reasons.append(f"not finished {_span(sla.deadline)} after its nominal start")
    expected = sla.expected_duration
    if expected is not None and started is not None and end > started + expected:
        reasons.append(f"running longer than the expected {_span(expected)}")
    return "; ".join(reasons) or None


def late_fact(run: RunRecord, spec: WorkflowSpec, now: float) -> Fact | None:
    """The ``run.late`` fact of a run its SLA says is late at `now` (or ended late), or
    None."""
    if spec.sla is None:
        return None
    end = run.finished_at if run.finished_at is not None else now
    why = late_reasons(spec.sla, nominal_start(run.trigger, run.created_at), run.started_at, end)
    return None if why is None else _late(spec, run.id, now, why)


def late_fact_of_end(event: NotableEvent, spec: WorkflowSpec) -> Fact | None:
    """The ``run.late`` fact of a run whose end (`event`) came past its SLA: one that
    ended late between two looks at the unfinished runs is late too."""
    if spec.sla is None or event.run_id is None or event.created_at is None:
        return None
    if event.kind not in ("run.failed", "run.succeeded"):
        return None
    nominal = nominal_start(event.trigger or "", event.created_at)
    why = late_reasons(spec.sla, nominal, event.started_at, event.at)
    return None if why is None else _late(spec, event.run_id, event.at, why)


def _late(spec: WorkflowSpec, run_id: str, at: float, why: str) -> Fact:
    return Fact(
        event="run.late",
        subject=run_id,
        workflow=spec.name,
        namespace=spec.namespace,
        tags=tuple(spec.tags),
        run_id=run_id,
        at=at,
        detail=why,
    )


def matches(rule: RuleRecord, fact: Fact) -> bool:
    """Whether `rule` asks for `fact`: its event, its namespace, a workflow name its glob
    matches, and every tag it names. A fact of no workflow (a worker down: workers serve
    every namespace) matches every rule that names its event."""
    if not fact.workflow:
        return fact.event in rule.events
    return (
        fact.event in rule.events
        and rule.namespace == fact.namespace
        and fnmatchcase(fact.workflow, rule.workflows)
        and all(tag in fact.tags for tag in rule.tags)
    )


def message(rule: RuleRecord, fact: Fact) -> str:
    """The rule's text for `fact`; a template that fails gives the default text plus why
    (a message is still sent: a typo in a template must not silence an alert)."""
    scope = fact.scope()
    try:
        text = render(rule.template or DEFAULT_TEMPLATE, scope)
    except ExpressionError as exc:
        fallback = render(DEFAULT_TEMPLATE, scope)
        return f"{fallback} (template of rule {rule.name} failed: {exc})"
    return text if isinstance(text, str) else json.dumps(text, default=str)


def drafts(rules: list[RuleRecord], fact: Fact) -> list[DeliveryDraft]:
    """One outbox row per rule that matches `fact`."""
    out: list[DeliveryDraft] = []
    for rule in rules:
        if not matches(rule, fact):
            continue
        payload: Mapping[str, Any] = {**fact.scope(), "rule": rule.name}
        out.append(
            (
                f"{rule.namespace}/{rule.name}|{fact.event}|{fact.subject}",
                rule.namespace,
                rule.name,
                rule.channel,
                fact.event,
                fact.workflow,
                fact.run_id,
                message(rule, fact),
                json.dumps(payload, sort_keys=True, default=str),
            )
        )
    return out


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
