"""Workflows (their current version) and their schedules' states (paused or active).

Workflows are never pruned: their versions are the history runs point to. A workflow
the project created is forgotten again (every version, if it has no runs) when the apply
is undone; an updated one gets its previous version back as current.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrion.errors import NotFound, SpecError

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["SCHEDULES", "WORKFLOWS"]


class _Workflows:
    name = "workflow"
    prunable = False
    reports_unmanaged = True

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return {w.spec.name: {"version": w.spec.version} for w in project.workflows}

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {
            r.name: {"version": r.version}
            for r in app.workflows.list_workflows()
            if r.namespace == namespace
        }

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        # Loading validated each spec. A name another namespace holds cannot be taken.
        taken = {r.name: r.namespace for r in app.workflows.list_workflows()}
        for name in desired:
            other = taken.get(name)
            if other is not None and other != project.spec.namespace:
                raise SpecError(f"workflow {name!r} belongs to namespace {other!r}")

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        for item in project.workflows:
            if item.spec.name == key and item.spec.version == value["version"]:
                app.workflows.register_loaded([item], source=project.source, principal=by)
                return
        app.workflows.set_version(key, value["version"])  # an undo: a version known before

    def remove(self, app: App, namespace: str, key: str) -> None:
        if not app.store.projects.drop_workflow(key, now=app.clock.now()):
            app.workflows.set_paused(key, True)  # it has runs: keep it, start nothing new


class _Schedules:
    name = "schedule"
    prunable = False
    reports_unmanaged = False

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return dict(project.spec.schedules)

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        paused = app.workflows.paused_workflows()
        return {
            r.name: "paused" if r.name in paused else "active"
            for r in app.workflows.list_workflows()
            if r.namespace == namespace
        }

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        known = set(self.read_current(app, project.spec.namespace))
        known |= {w.spec.name for w in project.workflows}
        for name in desired:
            if name not in known:
                raise NotFound(
                    f"schedules names workflow {name!r}, which the project does not deploy"
                )

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        app.workflows.set_paused(key, value == "paused")

    def remove(self, app: App, namespace: str, key: str) -> None:
        return None  # the workflow's own undo forgets it


WORKFLOWS = _Workflows()
SCHEDULES = _Schedules()
