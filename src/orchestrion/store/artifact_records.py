"""Records of artifacts and stored results (migration 0023), kept apart from
`orchestrion.store.records` so that what large results add stays in one place."""

from __future__ import annotations

from orchestrion.store.objects import ObjectRef
from orchestrion.store.record import Record

__all__ = ["ArtifactRecord", "StoredResult"]


class ArtifactRecord(Record, frozen=True, kw_only=True):
    """One artifact an attempt published; the read side fills in where it belongs."""

    kind: str
    title: str | None = None
    #: Markdown text, a table's rows as JSON, a link's URL; None for a file.
    body: str | None = None
    #: A file artifact's object.
    ref: ObjectRef | None = None
    id: int = 0
    run_id: str = ""
    task_run_id: int = 0
    task_name: str = ""
    attempt: int = 0
    created_at: float = 0.0


class StoredResult(Record, frozen=True, kw_only=True):
    """A task run's result that lives in the object store."""

    run_id: str
    task_run_id: int
    task_name: str
    ref: ObjectRef
