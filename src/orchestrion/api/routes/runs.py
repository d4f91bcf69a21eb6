"""Runs: list (filters, cursor paging), get, cancel, retry; task runs, attempts, logs, events."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.schemas import (
    Attempt,
    Event,
    LogLine,
    Page,
    RecordModel,
    Run,
    TaskRun,
    decode_cursor,
    encode_cursor,
    list_of,
)
from orchestrion.auth.principals import Action
from orchestrion.spec.fields import Line
from orchestrion.states import RunState
from orchestrion.store.records import RunFilter
from orchestrion.web import targets
from orchestrion.web.params import AfterId
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


@router.get("", response_model=Page)
@rule(Action.READ, targets.anywhere)
def list_runs(
    request: Request,
    workflow: str | None = None,
    state: RunState | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page:
    before = decode_cursor(cursor) if cursor else None
    scope = scope_of(request)
    runs = app_of(request).runs.list_runs(
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
@rule(Action.READ, targets.run)
def get_run(request: Request, run_id: str) -> RecordModel:
    return Run.of(app_of(request).runs.get_run(run_id))


@router.post("/{run_id}/cancel", response_model=Run)
@rule(Action.CANCEL, targets.run)
def cancel(request: Request, run_id: str) -> RecordModel:
    """Cancel a run and its unfinished tasks; 409 when it already finished."""
    app = app_of(request)
    app.runs.cancel_or_raise(run_id)
    return Run.of(app.runs.get_run(run_id))


@router.post("/{run_id}/retry", response_model=Run)
@rule(Action.RETRY, targets.run)
def retry(request: Request, run_id: str) -> RecordModel:
    """Re-open a failed or canceled run from what failed; 409 for any other state."""
    app = app_of(request)
    app.runs.retry_or_raise(run_id)
    return Run.of(app.runs.get_run(run_id))


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_task: Annotated[Line, Field(max_length=200)]


@router.post("/{run_id}/rerun", response_model=Run, status_code=201)
@rule(Action.RERUN, targets.run)
def rerun(request: Request, run_id: str, body: RerunRequest) -> RecordModel:
    """A new run that reuses the results of every task not downstream of `from_task` and
    runs `from_task` and everything after it again. The earlier run is unchanged."""
    return Run.of(app_of(request).runs.rerun_from(run_id, body.from_task))


class MarkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["succeeded", "failed"]


@router.post("/{run_id}/tasks/{task}/mark", response_model=Run)
@rule(Action.RETRY, targets.run, "run.mark")
def mark(request: Request, run_id: str, task: str, body: MarkRequest) -> RecordModel:
    """Set a task's outcome by hand. Marking a failed task succeeded lets its downstream
    tasks run (a finished run resumes); 409 when the task's state does not allow it."""
    return Run.of(
        app_of(request).runs.mark_task(run_id, task, succeeded=body.outcome == "succeeded")
    )


@router.get("/{run_id}/tasks", response_model=list_of(TaskRun))
@rule(Action.READ, targets.run)
def task_runs(request: Request, run_id: str) -> list[RecordModel]:
    return [TaskRun.of(t) for t in app_of(request).runs.task_runs(run_id)]


@router.get("/{run_id}/attempts", response_model=list_of(Attempt))
@rule(Action.READ, targets.run)
def attempts(request: Request, run_id: str) -> list[RecordModel]:
    return [Attempt.of(a) for a in app_of(request).runs.attempts(run_id)]


@router.get("/{run_id}/events", response_model=list_of(Event))
@rule(Action.READ, targets.run)
def events(request: Request, run_id: str, after: AfterId = 0) -> list[RecordModel]:
    return [Event.of(e) for e in app_of(request).runs.events(run_id, after_id=after)]


@router.get("/{run_id}/logs", response_model=Page)
@rule(Action.READ, targets.run)
def logs(
    request: Request,
    run_id: str,
    task: str | None = None,
    after: AfterId = 0,
    limit: int = Query(1000, ge=1, le=10_000),
) -> Page:
    lines = app_of(request).runs.logs(run_id, task, after_id=after, limit=limit + 1)
    more = len(lines) > limit
    lines = lines[:limit]
    return Page(
        items=[LogLine.of(x) for x in lines],
        next_cursor=str(lines[-1].id) if more and lines else None,
    )
