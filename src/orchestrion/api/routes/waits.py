"""Steps that wait without a worker: list them, approve or reject an approval, send a
signal to a run.

The routes ask only for the right to act on the run at all (`Action.DECIDE`, which any
role has); who may decide an approval is the step's own ``approvers.role`` in the
workflow's namespace, checked by `App.waits` (a 403 naming the role it needs).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.schemas import RecordModel, list_of, model_of
from orchestrion.api.wait_wire import WAIT
from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.spec.fields import Name, Text
from orchestrion.store.wait_records import WaitRecord
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["waits"])

#: A waiting step, with `details`: its kind's settings (an approval's role and message).
Wait = model_of(WAIT, "Wait", details=dict[str, Any])


def wait_model(app: App, wait: WaitRecord) -> RecordModel:
    """The `Wait` of a record, with its kind's settings."""
    return Wait.of(wait, details=app.waits.describe(wait))


@router.get("/waits", response_model=list_of(Wait))
@rule(Action.READ, targets.anywhere)
def list_waits(request: Request, limit: int = Query(500, ge=1, le=10_000)) -> list[RecordModel]:
    """Steps waiting now on an approval, a signal, an event or a sensor, oldest first
    (of the workflows the caller may read; at most `limit`)."""
    app, scope = app_of(request), scope_of(request)
    found = app.waits.pending(limit=limit)
    return [wait_model(app, w) for w in found if scope.workflow(w.workflow)]


@router.get("/runs/{run_id}/waits", response_model=list_of(Wait))
@rule(Action.READ, targets.run)
def run_waits(request: Request, run_id: str) -> list[RecordModel]:
    """The run's steps waiting now."""
    app = app_of(request)
    return [wait_model(app, w) for w in app.waits.pending(run_id)]


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Text, Field(max_length=2000)] = ""


@router.post("/runs/{run_id}/tasks/{task}/approve", response_model=Wait)
@rule(Action.DECIDE, targets.run, audit_as="run.approve")
def approve(request: Request, run_id: str, task: str, body: DecisionRequest) -> RecordModel:
    """Approve the task's approval step: it succeeds with the decision. 403 names the role
    it needs; 409 when it was decided already."""
    app = app_of(request)
    wait = app.waits.approve(run_id, task, reason=body.reason, principal=principal_of(request))
    return wait_model(app, wait)


@router.post("/runs/{run_id}/tasks/{task}/reject", response_model=Wait)
@rule(Action.DECIDE, targets.run, audit_as="run.reject")
def reject(request: Request, run_id: str, task: str, body: DecisionRequest) -> RecordModel:
    """Reject the task's approval step: it fails with the reason. 403 names the role it
    needs; 409 when it was decided already."""
    app = app_of(request)
    wait = app.waits.reject(run_id, task, reason=body.reason, principal=principal_of(request))
    return wait_model(app, wait)


class SignalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    #: Any JSON value: the result of the step that takes the signal.
    data: Any = None


class SignalSent(BaseModel):
    id: int
    run_id: str
    name: str
    #: The task that took it now, or null: kept until a step waits on it.
    delivered_to: str | None


@router.post("/runs/{run_id}/signals", response_model=SignalSent, status_code=201)
@rule(Action.SIGNAL, targets.run)
def send_signal(request: Request, run_id: str, body: SignalRequest) -> SignalSent:
    """Send a named signal with JSON data to a running run; 409 when the run finished."""
    receipt = app_of(request).waits.signal(
        run_id, body.name, body.data, principal=principal_of(request)
    )
    return SignalSent(
        id=receipt.id, run_id=receipt.run_id, name=receipt.name, delivered_to=receipt.delivered_to
    )
