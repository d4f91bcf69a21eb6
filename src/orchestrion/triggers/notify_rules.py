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

__all__ = ["Fact", "drafts", "fact_of_event", "late_fact", "message", "nominal_start"]

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
    detail = None
    if event.kind == "schedule.missed":
        detail = f"schedule {event.data.get('schedule')} at {event.data.get('nominal')}"
    return Fact(
        event=event.kind,
        subject=f"e{event.id}",
        workflow=spec.name,
        namespace=spec.namespace,
        tags=tuple(spec.tags),
        run_id=event.run_id,
        at=event.at,
        task=event.task,
        error=event.error,
        detail=detail,
    )


def nominal_start(run: RunRecord) -> float:
    """When a run was meant to start: a schedule fire's nominal time (its trigger ends in
    ``@<UTC time>``), else when it was created."""
    if run.trigger.startswith(("schedule:", "backfill:")) and "@" in run.trigger:
        stamp = run.trigger.rsplit("@", 1)[1]
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return run.created_at


def late_fact(run: RunRecord, spec: WorkflowSpec, now: float) -> Fact | None:
    """The ``run.late`` fact of a run its SLA says is late at `now` (or ended late), or
    None. Uses the run's end where it has one, so a run that finished late between two
    passes still counts."""
    sla: SlaSpec | None = spec.sla
    if sla is None:
        return None
    end = run.finished_at if run.finished_at is not None else now
    reasons: list[str] = []
    if sla.deadline is not None and end > nominal_start(run) + sla.deadline:
        reasons.append(f"not finished {_span(sla.deadline)} after its nominal start")
    if (
        sla.expected_duration is not None
        and run.started_at is not None
        and end > run.started_at + sla.expected_duration
    ):
        reasons.append(f"running longer than the expected {_span(sla.expected_duration)}")
    if not reasons:
        return None
    return Fact(
        event="run.late",
        subject=run.id,
        workflow=spec.name,
        namespace=spec.namespace,
        tags=tuple(spec.tags),
        run_id=run.id,
        at=now,
        detail="; ".join(reasons),
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
