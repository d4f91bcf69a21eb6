"""`WorkflowStore`: registered workflow versions (immutable specs), each workflow's current
version, and the pause flags."""

from __future__ import annotations

from typing import Protocol

from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import WorkflowRecord

__all__ = ["WorkflowStore"]


class WorkflowStore(Protocol):
    """Every registered version of every workflow (a version's spec never changes), and
    which one is current: what triggers, schedules and a trigger without a version start."""

    def register_workflow(
        self,
        spec: WorkflowSpec,
        *,
        source: str | None,
        now: float,
        keep_current: bool = False,
        code: CodeBundle | None = None,
        make_current: bool = True,
    ) -> bool:
        """Record this version of a workflow and make it current, in one transaction (a
        ``workflow.current`` event when that changed it); False if it was already
        registered (deploying it again is how a rollback is made). With `keep_current`, a
        version registered before leaves the current choice alone: processes re-reading
        their workflow folder at start must not undo an operator's rollback. Without
        `make_current`, the version is recorded and the current choice never changes (a
        run's own version: a policy's approval gate, `orchestrion.app.policies`).

        A spec with code (``spec.code``) is stored with it, in the same transaction, when
        `code` is given (its digest must match); without it, the code must be stored
        already (`SpecError` otherwise): a version is never registered without its code."""
        ...

    def store_code(self, code: CodeBundle, *, now: float) -> bool:
        """Keep a version's code (each file once across all versions); False if it was
        kept already."""
        ...

    def get_code(self, digest: str) -> CodeBundle | None:
        """The code stored under `digest`, or None."""
        ...

    def set_current(self, name: str, version: str, *, now: float) -> bool:
        """Make a registered version current (a ``workflow.current`` event, from/to); False
        if it already was; `NotFound` for an unknown workflow or version."""
        ...

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        """One version (the current one when `version` is None) or `NotFound`."""
        ...

    def list_workflows(self) -> list[WorkflowRecord]:
        """The current version of every workflow, by name."""
        ...

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        """Every registered version of a workflow, newest first (`NotFound` if none)."""
        ...

    def latest_versions(self) -> dict[str, tuple[str, float]]:
        """Workflow name -> (current version, when it became current), without parsing
        specs (the scheduler polls this and loads only versions it has not seen; a
        schedule new to a version fires from when the version became current)."""
        ...

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        """Pause or unpause a workflow (recorded as an event)."""
        ...

    def paused_workflows(self) -> set[str]:
        """Names of the paused workflows."""
        ...
