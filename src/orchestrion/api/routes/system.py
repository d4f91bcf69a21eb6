"""Health, readiness, workers and the global event history."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from orchestrion.api.schemas import Event, RecordModel, Worker, WorkerTask, list_of
from orchestrion.auth.principals import Action
from orchestrion.web import targets
from orchestrion.web.params import AfterId
from orchestrion.web.policy import public, rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/api/v1/health")
@public
def health() -> dict[str, str]:
    """The process is up (no database call)."""
    return {"status": "ok"}


@router.get("/api/v1/ready")
@public
def ready(request: Request) -> dict[str, str]:
    """The database answers."""
    app_of(request).reads.list_workers()
    return {"status": "ready"}


@router.get("/api/v1/workers", response_model=list_of(Worker))
@rule(Action.READ, targets.anywhere)
def workers(request: Request) -> list[RecordModel]:
    app = app_of(request)
    running = app.reads.running_by_worker()
    return [
        Worker.of(w, running=[WorkerTask.of(t) for t in running.get(w.id, [])])
        for w in app.reads.list_workers()
    ]


@router.get("/api/v1/events", response_model=list_of(Event))
@rule(Action.READ, targets.anywhere)
def events(
    request: Request, after: AfterId = 0, limit: int = Query(500, ge=1, le=5000)
) -> list[RecordModel]:
    scope = scope_of(request)
    found = app_of(request).runs.all_events(after_id=after, limit=limit)
    return [Event.of(e) for e in found if scope.run(e.run_id)]
