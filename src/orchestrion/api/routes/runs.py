"""Runs: list (filters, cursor paging), get, cancel, retry; task runs, attempts, logs, events."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from orchestrion.api.schemas import (
    Attempt,
    Event,
    LogLine,
    Page,
    Run,
    TaskRun,
    decode_cursor,
    encode_cursor,
)
from orchestrion.api.scope import scope_of
from orchestrion.app import App
from orchestrion.states import RunState
from orchestrion.store.records import RunFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


def _app(request: Request) -> App:
    app: App = request.app.state.orchestrion
    return app


@router.get("", response_model=Page)
def list_runs(
    request: Request,
    workflow: str | None = None,
    state: RunState | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page:
    before = decode_cursor(cursor) if cursor else None
    scope = scope_of(request)
    runs = _app(request).runs.list_runs(
        RunFilter(
            workflow=workflow,
            state=state,
            limit=limit + 1,
            before=before,
            workflows=scope.visible_workflows(),
        )
    )
    more = len(runs) > limit
    runs = runs[:limit]
    return Page(
        items=[Run.of(r) for r in runs],
        next_cursor=encode_cursor(runs[-1].id) if more and runs else None,
    )


@router.get("/{run_id}", response_model=Run)
def get_run(request: Request, run_id: str) -> Run:
    return Run.of(_app(request).runs.get_run(run_id))


@router.post("/{run_id}/cancel", response_model=Run)
def cancel(request: Request, run_id: str) -> Run:
    """Cancel a run and its unfinished tasks; 409 when it already finished."""
    app = _app(request)
    app.runs.cancel_or_raise(run_id)
    return Run.of(app.runs.get_run(run_id))


@router.post("/{run_id}/retry", response_model=Run)
def retry(request: Request, run_id: str) -> Run:
    """Re-open a failed or canceled run from what failed; 409 for any other state."""
    app = _app(request)
    app.runs.retry_or_raise(run_id)
    return Run.of(app.runs.get_run(run_id))


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_task: str


@router.post("/{run_id}/rerun", response_model=Run, status_code=201)
def rerun(request: Request, run_id: str, body: RerunRequest) -> Run:
    """A new run that reuses the results of every task not downstream of `from_task` and
    runs `from_task` and everything after it again. The earlier run is unchanged."""
    return Run.of(_app(request).runs.rerun_from(run_id, body.from_task))


class MarkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["succeeded", "failed"]


@router.post("/{run_id}/tasks/{task}/mark", response_model=Run)
def mark(request: Request, run_id: str, task: str, body: MarkRequest) -> Run:
    """Set a task's outcome by hand. Marking a failed task succeeded lets its downstream
    tasks run (a finished run resumes); 409 when the task's state does not allow it."""
    return Run.of(_app(request).runs.mark_task(run_id, task, succeeded=body.outcome == "succeeded"))


@router.get("/{run_id}/tasks", response_model=list[TaskRun])
def task_runs(request: Request, run_id: str) -> list[TaskRun]:
    return [TaskRun.of(t) for t in _app(request).runs.task_runs(run_id)]


@router.get("/{run_id}/attempts", response_model=list[Attempt])
def attempts(request: Request, run_id: str) -> list[Attempt]:
    return [Attempt.of(a) for a in _app(request).runs.attempts(run_id)]


@router.get("/{run_id}/events", response_model=list[Event])
def events(request: Request, run_id: str, after: int = Query(0, ge=0)) -> list[Event]:
    return [Event.of(e) for e in _app(request).runs.events(run_id, after_id=after)]


@router.get("/{run_id}/logs", response_model=Page)
def logs(
    request: Request,
    run_id: str,
    task: str | None = None,
    after: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10_000),
) -> Page:
    lines = _app(request).runs.logs(run_id, task, after_id=after, limit=limit + 1)
    more = len(lines) > limit
    lines = lines[:limit]
    return Page(
        items=[LogLine.of(x) for x in lines],
        next_cursor=str(lines[-1].id) if more and lines else None,
    )
