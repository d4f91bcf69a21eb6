"""The keys a task run's slots are counted under, decided when it becomes ready (see
`orchestrion.store.sql.slots` for the limits and how a claim counts them).

Apart from the counting so that `advance`, which sets the keys, and `slots`, which counts
within a transaction `advance` opens, do not import each other.
"""

from __future__ import annotations

from typing import Any

from orchestrion.spec.expressions.templates import render
from orchestrion.spec.expressions.values import to_text
from orchestrion.spec.model import TaskSpec

__all__ = ["conc_key", "slot_key"]


def conc_key(workflow: str, task: TaskSpec) -> str | None:
    """Task runs sharing this key count against the task's concurrency limit, across runs."""
    return None if task.concurrency is None else f"{workflow}:{task.name}"


def slot_key(task: TaskSpec, scope: dict[str, Any] | None) -> str | None:
    """The task's concurrency key rendered in `scope` (None: the task has none); see
    `orchestrion.store.sql.slots`.

    Raises:
        ExpressionError: when the template fails.
    """
    if task.concurrency_key is None:
        return None
    value = render(task.concurrency_key, scope or {})
    return value if isinstance(value, str) else to_text(value)
