"""The API's routers, in the order they are matched."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from orchestrion.api.routes import (
    accounts,
    assets,
    cache,
    code,
    connections,
    notifications,
    outputs,
    policies,
    projects,
    queues,
    retention,
    runs,
    secrets,
    stream,
    system,
    templates,
    triggers,
    waits,
    workflows,
)
from orchestrion.api.schemas import ErrorBody

__all__ = ["router"]

#: What every route may answer besides its success, as published: any refusal (bad input,
#: authentication, authorisation, not found, conflict, size) is a 4xx with the one error
#: body, and a database that does not answer is a 503. (This also replaces FastAPI's own
#: 422 shape, which this API never sends: its validation errors use the same body.)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Refused: the error says why"},
    503: {"model": ErrorBody, "description": "The database is unavailable"},
}

router = APIRouter(responses=ERROR_RESPONSES)
for _module in (
    code,
    workflows,
    runs,
    outputs,
    waits,
    system,
    stream,
    triggers,
    accounts,
    secrets,
    connections,
    notifications,
    queues,
    projects,
    policies,
    retention,
    cache,
    assets,
    templates,
):
    router.include_router(_module.router)
