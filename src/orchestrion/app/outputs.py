"""What runs produced besides their states: artifacts and results kept in the object store
(docs/results.md). Reads only; the contents stream from the object store."""

from __future__ import annotations

from typing import IO

from orchestrion.app.core import Facet
from orchestrion.errors import NotFound
from orchestrion.store.artifact_records import ArtifactRecord, StoredResult

__all__ = ["Outputs"]


class Outputs(Facet):
    """Artifacts and stored results of runs."""

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """The run's artifacts (an unambiguous id prefix will do), oldest first."""
        run = self.store.reads.get_run(run_id)
        return self.store.artifacts.artifacts(run.id)

    def artifact_content(self, run_id: str, artifact_id: int) -> tuple[ArtifactRecord, IO[bytes]]:
        """A file artifact and its content as a stream (the caller closes it)."""
        run = self.store.reads.get_run(run_id)
        found = self.store.artifacts.artifact(run.id, artifact_id)
        if found is None or found.ref is None:
            raise NotFound(f"run {run.id} has no file artifact {artifact_id}")
        return found, self._core.result_files().objects.open(found.ref.uri)

    def stored_result(self, run_id: str, task_run_id: int) -> StoredResult:
        """Where a task run's stored result is, or `NotFound` (also for a result kept in
        the database: `Runs.task_runs` has that one)."""
        run = self.store.reads.get_run(run_id)
        found = self.store.artifacts.stored_result(run.id, task_run_id)
        if found is None:
            raise NotFound(f"task run {task_run_id} of run {run.id} has no stored result")
        return found

    def result_content(self, run_id: str, task_run_id: int) -> tuple[StoredResult, IO[bytes]]:
        """A stored result and its JSON as a stream (the caller closes it)."""
        found = self.stored_result(run_id, task_run_id)
        return found, self._core.result_files().objects.open(found.ref.uri)
