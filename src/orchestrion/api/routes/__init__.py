"""The API's routers, in the order they are matched."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrion.api.routes import (
    accounts,
    code,
    connections,
    queues,
    runs,
    secrets,
    stream,
    system,
    triggers,
    workflows,
)

__all__ = ["router"]

router = APIRouter()
for _module in (
    code,
    workflows,
    runs,
    system,
    stream,
    triggers,
    accounts,
    secrets,
    connections,
    queues,
):
    router.include_router(_module.router)
