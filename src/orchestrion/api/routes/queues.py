"""Queue limits: how many task runs of a queue may run at once, across all workers.

A limit affects every namespace whose tasks use the queue, so changing one is a server
setting (admin on ``*``); reading them is open to any reader.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.auth.principals import Action
from orchestrion.store.record import as_dict
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])


class LimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_running: Annotated[int, Field(ge=1, le=1_000_000)]


@router.get("")
@rule(Action.READ, targets.anywhere)
def list_limits(request: Request) -> list[dict[str, Any]]:
    """Every queue limit, with how many of its task runs hold a live lease now."""
    return [as_dict(q) for q in app_of(request).queues.queue_limits()]


@router.put("/{queue}/limit")
@rule(Action.SETTINGS, targets.server_wide, "queue.limit")
def set_limit(request: Request, queue: str, body: LimitIn) -> dict[str, Any]:
    app_of(request).queues.set_queue_limit(queue, body.max_running)
    return {"queue": queue, "max_running": body.max_running}


@router.delete("/{queue}/limit", status_code=204)
@rule(Action.SETTINGS, targets.server_wide, "queue.unlimit")
def clear_limit(request: Request, queue: str) -> Response:
    app_of(request).queues.clear_queue_limit(queue)
    return Response(status_code=204)
