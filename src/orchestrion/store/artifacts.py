"""`ArtifactStore`: what attempts published and which results live in the object store."""

from __future__ import annotations

from typing import Protocol

from orchestrion.store.artifact_records import ArtifactRecord, StoredResult

__all__ = ["ArtifactStore"]


class ArtifactStore(Protocol):
    """Reads of artifacts and stored results (they are written with their attempt's
    outcome, `RunStore.finish`)."""

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """The run's artifacts, oldest first."""
        ...

    def artifact(self, run_id: str, artifact_id: int) -> ArtifactRecord | None:
        """One artifact of the run, or None."""
        ...

    def stored_result(self, run_id: str, task_run_id: int) -> StoredResult | None:
        """The task run's result when it lives in the object store, else None."""
        ...
