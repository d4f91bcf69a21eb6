"""Events, webhooks, schedules and backfills."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.auth.principals import Action
from orchestrion.spec.fields import Line
from orchestrion.web import targets
from orchestrion.web.policy import public, rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(tags=["triggers"])


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-/]+$")]
    payload: Any = None
    id: Annotated[str | None, Field(max_length=200)] = None


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: Annotated[Line, Field(max_length=200)]
    start: Annotated[Line, Field(max_length=100)]
    end: Annotated[Line, Field(max_length=100)]
    schedule: Annotated[Line | None, Field(max_length=200)] = None
    max_active: Annotated[int, Field(ge=1, le=1000)] = 1
    dry_run: bool = False


@router.post("/api/v1/events", status_code=202)
@rule(Action.SEND_EVENT, targets.event)
def send_event(request: Request, body: EventIn) -> dict[str, Any]:
    """Start every workflow whose event trigger matches; the same id never starts twice."""
    receipt = app_of(request).triggers.receive_event(body.type, body.payload, body.id)
    return asdict(receipt)


@router.post("/hooks/{name}", status_code=202)
@public
async def webhook(request: Request, name: str) -> dict[str, Any]:
    """A signed webhook: verified with the secret in ``ORCHESTRION_WEBHOOK_<NAME>_SECRET``
    (style in ``..._STYLE``: github, stripe or hmac), then sent as event
    ``webhook.<name>`` (``webhook.<name>.<X-GitHub-Event>`` for GitHub). Redeliveries with
    the same delivery id start nothing new."""
    # Signed, so public: the guard writes no record; this one says who it was, and is
    # written for refused deliveries (bad signature: denied) as much as for good ones.
    audit: dict[str, Any] = {
        "actor": f"webhook:{name[:64]}",
        "actor_kind": "system",
        "action": "webhook.receive",
        "object": f"webhook {name[:64]}",
        "params": {},
    }
    request.state.audit = audit
    app = app_of(request)
    delivery = app.triggers.verify_webhook(name, request.headers, await request.body())
    audit["params"] = {"delivery_id": delivery.delivery_id, "event": delivery.event}
    receipt = app.triggers.receive_event(
        delivery.event, delivery.payload, delivery.delivery_id, source=f"hook:{name}"
    )
    return asdict(receipt)


@router.get("/api/v1/schedules")
@rule(Action.READ, targets.anywhere)
def schedules(request: Request) -> list[dict[str, Any]]:
    out, scope = [], scope_of(request)
    for info in app_of(request).triggers.list_schedules():
        if not scope.workflow(info.workflow):
            continue
        item = asdict(info)
        item["schedule"] = info.schedule.model_dump(mode="json")
        out.append(item)
    return out


@router.get("/api/v1/backfills")
@rule(Action.READ, targets.anywhere)
def list_backfills(request: Request, workflow: str | None = None) -> list[dict[str, Any]]:
    scope = scope_of(request)
    return [
        asdict(b)
        for b in app_of(request).triggers.list_backfills(workflow)
        if scope.workflow(b.workflow)
    ]


@router.post("/api/v1/backfills", status_code=201)
@rule(Action.BACKFILL, targets.body_workflow)
def create_backfill(request: Request, body: BackfillIn) -> dict[str, Any]:
    record = app_of(request).triggers.create_backfill(
        body.workflow,
        body.start,
        body.end,
        schedule=body.schedule,
        max_active=body.max_active,
        dry_run=body.dry_run,
    )
    return asdict(record)


@router.get("/api/v1/backfills/{backfill_id}")
@rule(Action.READ, targets.backfill)
def get_backfill(request: Request, backfill_id: str) -> dict[str, Any]:
    return asdict(app_of(request).triggers.get_backfill(backfill_id))


@router.post("/api/v1/backfills/{backfill_id}/cancel")
@rule(Action.BACKFILL, targets.backfill, "backfill.cancel")
def cancel_backfill(request: Request, backfill_id: str) -> dict[str, Any]:
    app = app_of(request)
    app.triggers.cancel_backfill(backfill_id)
    return asdict(app.triggers.get_backfill(backfill_id))
