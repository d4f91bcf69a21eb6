"""Queue limits. A queue is cluster-wide, not a namespace's: a project sets the limits it
declares and never prunes (or reports) the others, which may be another project's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["QUEUES"]


class _Queues:
    name = "queue"
    prunable = False
    reports_unmanaged = False

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return {k: {"limit": v} for k, v in project.spec.queues.items()}

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {q.queue: {"limit": q.max_running} for q in app.queues.queue_limits()}

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        return None  # names and limits are checked when the file is read

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        app.queues.set_queue_limit(key, int(value["limit"]))

    def remove(self, app: App, namespace: str, key: str) -> None:
        app.queues.clear_queue_limit(key)


QUEUES = _Queues()
