"""Run outputs: artifacts (listed, a file one downloaded) and results kept in the object
store (where, how large, and the content streamed). Reading any of them needs read access
to the run, like its task runs and logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from orchestrion.auth.principals import Action
from orchestrion.store.artifact_records import ArtifactRecord, StoredResult
from orchestrion.web import targets
from orchestrion.web.params import PathId
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

_BLOCK = 1024 * 1024


class StoredObject(BaseModel):
    """Where an object is, how large, and its SHA-256."""

    model_config = ConfigDict(frozen=True)

    uri: str
    size: int
    sha256: str
    media_type: str


class Artifact(BaseModel):
    """One artifact an attempt published."""

    model_config = ConfigDict(frozen=True)

    id: int
    run_id: str
    task_run_id: int
    task: str
    attempt: int
    kind: str
    title: str | None
    #: Markdown text, a table's rows as JSON text, a link's URL; null for a file.
    body: str | None
    #: A file's object (download it from ``.../artifacts/{id}/content``).
    object: StoredObject | None
    created_at: float

    @classmethod
    def of(cls, a: ArtifactRecord) -> Artifact:
        return cls(
            id=a.id,
            run_id=a.run_id,
            task_run_id=a.task_run_id,
            task=a.task_name,
            attempt=a.attempt,
            kind=a.kind,
            title=a.title,
            body=a.body,
            object=None if a.ref is None else StoredObject(**_ref(a.ref)),
            created_at=a.created_at,
        )


class StoredResultOut(BaseModel):
    """A task run's result that lives in the object store."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task_run_id: int
    task: str
    object: StoredObject

    @classmethod
    def of(cls, s: StoredResult) -> StoredResultOut:
        return cls(
            run_id=s.run_id,
            task_run_id=s.task_run_id,
            task=s.task_name,
            object=StoredObject(**_ref(s.ref)),
        )


def _ref(ref: Any) -> dict[str, Any]:
    return {"uri": ref.uri, "size": ref.size, "sha256": ref.sha256, "media_type": ref.media_type}


def _stream(body: IO[bytes]) -> Iterator[bytes]:
    try:
        while block := body.read(_BLOCK):
            yield block
    finally:
        body.close()


@router.get("/{run_id}/artifacts", response_model=list[Artifact])
@rule(Action.READ, targets.run)
def list_artifacts(request: Request, run_id: str) -> list[Artifact]:
    return [Artifact.of(a) for a in app_of(request).outputs.artifacts(run_id)]


@router.get(
    "/{run_id}/artifacts/{artifact_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
@rule(Action.READ, targets.run)
def artifact_content(request: Request, run_id: str, artifact_id: PathId) -> StreamingResponse:
    found, body = app_of(request).outputs.artifact_content(run_id, artifact_id)
    assert found.ref is not None
    name = (found.title or "artifact").replace('"', "")
    return StreamingResponse(
        _stream(body),
        media_type=found.ref.media_type,
        headers={
            "Content-Length": str(found.ref.size),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@router.get("/{run_id}/results/{task_run_id}", response_model=StoredResultOut)
@rule(Action.READ, targets.run)
def stored_result(request: Request, run_id: str, task_run_id: PathId) -> StoredResultOut:
    return StoredResultOut.of(app_of(request).outputs.stored_result(run_id, task_run_id))


@router.get(
    "/{run_id}/results/{task_run_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}}},
)
@rule(Action.READ, targets.run)
def result_content(request: Request, run_id: str, task_run_id: PathId) -> StreamingResponse:
    found, body = app_of(request).outputs.result_content(run_id, task_run_id)
    return StreamingResponse(
        _stream(body),
        media_type="application/json",
        headers={"Content-Length": str(found.ref.size)},
    )
