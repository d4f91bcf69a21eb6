"""Events, webhooks, schedules and backfills."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.auth.principals import Action
from orchestrion.errors import BadSignature, ParameterError
from orchestrion.spec.fields import Line
from orchestrion.store.record import as_dict
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
@rule(Action.SEND_EVENT, targets.anywhere)
def send_event(request: Request, body: EventIn) -> dict[str, Any]:
    """Start every workflow whose event trigger matches, in the namespaces where the caller
    may send events (triggers elsewhere do not see it); the same id never starts twice."""
    scope = scope_of(request, Action.SEND_EVENT)
    receipt = app_of(request).triggers.receive_event(
        body.type, body.payload, body.id, namespaces=scope.namespaces()
    )
    return as_dict(receipt)


@router.post("/hooks/{name}", status_code=202)
@public
async def webhook(request: Request, name: str) -> dict[str, Any]:
    """A signed webhook: verified with the secret in ``ORCHESTRION_WEBHOOK_<NAME>_SECRET``
    (style in ``..._STYLE``: github, stripe or hmac; body kinds in ``..._CONTENT_TYPE``:
    json, form, text), then sent as event ``webhook.<name>``
    (``webhook.<name>.<X-GitHub-Event>`` for GitHub). A redelivery (same delivery id) or a
    replay (same signed body, whatever its delivery id) starts nothing new. A refusal says
    the same for a webhook that does not exist as for a bad signature; the answer names
    the event and the runs started, never workflows or their parameter errors."""
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
    body = await request.body()
    try:
        delivery, receipt = app_of(request).triggers.receive_webhook(name, request.headers, body)
    except BadSignature as exc:
        audit["params"] = {"refused": getattr(exc, "reason", str(exc))}  # admins read why
        raise
    except ParameterError as exc:  # signed, but not a body or event this hook takes
        audit["params"] = {"refused": str(exc)}
        raise
    audit["params"] = {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "content_type": delivery.body.content_type if delivery.body else None,
        "duplicate": receipt.duplicate,
    }
    return {
        "event_id": receipt.event_id,
        "duplicate": receipt.duplicate,
        "run_ids": list(receipt.run_ids),
    }


@router.get("/api/v1/schedules")
@rule(Action.READ, targets.anywhere)
def schedules(request: Request) -> list[dict[str, Any]]:
    out, scope = [], scope_of(request)
    for info in app_of(request).triggers.list_schedules():
        if not scope.workflow(info.workflow):
            continue
        item = as_dict(info)
        item["schedule"] = info.schedule.model_dump(mode="json")
        out.append(item)
    return out


@router.get("/api/v1/backfills")
@rule(Action.READ, targets.anywhere)
def list_backfills(request: Request, workflow: str | None = None) -> list[dict[str, Any]]:
    scope = scope_of(request)
    return [
        as_dict(b)
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
    return as_dict(record)


@router.get("/api/v1/backfills/{backfill_id}")
@rule(Action.READ, targets.backfill)
def get_backfill(request: Request, backfill_id: str) -> dict[str, Any]:
    return as_dict(app_of(request).triggers.get_backfill(backfill_id))


@router.post("/api/v1/backfills/{backfill_id}/cancel")
@rule(Action.BACKFILL, targets.backfill, "backfill.cancel")
def cancel_backfill(request: Request, backfill_id: str) -> dict[str, Any]:
    app = app_of(request)
    app.triggers.cancel_backfill(backfill_id)
    return as_dict(app.triggers.get_backfill(backfill_id))
