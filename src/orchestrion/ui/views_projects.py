"""The projects page: each namespace's last apply (who, when, from which commit, what it
changed), the apply history, and the Git sync sources with what each look found
(failed commits with their error). Changes are made with the CLI or the API."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from orchestrion.auth.principals import Action
from orchestrion.ui.pages import render, ui_router
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = ui_router()


@router.get("/projects")
@rule(Action.READ, targets.anywhere)
def projects(request: Request) -> Response:
    scope = scope_of(request)
    facade = app_of(request).projects
    history = [a for a in facade.applies(limit=100) if scope.namespace(a.namespace)]
    # Sources and their results are server settings: shown to who may read everything.
    everything = scope.everything
    return render(
        request,
        "projects.html",
        nav="projects",
        title="Projects",
        last=[a for a in facade.last_applies() if scope.namespace(a.namespace)],
        history=history,
        sources=facade.sources() if everything else [],
        results=facade.sync_results(limit=50) if everything else [],
    )
