"""The notifications page: channels, rules and the newest deliveries with their state
(sent, pending with its next attempt, failed with why), of the namespaces one may read.
Changes are made with the CLI or the API (an admin's action)."""

from __future__ import annotations

from fastapi import Query, Request
from starlette.responses import Response

from orchestrion.auth.principals import Action
from orchestrion.ui.pages import render, ui_router
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = ui_router()


@router.get("/notifications")
@rule(Action.READ, targets.anywhere)
def notifications(
    request: Request, state: str | None = Query(None, pattern="^(pending|sent|failed)$")
) -> Response:
    scope = scope_of(request)
    facade = app_of(request).notifications
    return render(
        request,
        "notifications.html",
        nav="notifications",
        title="Notifications",
        channels=[c for c in facade.list_channels() if scope.namespace(c.namespace)],
        rules=[r for r in facade.list_rules() if scope.namespace(r.namespace)],
        deliveries=[
            d
            for d in facade.list_deliveries(state=state, limit=200)
            if scope.namespace(d.namespace)
        ],
        state=state,
    )
