"""`ProjectStore`: the history of project applies, the commits workflow versions came
from, and the Git sources the sync duty follows (issue 19).

The resources a project declares are written through their own roles (workflows, runs'
queue limits, connections, notifications, accounts); this role keeps only what is the
project's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrion.store.project_records import ProjectApply, SyncResult, SyncSource

__all__ = ["ProjectStore"]


class ProjectStore(Protocol):
    """Applies, version commits, sync sources and sync results."""

    def record_apply(self, entry: ProjectApply, *, now: float) -> int:
        """Append one apply (with a ``project.applied`` event); its id."""
        ...

    def list_applies(self, namespace: str | None = None, *, limit: int = 50) -> list[ProjectApply]:
        """The newest applies first (of one namespace)."""
        ...

    def record_commit(
        self, versions: Sequence[tuple[str, str]], commit: str, *, now: float
    ) -> None:
        """Note the commit (workflow, version) pairs were deployed from; a version that has
        one keeps it."""
        ...

    def commits_of(self, name: str) -> dict[str, str]:
        """Version -> commit, for the versions of a workflow deployed from a commit."""
        ...

    def drop_workflow(self, name: str, *, now: float) -> bool:
        """Forget a workflow that has no runs, every version of it (the undo of a project
        apply that created it and then failed); False, changing nothing, if it has runs."""
        ...

    def put_sync_source(self, source: SyncSource, *, now: float) -> bool:
        """Create or replace a sync source; True if created."""
        ...

    def get_sync_source(self, name: str) -> SyncSource | None:
        """One sync source, or None."""
        ...

    def list_sync_sources(self) -> list[SyncSource]:
        """Every sync source, by name."""
        ...

    def delete_sync_source(self, name: str, *, now: float) -> bool:
        """Delete a source (its results stay, as history); False if there was none."""
        ...

    def record_sync(self, result: SyncResult, *, now: float) -> int:
        """Append what a look at a source found; its id."""
        ...

    def sync_results(self, source: str | None = None, *, limit: int = 50) -> list[SyncResult]:
        """The newest results first (of one source)."""
        ...
