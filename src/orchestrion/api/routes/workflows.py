"""Workflows: list, get, versions, register (spec JSON), pause and unpause."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from orchestrion.api.schemas import Run, TriggerRequest, Workflow
from orchestrion.api.scope import scope_of
from orchestrion.app import App

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


def _app(request: Request) -> App:
    app: App = request.app.state.orchestrion
    return app


@router.get("", response_model=list[Workflow])
def list_workflows(request: Request) -> list[Workflow]:
    app, scope = _app(request), scope_of(request)
    paused = app.workflows.paused_workflows()
    return [
        Workflow.of(rec, paused=rec.name in paused)
        for rec in app.workflows.list_workflows()
        if scope.namespace(rec.namespace)
    ]


@router.post("", response_model=Workflow, status_code=201)
def register_workflow(request: Request, spec: Annotated[dict[str, Any], Body()]) -> Workflow:
    """Register a workflow spec (JSON, as `orchestrion deploy` sends it). Idempotent: an
    unchanged spec keeps its version."""
    app = _app(request)
    record = app.workflows.register_spec(spec, source="api")
    return Workflow.of(record, paused=record.name in app.workflows.paused_workflows(), full=True)


@router.get("/{name}", response_model=Workflow)
def get_workflow(request: Request, name: str, version: str | None = None) -> Workflow:
    app = _app(request)
    record = app.workflows.workflow_record(name, version)
    return Workflow.of(record, paused=name in app.workflows.paused_workflows(), full=True)


@router.get("/{name}/versions", response_model=list[Workflow])
def versions(request: Request, name: str) -> list[Workflow]:
    return [Workflow.of(rec) for rec in _app(request).workflows.workflow_versions(name)]


@router.post("/{name}/pause", response_model=Workflow)
def pause(request: Request, name: str) -> Workflow:
    app = _app(request)
    app.workflows.set_paused(name, True)
    return Workflow.of(app.workflows.workflow_record(name), paused=True)


@router.post("/{name}/unpause", response_model=Workflow)
def unpause(request: Request, name: str) -> Workflow:
    app = _app(request)
    app.workflows.set_paused(name, False)
    return Workflow.of(app.workflows.workflow_record(name), paused=False)


@router.post("/{name}/runs", response_model=Run, status_code=201)
def trigger(request: Request, name: str, body: TriggerRequest | None = None) -> Run:
    """Start a run; parameters are checked against the workflow's schema. With an
    idempotency key used before, the earlier run is returned."""
    body = body or TriggerRequest()
    run = _app(request).runs.trigger(
        name,
        body.params,
        idempotency_key=body.idempotency_key,
        priority=body.priority,
        trigger="api",
    )
    return Run.of(run)
