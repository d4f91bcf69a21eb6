"""What one resource kind of a project is: how to see it, and how to change it.

A kind is a small object with `desired` (from the declaration), `read_current` (from the
store), `check` (references resolve: run for every kind before anything is written),
`put` and `remove`. Applying is generic (`orchestrion.app.projects.apply`): a change is a
`put` or a `remove`, and its undo is the other one with the value from before. Adding a
kind is one module in ``kinds/`` and one line in `kinds.KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["Kind"]


class Kind(Protocol):
    """One resource kind (connections, queues, role bindings, ...)."""

    #: The kind's name in plans (``connection``).
    name: str
    #: Whether ``prune: true`` deletes undeclared resources of this kind (queue limits
    #: are cluster-wide and workflows keep their history: those are never pruned).
    prunable: bool
    #: Whether plans list undeclared resources of this kind as unmanaged.
    reports_unmanaged: bool

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        """Key -> value, as the project declares them."""
        ...

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        """Key -> value, as deployed, in the same shape as `desired`."""
        ...

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        """Raise an `OrchestrionError` naming the first value that is invalid or names
        something that does not exist (run before anything is written)."""
        ...

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        """Create or replace one resource with `value`, for the principal `by` (None: the
        App's actor), whom the admission policies see."""
        ...

    def remove(self, app: App, namespace: str, key: str) -> None:
        """Delete one resource."""
        ...
