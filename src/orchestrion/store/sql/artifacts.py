"""Artifacts and stored results' objects in the database (migration 0023), both dialects.

An outcome that carries artifacts or a stored result takes the general way of finishing
(`lifecycle.apply_outcome`), which calls `record_outputs` in its transaction; successes
with a small result keep the fast path and never come here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from orchestrion.store.artifact_records import ArtifactRecord, StoredResult
from orchestrion.store.objects import ObjectRef
from orchestrion.store.records import Outcome
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.guarded import Tx, loads
from orchestrion.store.sql.named import NamedQueries, load_queries, marks

__all__ = ["A", "SqlArtifacts", "objects_of_runs", "record_outputs"]

A: Final[NamedQueries] = load_queries(Path(__file__).with_name("artifacts.sql"))


def record_outputs(tx: Tx, outcome: Outcome, now: float) -> None:
    """Remember `outcome`'s stored result and artifacts (also a superseded attempt's: its
    objects exist and retention must find them)."""
    if outcome.stored is not None:
        s = outcome.stored
        tx.execute(A.insert_result_object, (s.uri, s.size, s.sha256, now, outcome.task_run_id))
    for item in outcome.artifacts:
        ref = item.ref
        tx.execute(
            A.insert_artifact,
            (
                outcome.epoch,
                item.kind,
                item.title,
                item.body,
                None if ref is None else ref.uri,
                None if ref is None else ref.size,
                None if ref is None else ref.sha256,
                None if ref is None else ref.media_type,
                now,
                outcome.task_run_id,
            ),
        )


def objects_of_runs(tx: Tx, ids: list[str]) -> list[str]:
    """The URIs of every object the runs `ids` own; their rows are deleted too."""
    found = [
        str(r["uri"])
        for r in tx.execute(A.objects_of_runs.fill(ids=marks(len(ids))), ids * 2).fetchall()
    ]
    tx.execute(A.prune_result_objects_of.fill(ids=marks(len(ids))), ids)
    tx.execute(A.prune_artifacts_of.fill(ids=marks(len(ids))), ids)
    return found


def _artifact(row: Any) -> ArtifactRecord:
    ref = None
    if row["uri"] is not None:
        ref = ObjectRef(
            uri=row["uri"],
            size=int(row["size"]),
            sha256=row["sha256"],
            media_type=row["media_type"] or "application/octet-stream",
        )
    return ArtifactRecord(
        kind=row["kind"],
        title=row["title"],
        body=row["body"],
        ref=ref,
        id=int(row["id"]),
        run_id=row["run_id"],
        task_run_id=int(row["task_run_id"]),
        task_name=row["task_name"],
        attempt=int(row["attempt"]),
        created_at=float(row["created_at"]),
    )


class SqlArtifacts:
    """Reads of artifacts and stored results."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        return [_artifact(r) for r in self._db.read(A.artifacts_of_run, (run_id,))]

    def artifact(self, run_id: str, artifact_id: int) -> ArtifactRecord | None:
        found = self._db.read(A.artifact, (run_id, artifact_id))
        return _artifact(found[0]) if found else None

    def stored_result(self, run_id: str, task_run_id: int) -> StoredResult | None:
        """The task run's result when it is a stored object, else None."""
        found = self._db.read(
            "SELECT run_id, id, task_name, result FROM task_runs WHERE run_id = ? AND id = ?",
            (run_id, task_run_id),
        )
        if not found:
            return None
        ref = ObjectRef.of(loads(found[0]["result"]))
        if ref is None:
            return None
        row = found[0]
        return StoredResult(
            run_id=row["run_id"], task_run_id=int(row["id"]), task_name=row["task_name"], ref=ref
        )
