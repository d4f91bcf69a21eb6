"""What an attempt leaves besides its result's value: its artifacts (`orchestrion.artifact`),
collected on the task's thread and carried by its outcome; and the files of stored upstream
results that shell and container tasks read (docs/results.md)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrion import artifact
from orchestrion.artifact import MAX_ARTIFACTS, ArtifactError, Published
from orchestrion.store.artifact_records import ArtifactRecord
from orchestrion.store.record import replace
from orchestrion.store.records import Outcome
from orchestrion.worker.large_results import ResultFiles

__all__ = ["ARTIFACTS_ENV", "AttemptOutputs", "shell_artifacts"]

#: The file a shell task appends artifact JSON lines to.
ARTIFACTS_ENV = "ORCHESTRION_ARTIFACTS"


class AttemptOutputs:
    """One attempt's artifacts and scratch folder; a context manager around the attempt on its
    thread."""

    def __init__(self, files: ResultFiles, task_name: str) -> None:
        self.files = files
        self.task_name = task_name
        self.items: list[ArtifactRecord] = []
        #: Stored upstream results a container task gets in its work folder.
        self.mounts: dict[str, Path] = {}
        self._scratch: Path | None = None

    def __enter__(self) -> AttemptOutputs:
        artifact.collecting(self.add)
        return self

    def __exit__(self, *exc: object) -> None:
        artifact.collecting(None)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def add(self, item: Published) -> None:
        """Keep `item`; a file is copied to the result store now."""
        if len(self.items) >= MAX_ARTIFACTS:
            raise ArtifactError(f"an attempt may publish at most {MAX_ARTIFACTS} artifacts")
        if item.kind == "file":
            assert item.path is not None
            import mimetypes  # only a published file needs its type guessed

            kind = mimetypes.guess_type(item.path.name)[0] or "application/octet-stream"
            ref = self.files.put_file(item.path, self.task_name, kind)
            self.items.append(ArtifactRecord(kind="file", title=item.title, ref=ref))
        else:
            self.items.append(ArtifactRecord(kind=item.kind, title=item.title, body=item.body))

    def scratch(self) -> Path:
        """A folder for this attempt's downloaded inputs, removed when it ends."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="orchestrion-inputs-"))
        return self._scratch

    def scope_for(
        self, scope: dict[str, Any], *, python: bool, work_dir: str | None = None
    ) -> dict[str, Any]:
        """`scope` with stored upstream results read back (Python), as local file paths,
        or, for a container whose work folder is mounted at `work_dir`, as the paths they
        get in it (`mounts` says which files go there)."""
        upstream: Mapping[str, Any] = scope.get("tasks") or {}
        if not upstream or not self.files.has_refs(upstream):
            return scope
        if python:
            return {**scope, "tasks": self.files.values(upstream)}
        tasks = self.files.paths(upstream, self.scratch())
        if work_dir is not None:
            for name, value in tasks.items():
                if name in upstream and value is not upstream[name]:
                    self.mounts[name] = Path(value)
                    tasks[name] = f"{work_dir.rstrip('/')}/results/{name}.json"
        return {**scope, "tasks": tasks}

    def finish(self, outcome: Outcome | None) -> Outcome | None:
        """`outcome` carrying this attempt's artifacts."""
        if outcome is None or not self.items:
            return outcome
        return replace(outcome, artifacts=tuple(self.items))


@contextlib.contextmanager
def shell_artifacts(cwd: str | None) -> Iterator[dict[str, str]]:
    """The environment that names a fresh artifacts file for a shell task; once the task
    ended, each JSON line in it is published (under the attempt's collector)."""
    fd, name = tempfile.mkstemp(prefix="orchestrion-artifacts-", suffix=".jsonl")
    path = Path(name)
    try:
        import os

        os.close(fd)
        yield {ARTIFACTS_ENV: name}
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.strip():
                    artifact.publish_line(line, Path(cwd) if cwd else None)
    finally:
        path.unlink(missing_ok=True)
