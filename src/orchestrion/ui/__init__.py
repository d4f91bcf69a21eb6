"""The web UI: server-rendered pages over the same `App` read methods as the REST API,
with live parts fed by the API's server-sent events. Request scoping (the guard, the
policy, the read filter) is `orchestrion.web`'s; the UI never imports `orchestrion.api`.
Mounted beside the API by `orchestrion.server.create_server`."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrion.ui import (
    pages,
    views_account,
    views_assets,
    views_notifications,
    views_outputs,
    views_policies,
    views_projects,
    views_retention,
    views_runs,
    views_system,
    views_templates,
    views_waits,
    views_workflows,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _module in (
    views_workflows,
    views_runs,
    views_outputs,
    views_waits,
    views_retention,
    views_policies,
    views_system,
    views_templates,
    views_notifications,
    views_projects,
    views_assets,
    views_account,
):
    router.include_router(_module.router)
router.include_router(pages.static_router)
