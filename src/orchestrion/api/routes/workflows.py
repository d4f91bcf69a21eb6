"""Workflows: list, get, versions, register (spec JSON), pause and unpause."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from orchestrion.api.schemas import RecordModel, Run, TriggerRequest, Workflow
from orchestrion.auth.principals import Action
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


@router.get("", response_model=list[Workflow])
@rule(Action.READ, targets.anywhere)
def list_workflows(request: Request) -> list[Workflow]:
    app, scope = app_of(request), scope_of(request)
    paused = app.workflows.paused_workflows()
    return [
        Workflow.of(rec, paused=rec.name in paused)
        for rec in app.workflows.list_workflows()
        if scope.namespace(rec.namespace)
    ]


@router.post("", response_model=Workflow, status_code=201)
@rule(Action.DEPLOY, targets.deploy)
def register_workflow(request: Request, spec: Annotated[dict[str, Any], Body()]) -> Workflow:
    """Register a workflow spec (JSON, as `orchestrion deploy` sends it). Idempotent: an
    unchanged spec keeps its version."""
    app = app_of(request)
    record = app.workflows.register_spec(spec, source="api")
    return Workflow.of(record, paused=record.name in app.workflows.paused_workflows(), full=True)


@router.get("/{name}", response_model=Workflow)
@rule(Action.READ, targets.workflow)
def get_workflow(request: Request, name: str, version: str | None = None) -> Workflow:
    app = app_of(request)
    record = app.workflows.workflow_record(name, version)
    return Workflow.of(record, paused=name in app.workflows.paused_workflows(), full=True)


@router.get("/{name}/versions", response_model=list[Workflow])
@rule(Action.READ, targets.workflow)
def versions(request: Request, name: str) -> list[Workflow]:
    return [Workflow.of(rec) for rec in app_of(request).workflows.workflow_versions(name)]


@router.post("/{name}/pause", response_model=Workflow)
@rule(Action.PAUSE, targets.workflow)
def pause(request: Request, name: str) -> Workflow:
    app = app_of(request)
    app.workflows.set_paused(name, True)
    return Workflow.of(app.workflows.workflow_record(name), paused=True)


@router.post("/{name}/unpause", response_model=Workflow)
@rule(Action.PAUSE, targets.workflow, "workflow.unpause")
def unpause(request: Request, name: str) -> Workflow:
    app = app_of(request)
    app.workflows.set_paused(name, False)
    return Workflow.of(app.workflows.workflow_record(name), paused=False)


@router.post("/{name}/runs", response_model=Run, status_code=201)
@rule(Action.TRIGGER, targets.workflow)
def trigger(request: Request, name: str, body: TriggerRequest | None = None) -> RecordModel:
    """Start a run; parameters are checked against the workflow's schema. With an
    idempotency key used before, the earlier run is returned."""
    body = body or TriggerRequest()
    run = app_of(request).runs.trigger(
        name,
        body.params,
        idempotency_key=body.idempotency_key,
        priority=body.priority,
        trigger="api",
    )
    return Run.of(run)
