"""Events, webhooks, schedules and backfills."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.scope import scope_of
from orchestrion.app import App
from orchestrion.errors import NotFound, ParameterError
from orchestrion.triggers.webhooks import Style, WebhookRejected, verify

__all__ = ["WebhookUnauthorized", "router"]

router = APIRouter(tags=["triggers"])


def _app(request: Request) -> App:
    app: App = request.app.state.orchestrion
    return app


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-/]+$")]
    payload: Any = None
    id: Annotated[str | None, Field(max_length=200)] = None


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str
    start: str
    end: str
    schedule: str | None = None
    max_active: Annotated[int, Field(ge=1, le=1000)] = 1
    dry_run: bool = False


@router.post("/api/v1/events", status_code=202)
def send_event(request: Request, body: EventIn) -> dict[str, Any]:
    """Start every workflow whose event trigger matches; the same id never starts twice."""
    receipt = _app(request).triggers.receive_event(body.type, body.payload, body.id)
    return asdict(receipt)


@router.post("/hooks/{name}", status_code=202)
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
    key = "".join(c if c.isalnum() else "_" for c in name).upper()
    secret = os.environ.get(f"ORCHESTRION_WEBHOOK_{key}_SECRET", "")
    style = os.environ.get(f"ORCHESTRION_WEBHOOK_{key}_STYLE", "github")
    if not secret or style not in ("github", "stripe", "hmac"):
        raise NotFound(f"no webhook named {name!r} is configured")
    body = await request.body()
    try:
        verified = verify(_style(style), secret.encode(), request.headers, body, time.time())
    except WebhookRejected as exc:
        raise WebhookUnauthorized(str(exc)) from None
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        raise ParameterError("webhook body is not JSON") from None
    event = f"webhook.{name}" + (f".{verified.event}" if verified.event else "")
    audit["params"] = {"delivery_id": verified.delivery_id, "event": event}
    app = _app(request)
    receipt = app.triggers.receive_event(
        event, payload, verified.delivery_id, source=f"hook:{name}"
    )
    return asdict(receipt)


def _style(value: str) -> Style:
    return "stripe" if value == "stripe" else "hmac" if value == "hmac" else "github"


class WebhookUnauthorized(ParameterError):
    """The webhook signature is not valid."""


@router.get("/api/v1/schedules")
def schedules(request: Request) -> list[dict[str, Any]]:
    out, scope = [], scope_of(request)
    for info in _app(request).triggers.list_schedules():
        if not scope.workflow(info.workflow):
            continue
        item = asdict(info)
        item["schedule"] = info.schedule.model_dump(mode="json")
        out.append(item)
    return out


@router.get("/api/v1/backfills")
def list_backfills(request: Request, workflow: str | None = None) -> list[dict[str, Any]]:
    scope = scope_of(request)
    return [
        asdict(b)
        for b in _app(request).triggers.list_backfills(workflow)
        if scope.workflow(b.workflow)
    ]


@router.post("/api/v1/backfills", status_code=201)
def create_backfill(request: Request, body: BackfillIn) -> dict[str, Any]:
    record = _app(request).triggers.create_backfill(
        body.workflow,
        body.start,
        body.end,
        schedule=body.schedule,
        max_active=body.max_active,
        dry_run=body.dry_run,
    )
    return asdict(record)


@router.get("/api/v1/backfills/{backfill_id}")
def get_backfill(request: Request, backfill_id: str) -> dict[str, Any]:
    return asdict(_app(request).triggers.get_backfill(backfill_id))


@router.post("/api/v1/backfills/{backfill_id}/cancel")
def cancel_backfill(request: Request, backfill_id: str) -> dict[str, Any]:
    app = _app(request)
    app.triggers.cancel_backfill(backfill_id)
    return asdict(app.triggers.get_backfill(backfill_id))
