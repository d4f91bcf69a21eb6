"""Trigger operations behind the `App` facade: send an event, plan and create a backfill,
list schedules with their next fire times. Each loads what it needs from the store, decides
with the pure functions of `cron`/`events`, and applies through one store verb.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.errors import ExpressionError, NotFound, ParameterError
from orchestrion.spec.model import ScheduleSpec, WorkflowSpec
from orchestrion.spec.rules import CONTROL_RE
from orchestrion.spec.schedule_model import parse_instant
from orchestrion.store.records import BackfillRecord, EventReceipt, Replay, WorkflowRecord
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.workflows import WorkflowStore
from orchestrion.triggers import cron
from orchestrion.triggers.events import Matches, match_event
from orchestrion.triggers.scheduler import BACKFILL_PRIORITY, backfill_params

__all__ = [
    "MAX_BACKFILL_RUNS",
    "MAX_PAYLOAD_BYTES",
    "ScheduleInfo",
    "create_backfill",
    "list_schedules",
    "pick_schedule",
    "plan_backfill",
    "send_event",
]

#: The most runs one backfill may create.
MAX_BACKFILL_RUNS = 10_000
#: The largest event payload accepted, as JSON.
MAX_PAYLOAD_BYTES = 1_048_576
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,199}")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleInfo:
    """A schedule as the CLI, API and UI list it: where its fires stand and when it next fires."""

    workflow: str
    key: str
    name: str
    #: ``cron '0 3 * * *' in Europe/Paris`` or ``every 300s``.
    describe: str
    schedule: ScheduleSpec
    paused: bool
    #: Nominal times at or before this were decided (None: the scheduler has not seen it).
    cursor: float | None
    last_fire: float | None
    #: The next nominal fire time (UTC seconds), None when the schedule has ended.
    next_fire: float | None


def send_event(
    workflows: WorkflowStore,
    triggers: TriggerStore,
    now: float,
    event_type: str,
    payload: Any,
    event_id: str,
    *,
    source: str,
    replay: Replay | None = None,
    extra: Mapping[str, Any] | None = None,
    namespaces: Collection[str] | None = None,
    admit: Callable[[Matches], Matches] | None = None,
) -> EventReceipt:
    """Record an event and start the runs its triggers ask for, in one transaction. A
    signed webhook delivery passes its `replay` key (a second delivery of it starts
    nothing) and what its triggers see besides the payload (`extra`, `match_event`).

    `namespaces`: the only namespaces whose triggers see the event (the sender's, where it
    may send events); None: every namespace (the local CLI, a webhook, a ``*`` sender).
    `admit`: the admission policies (`Admission.matches`), applied to the runs it starts.
    """
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise ParameterError(
            f"bad event type {event_type!r}: use letters, digits and '_', '.', ':', '-'"
            " (at most 200 characters)"
        )
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200 or CONTROL_RE.search(event_id):
        raise ParameterError(f"bad event id {event_id!r}: use 1 to 200 printable characters")
    try:
        size = len(json.dumps(payload, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"the event payload is not JSON: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise ParameterError(
            f"the event payload is {size:,} bytes, over the {MAX_PAYLOAD_BYTES:,}-byte limit"
        )
    specs = [
        r.spec
        for r in workflows.list_workflows()
        if r.spec.triggers and (namespaces is None or r.namespace in namespaces)
    ]
    matches = match_event(
        specs,
        event_type,
        event_id,
        payload,
        source=source,
        paused=workflows.paused_workflows(),
        extra=extra,
    )
    if admit is not None:
        matches = admit(matches)
    return triggers.record_event(
        source,
        event_id,
        event_type,
        payload,
        now=now,
        runs=matches.runs,
        errors=matches.errors,
        replay=replay,
    )


def pick_schedule(spec: WorkflowSpec, which: str | None) -> ScheduleSpec:
    """The workflow's schedule named `which` (its name, its key or its 0-based index), or
    its only schedule."""
    if not spec.schedules:
        raise ParameterError(f"workflow {spec.name!r} has no schedule")
    if which is None:
        if len(spec.schedules) == 1:
            return spec.schedules[0]
        raise ParameterError(
            f"workflow {spec.name!r} has {len(spec.schedules)} schedules; choose one of: "
            + ", ".join(s.ident for s in spec.schedules)
        )
    for i, schedule in enumerate(spec.schedules):
        if which in (schedule.ident, schedule.key(spec.name), str(i)):
            return schedule
    known = ", ".join(s.ident for s in spec.schedules)
    raise NotFound(f"workflow {spec.name!r} has no schedule {which!r} (schedules: {known})")


def plan_backfill(
    spec: WorkflowSpec, schedule: ScheduleSpec, start: str | float, end: str | float
) -> tuple[float, float, list[float]]:
    """(start, end, nominal times) of a backfill; dates and naive datetimes are in the
    schedule's time zone, and a date-only `end` includes that whole day."""
    lo = _instant(start, schedule, end_of_day=False)
    hi = _instant(end, schedule, end_of_day=True)
    if hi < lo:
        raise ParameterError(f"the backfill ends ({end}) before it starts ({start})")
    key = schedule.key(spec.name)
    nominals = cron.fires_between(schedule, lo, hi, MAX_BACKFILL_RUNS + 1)
    if not nominals:
        raise ParameterError(f"{schedule.describe} has no fire time between {start} and {end}")
    if len(nominals) > MAX_BACKFILL_RUNS:
        raise ParameterError(
            f"the range holds more than {MAX_BACKFILL_RUNS:,} fire times; split the backfill"
        )
    for nominal in nominals:
        try:
            backfill_params(spec, schedule, key, nominal)
        except (ExpressionError, ParameterError) as exc:
            raise ParameterError(f"the fire at {cron.iso(nominal)}: {exc}") from None
    return lo, hi, nominals


def create_backfill(
    workflows: WorkflowStore,
    triggers: TriggerStore,
    now: float,
    workflow: str,
    start: str | float,
    end: str | float,
    *,
    schedule: str | None = None,
    max_active: int = 1,
    dry_run: bool = False,
) -> BackfillRecord:
    """A backfill of every nominal time of the schedule in [start, end]; a dry run records
    nothing and returns the plan (state ``dry_run``)."""
    if not isinstance(max_active, int) or isinstance(max_active, bool) or max_active < 1:
        raise ParameterError(f"max_active must be an integer of at least 1, got {max_active!r}")
    spec = workflows.get_workflow(workflow).spec
    chosen = pick_schedule(spec, schedule)
    lo, hi, nominals = plan_backfill(spec, chosen, start, end)
    key = chosen.key(spec.name)
    if not dry_run:
        return triggers.create_backfill(
            spec,
            schedule_key=key,
            start=lo,
            end=hi,
            total=len(nominals),
            max_active=max_active,
            priority=BACKFILL_PRIORITY,
            now=now,
        )
    return BackfillRecord(
        id="dry-run",
        workflow=spec.name,
        version=spec.version,
        schedule_key=key,
        start=lo,
        end=hi,
        max_active=max_active,
        priority=BACKFILL_PRIORITY,
        state="dry_run",
        total=len(nominals),
        created=0,
        cursor=None,
        counts={},
        created_at=now,
        finished_at=None,
    )


def list_schedules(
    workflows: WorkflowStore,
    triggers: TriggerStore,
    records: Sequence[WorkflowRecord] | None = None,
    paused: set[str] | None = None,
) -> list[ScheduleInfo]:
    """Every schedule of every workflow's latest version, with its next fire time (over
    `records` and `paused` when the caller has read them already)."""
    paused = workflows.paused_workflows() if paused is None else paused
    states = triggers.schedule_states()
    out: list[ScheduleInfo] = []
    for record in workflows.list_workflows() if records is None else records:
        for schedule in record.spec.schedules:
            key = schedule.key(record.name)
            state = states.get(key)
            after = record.created_at if state is None else state.cursor
            if state is None and schedule.start_ts is not None:
                after = schedule.start_ts - 1e-6
            following = cron.next_fire(schedule, dt.datetime.fromtimestamp(after, dt.UTC))
            out.append(
                ScheduleInfo(
                    workflow=record.name,
                    key=key,
                    name=schedule.ident,
                    describe=schedule.describe,
                    schedule=schedule,
                    paused=record.name in paused,
                    cursor=None if state is None else state.cursor,
                    last_fire=None if state is None else state.last_fire,
                    next_fire=None if following is None else following.timestamp(),
                )
            )
    return out


def _instant(value: str | float, schedule: ScheduleSpec, *, end_of_day: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ParameterError(f"expected an ISO date or datetime, got {value!r}")
    if not isinstance(value, str):
        return float(value)
    text = value.strip()
    try:
        if end_of_day and _DATE_ONLY.fullmatch(text):
            following = dt.date.fromisoformat(text) + dt.timedelta(days=1)
            return parse_instant(following.isoformat(), schedule.timezone) - 1e-3
        return parse_instant(text, schedule.timezone)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
