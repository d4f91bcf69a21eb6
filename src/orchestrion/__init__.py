"""Orchestrion: workflows in Python or YAML, durable runs, retries and compensation.

A workflow file needs only ``from orchestrion import task, workflow`` (plus ``shell``,
``http`` and ``TaskContext`` where used); importing them does not pull in the database,
the worker or the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrion.errors import (
    CancelRequested,
    OrchestrionError,
    ParameterError,
    SpecError,
    TaskError,
    TaskTimeout,
)
from orchestrion.spec.python import broker, http, publish, shell, task, workflow
from orchestrion.worker.context import TaskContext

if TYPE_CHECKING:
    from orchestrion.app import App

__all__ = [
    "App",
    "CancelRequested",
    "OrchestrionError",
    "ParameterError",
    "SpecError",
    "TaskContext",
    "TaskError",
    "TaskTimeout",
    "broker",
    "http",
    "publish",
    "shell",
    "task",
    "workflow",
]


def __getattr__(name: str) -> Any:
    # App pulls in the store and worker; import it only when asked for.
    if name == "App":
        from orchestrion.app import App

        return App
    raise AttributeError(f"module 'orchestrion' has no attribute {name!r}")
