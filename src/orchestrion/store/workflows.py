"""`WorkflowStore`: registered workflow versions (immutable specs) and the pause flags."""

from __future__ import annotations

from typing import Protocol

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import WorkflowRecord

__all__ = ["WorkflowStore"]


class WorkflowStore(Protocol):
    """Every registered version of every workflow; a version's spec never changes."""

    def register_workflow(self, spec: WorkflowSpec, *, source: str | None, now: float) -> bool:
        """Record this version of a workflow; False if it was already registered."""
        ...

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        """One version (the latest registered when `version` is None) or `NotFound`."""
        ...

    def list_workflows(self) -> list[WorkflowRecord]:
        """The latest version of every workflow, by name."""
        ...

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        """Every registered version of a workflow, newest first (`NotFound` if none)."""
        ...

    def latest_versions(self) -> dict[str, tuple[str, float]]:
        """Workflow name -> (latest version, when it was registered), without parsing
        specs (the scheduler polls this and loads only versions it has not seen)."""
        ...

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        """Pause or unpause a workflow (recorded as an event)."""
        ...

    def paused_workflows(self) -> set[str]:
        """Names of the paused workflows."""
        ...
