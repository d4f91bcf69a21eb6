"""Shared type aliases and ids."""

from __future__ import annotations

from typing import Any, NewType, TypeAlias

__all__ = ["JSON", "AttemptId", "RunId", "TaskRunId", "WorkerId", "repr_hiding"]

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"

RunId = NewType("RunId", str)
TaskRunId = NewType("TaskRunId", int)
AttemptId = NewType("AttemptId", int)
WorkerId = NewType("WorkerId", str)


def repr_hiding(value: Any, *hidden: str) -> str:
    """The ``repr`` of a msgspec `Struct` without its `hidden` fields: what holds a secret
    stays out of a repr, which may reach a log or a traceback."""
    shown = ", ".join(
        f"{name}={getattr(value, name)!r}" for name in value.__struct_fields__ if name not in hidden
    )
    return f"{type(value).__name__}({shown})"
