"""Health, readiness, workers and the global event history."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CollectorRegistry

from orchestrion.api.schemas import Event, RecordModel, Worker, WorkerTask, list_of
from orchestrion.auth.principals import ALL_NAMESPACES, Action, Resource, authorize
from orchestrion.errors import AuthError, Forbidden
from orchestrion.web import targets
from orchestrion.web.metrics import CONTENT_TYPE, may_scrape, render
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


@router.get("/metrics", include_in_schema=False)
@public
def metrics(request: Request) -> Response:
    """Prometheus metrics (docs/operating.md). Public to the routing table because a
    configured scraper address needs no token; anyone else needs a principal that may
    read every namespace (the figures name the workflows of all of them)."""
    app = app_of(request)
    client = request.client.host if request.client else None
    if not may_scrape(client, app.settings.metrics_scrapers):
        principal = getattr(request.state, "principal", None)
        if principal is None:
            raise AuthError("send an API token that may read every namespace")
        decision = authorize(principal, Action.READ, Resource(ALL_NAMESPACES, "account"))
        if not decision:
            raise Forbidden(f"metrics cover every namespace: {decision.reason}")
    started = time.perf_counter()
    snapshot = app.reads.metrics()
    namespaces = {w.name: w.namespace for w in app.workflows.list_workflows()}
    took = time.perf_counter() - started
    registry: CollectorRegistry = request.app.state.request_metrics
    return Response(render(snapshot, namespaces, registry, took), media_type=CONTENT_TYPE)
