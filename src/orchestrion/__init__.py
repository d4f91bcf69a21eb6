"""Orchestrion: workflows in Python or YAML, durable runs, retries and compensation.

A workflow file needs only ``from orchestrion import task, workflow`` (plus ``shell``,
``http``, ``sql``, ``plugin``, ``container`` and ``TaskContext`` where used); importing
them does not pull in the database, the worker, the CLI or the container engine's client.

Importing the package itself imports only the errors: every other name is imported on first
use (PEP 562), because ``orchestrion.cli.main`` and the other subpackages import this
package first, and ``orchestrion --version`` must not pay for the authoring API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from orchestrion.errors import (
    CancelRequested,
    OrchestrionError,
    ParameterError,
    SpecError,
    TaskError,
    TaskTimeout,
)

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.spec.assets import asset, asset_metadata
    from orchestrion.spec.python import (
        approval,
        broker,
        container,
        http,
        plugin,
        publish,
        shell,
        sql,
        task,
        template_library,
        use,
        wait_for,
        workflow,
    )
    from orchestrion.spec.python.triggers import assets_updated
    from orchestrion.worker.context import TaskContext

__all__ = [
    "App",
    "CancelRequested",
    "OrchestrionError",
    "ParameterError",
    "SpecError",
    "TaskContext",
    "TaskError",
    "TaskTimeout",
    "approval",
    "asset",
    "asset_metadata",
    "assets_updated",
    "broker",
    "container",
    "http",
    "plugin",
    "publish",
    "shell",
    "sql",
    "task",
    "template_library",
    "use",
    "wait_for",
    "workflow",
]


# Where each lazily imported name lives. App pulls in the store and the worker; the
# authoring names the spec models.
_LAZY = {
    "App": "orchestrion.app",
    "TaskContext": "orchestrion.worker.context",
    "approval": "orchestrion.spec.python",
    "asset": "orchestrion.spec.assets",
    "asset_metadata": "orchestrion.spec.assets",
    "assets_updated": "orchestrion.spec.python.triggers",
    "broker": "orchestrion.spec.python",
    "container": "orchestrion.spec.python",
    "http": "orchestrion.spec.python",
    "plugin": "orchestrion.spec.python",
    "publish": "orchestrion.spec.python",
    "shell": "orchestrion.spec.python",
    "sql": "orchestrion.spec.python",
    "task": "orchestrion.spec.python",
    "template_library": "orchestrion.spec.python",
    "use": "orchestrion.spec.python",
    "wait_for": "orchestrion.spec.python",
    "workflow": "orchestrion.spec.python",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    raise AttributeError(f"module 'orchestrion' has no attribute {name!r}")
