"""Workflows: list, get, versions, register (spec JSON), choose the current version, pause
and unpause."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from orchestrion.api.schemas import RecordModel, Run, SetVersionRequest, TriggerRequest, Workflow
from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.store.policy_records import Finding
from orchestrion.store.records import WorkflowRecord
from orchestrion.web import targets
from orchestrion.web.errors import findings_header, note_findings
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


@router.get("", response_model=list[Workflow])
@rule(Action.READ, targets.anywhere)
def list_workflows(request: Request) -> list[Workflow]:
    app, scope = app_of(request), scope_of(request)
    paused = app.workflows.paused_workflows()
    return [
        Workflow.of(rec, paused=rec.name in paused, current=True)
        for rec in app.workflows.list_workflows()
        if scope.namespace(rec.namespace)
    ]


@router.post("", response_model=Workflow, status_code=201)
@rule(Action.DEPLOY, targets.deploy)
def register_workflow(
    request: Request, response: Response, spec: Annotated[dict[str, Any], Body()]
) -> Workflow:
    """Register a workflow spec (JSON, as `orchestrion deploy` sends it) and make it the
    current version. Idempotent: an unchanged spec keeps its version (registering an
    older version again is a rollback). An admission policy that denies it answers 403
    (``policy_denied``, with its findings); its warnings come in ``X-Policy-Findings``."""
    app = app_of(request)
    findings: list[Finding] = []
    record = app.workflows.register_spec(
        spec, source="api", principal=principal_of(request), findings=findings
    )
    response.headers.update(findings_header(findings))
    note_findings(request.state, findings)
    return _view(app, record, full=True)


@router.get("/{name}", response_model=Workflow)
@rule(Action.READ, targets.workflow)
def get_workflow(request: Request, name: str, version: str | None = None) -> Workflow:
    app = app_of(request)
    return _view(app, app.workflows.workflow_record(name, version), full=True)


@router.get("/{name}/versions", response_model=list[Workflow])
@rule(Action.READ, targets.workflow)
def versions(request: Request, name: str) -> list[Workflow]:
    """Every version, newest registered first; `current` marks the one that runs."""
    app = app_of(request)
    paused = name in app.workflows.paused_workflows()
    return [
        Workflow.of(v.record, paused=paused, current=v.current).model_copy(
            update={"commit": v.commit}
        )
        for v in app.workflows.versions(name)
    ]


@router.post("/{name}/current", response_model=Workflow)
@rule(Action.DEPLOY, targets.workflow, "workflow.set_version")
def set_current(request: Request, name: str, body: SetVersionRequest) -> Workflow:
    """Make a registered version current (a rollback): triggers, schedules and runs
    without a version start it from now on. 404 for an unknown version."""
    app = app_of(request)
    return _view(app, app.workflows.set_version(name, body.version))


@router.post("/{name}/pause", response_model=Workflow)
@rule(Action.PAUSE, targets.workflow)
def pause(request: Request, name: str) -> Workflow:
    app = app_of(request)
    app.workflows.set_paused(name, True)
    return Workflow.of(app.workflows.workflow_record(name), paused=True, current=True)


@router.post("/{name}/unpause", response_model=Workflow)
@rule(Action.PAUSE, targets.workflow, "workflow.unpause")
def unpause(request: Request, name: str) -> Workflow:
    app = app_of(request)
    app.workflows.set_paused(name, False)
    return Workflow.of(app.workflows.workflow_record(name), paused=False, current=True)


@router.post("/{name}/runs", response_model=Run, status_code=201)
@rule(Action.TRIGGER, targets.workflow)
def trigger(
    request: Request, response: Response, name: str, body: TriggerRequest | None = None
) -> RecordModel:
    """Start a run; parameters are checked against the workflow's schema. With an
    idempotency key used before, the earlier run is returned. An admission policy may
    deny it (403 ``policy_denied``) or hold it for an approval (its first task waits);
    its findings come in ``X-Policy-Findings``."""
    body = body or TriggerRequest()
    findings: list[Finding] = []
    run = app_of(request).runs.trigger(
        name,
        body.params,
        idempotency_key=body.idempotency_key,
        priority=body.priority,
        trigger="api",
        no_cache=body.no_cache,
        principal=principal_of(request),
        findings=findings,
    )
    response.headers.update(findings_header(findings))
    note_findings(request.state, findings)
    return Run.of(run)


def _view(app: App, record: WorkflowRecord, *, full: bool = False) -> Workflow:
    """`record` as shown, with the workflow's pause flag and whether it is current."""
    current = app.workflows.workflow_record(record.name).version == record.version
    paused = record.name in app.workflows.paused_workflows()
    return Workflow.of(record, paused=paused, current=current, full=full)
