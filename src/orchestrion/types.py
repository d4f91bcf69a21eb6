"""Shared type aliases and ids."""

from __future__ import annotations

from typing import NewType, TypeAlias

__all__ = ["JSON", "AttemptId", "RunId", "TaskRunId", "WorkerId"]

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"

RunId = NewType("RunId", str)
TaskRunId = NewType("TaskRunId", int)
AttemptId = NewType("AttemptId", int)
WorkerId = NewType("WorkerId", str)
