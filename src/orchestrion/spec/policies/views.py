"""What a policy's expressions see of a workflow: plain values, not the spec's models.

A rule reads ``task.retries``, ``task.kind`` or ``task.image`` whatever the kind and
however the spec nests them (``retry.retries``, ``action.image``), so policies do not break
when the spec's shape changes: this module is the one place that maps one onto the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions import compile_expression
from orchestrion.spec.model import TaskSpec, WorkflowSpec

__all__ = ["map_width", "now_view", "spec_view", "task_view"]


def map_width(task: TaskSpec, params: Mapping[str, Any] | None) -> int | None:
    """How many items a mapped task will run, when it is known before the run: a literal
    list (``map: "[1, 2, 3]"``) at deploy, or one read from the run's parameters at
    trigger. None when it depends on upstream results (or the task is not mapped)."""
    if task.map_over is None:
        return None
    try:
        expression = compile_expression(task.map_over)
        if expression.referenced_tasks:
            return None
        value = expression.evaluate({"params": dict(params) if params is not None else {}})
    except ExpressionError:  # it reads parameters not given (at deploy): unknown yet
        return None
    return len(value) if isinstance(value, list | tuple) else None


def task_view(task: TaskSpec, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One task as rules see it."""
    action = task.action.model_dump(mode="json")
    return {
        "name": task.name,
        "kind": action.get("kind"),
        "retries": task.retry.retries,
        "timeout": task.timeout,
        "queue": task.queue,
        "priority": task.priority,
        "depends_on": list(task.depends_on),
        "image": action.get("image") if action.get("kind") == "container" else None,
        "mapped": task.map_over is not None,
        "map_over": task.map_over,
        "map_width": map_width(task, params),
        "executor": task.executor,
        "secrets": sorted(task.secrets),
        "has_undo": task.undo is not None,
        "action": action,
    }


def spec_view(spec: WorkflowSpec, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The workflow as rules see it (`task_view` for each task)."""
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "description": spec.description,
        "version": spec.version,
        "tags": list(spec.tags),
        "timeout": spec.timeout,
        "max_active_runs": spec.max_active_runs,
        "params": {name: p.model_dump(mode="json") for name, p in spec.params.items()},
        "schedules": len(spec.schedules),
        "tasks": [task_view(t, params) for t in spec.tasks],
    }


def now_view(now: float, timezone: str) -> dict[str, Any]:
    """The moment of the request in the policy's time zone: ``now.time`` (``"17:59"``),
    ``now.hour``, ``now.weekday`` (1 Monday .. 7 Sunday), ``now.date``, ``now.timestamp``."""
    local = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(timezone))
    return {
        "timestamp": now,
        "timezone": timezone,
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M"),
        "hour": local.hour,
        "minute": local.minute,
        "weekday": local.isoweekday(),
    }
