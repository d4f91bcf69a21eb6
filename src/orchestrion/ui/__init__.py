"""The web UI: server-rendered pages over the same `App` read methods as the REST API,
with live parts fed by the API's server-sent events. Mounted by `create_api`."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrion.ui import views_account, views_runs, views_system, views_workflows, web

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _module in (views_workflows, views_runs, views_system, views_account):
    router.include_router(_module.router)
router.include_router(web.static_router)
