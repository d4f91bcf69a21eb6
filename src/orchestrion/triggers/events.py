"""Which workflows an event starts: pure matching of events and finished runs to triggers.

An event trigger matches when its ``event`` pattern matches the event's type (``*`` matches
any run of characters) and its ``filter``, if any, is true over ``event``. A run trigger
(``after: {workflow, outcome}``) matches a finished run of that workflow: ``succeeded`` and
``failed`` match those end states, ``any`` matches every end state (canceled included);
its filter and params also see ``run``. A workflow gets at most one run per event: the
first of its triggers that matches. Paused workflows are passed over.

A trigger whose filter fails to evaluate, or whose params do not fit the workflow, starts
nothing; the reason is returned (and kept with the event) instead of raising, so one bad
trigger cannot stop the others.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from orchestrion.errors import ExpressionError, ParameterError
from orchestrion.spec.expressions import compile_expression, render, whole_template
from orchestrion.spec.model import TriggerSpec, WorkflowSpec
from orchestrion.spec.params import resolve_params
from orchestrion.store.records import RunRecord, RunRequest

__all__ = [
    "Matches",
    "event_scope",
    "match_event",
    "match_message",
    "match_run",
    "run_scope",
    "type_matches",
]

#: The run-trigger outcome each finished run state satisfies.
_OUTCOMES = {
    "succeeded": {"succeeded", "any"},
    "failed": {"failed", "any"},
    "canceled": {"any"},
}


@dataclass(frozen=True, slots=True)
class Matches:
    """Runs to start, and why matching triggers started nothing (``workflow: reason``)."""

    runs: tuple[RunRequest, ...] = ()
    errors: tuple[str, ...] = ()


def type_matches(pattern: str, event_type: str) -> bool:
    """Whether an event type matches a trigger's pattern (``*`` is the only wildcard)."""
    return _pattern(pattern).fullmatch(event_type) is not None


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def event_scope(
    event_type: str, event_id: str, payload: Any, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``event`` name an event trigger's filter and params read: its type, id and
    payload, and what the sender adds (a webhook's body as text, form and JSON:
    `orchestrion.triggers.webhooks.Delivery.scope`), which cannot replace those three."""
    return {**(extra or {}), "type": event_type, "id": event_id, "payload": payload}


def run_scope(run: RunRecord) -> dict[str, Any]:
    """The ``run`` name an ``after`` trigger's filter and params read: the finished run's id,
    workflow, state, result and params."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "state": run.state.value,
        "result": run.result,
        "params": run.params,
    }


def match_event(
    specs: Iterable[WorkflowSpec],
    event_type: str,
    event_id: str,
    payload: Any,
    *,
    source: str,
    paused: Collection[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Matches:
    """Runs that an event starts: one per workflow with a matching event trigger; `extra`
    adds to what triggers see as ``event`` (`event_scope`)."""
    scope = {"event": event_scope(event_type, event_id, payload, extra)}
    chosen: list[tuple[WorkflowSpec, TriggerSpec]] = []
    for spec in specs:
        if spec.name in paused:
            continue
        for trigger in spec.triggers:
            if trigger.event is not None and type_matches(trigger.event, event_type):
                chosen.append((spec, trigger))
    return _requests(chosen, scope, f"event:{source}:{event_id}")


def match_run(
    specs: Iterable[WorkflowSpec], run: RunRecord, event_id: int, *, paused: Collection[str] = ()
) -> Matches:
    """Runs that a finished run starts through other workflows' ``after`` triggers."""
    if run.state.value not in _OUTCOMES:
        return Matches()
    details = run_scope(run)
    scope = {
        "run": details,
        "event": event_scope(f"run.{run.state.value}", f"{run.id}@{event_id}", details),
    }
    chosen: list[tuple[WorkflowSpec, TriggerSpec]] = []
    for spec in specs:
        if spec.name in paused:
            continue
        for trigger in spec.triggers:
            after = trigger.after
            if (
                after is not None
                and after.workflow == run.workflow
                and after.outcome in _OUTCOMES[run.state.value]
            ):
                chosen.append((spec, trigger))
    return _requests(chosen, scope, f"run:{run.id}@{event_id}")


def match_message(
    spec: WorkflowSpec, trigger: TriggerSpec, message: Mapping[str, Any], origin: str
) -> Matches:
    """The run a broker message starts through `trigger` (none when its filter is false;
    the reason when its params do not fit the workflow)."""
    return _requests([(spec, trigger)], {"message": message}, origin)


def _requests(
    chosen: Iterable[tuple[WorkflowSpec, TriggerSpec]], scope: Mapping[str, Any], origin: str
) -> Matches:
    runs: list[RunRequest] = []
    errors: list[str] = []
    done: set[str] = set()
    for spec, trigger in chosen:
        if spec.name in done:
            continue
        try:
            if trigger.filter is not None and not _truthy(trigger.filter, scope):
                continue
            params = resolve_params(spec, render(dict(trigger.params), scope))
        except (ExpressionError, ParameterError) as exc:
            errors.append(f"{spec.name}: {exc}")
            done.add(spec.name)
            continue
        done.add(spec.name)
        runs.append(
            RunRequest(
                spec=spec,
                params=params,
                trigger=origin,
                idempotency_key=f"{origin}:{spec.name}",
            )
        )
    return Matches(tuple(runs), tuple(errors))


def _truthy(text: str, scope: Mapping[str, Any]) -> bool:
    return bool(compile_expression(whole_template(text) or text).evaluate(scope))
