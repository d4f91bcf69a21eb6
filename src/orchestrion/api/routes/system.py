"""Health, readiness, workers and the global event history."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from orchestrion.api.schemas import Event, Worker
from orchestrion.api.scope import scope_of
from orchestrion.app import App

__all__ = ["router"]

router = APIRouter(tags=["system"])


def _app(request: Request) -> App:
    app: App = request.app.state.orchestrion
    return app


@router.get("/api/v1/health")
def health() -> dict[str, str]:
    """The process is up (no database call)."""
    return {"status": "ok"}


@router.get("/api/v1/ready")
def ready(request: Request) -> dict[str, str]:
    """The database answers."""
    _app(request).reads.list_workers()
    return {"status": "ready"}


@router.get("/api/v1/workers", response_model=list[Worker])
def workers(request: Request) -> list[Worker]:
    app = _app(request)
    running = app.reads.running_by_worker()
    return [Worker.of(w, running.get(w.id, [])) for w in app.reads.list_workers()]


@router.get("/api/v1/events", response_model=list[Event])
def events(
    request: Request, after: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=5000)
) -> list[Event]:
    scope = scope_of(request)
    found = _app(request).runs.all_events(after_id=after, limit=limit)
    return [Event.of(e) for e in found if scope.run(e.run_id)]
