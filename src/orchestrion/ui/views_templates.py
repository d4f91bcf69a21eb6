"""The templates page: the template libraries the server holds, each version with its
templates and their params (docs/templates.md). Read-only: libraries are pushed with
``orchestrion templates push`` or the API."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from orchestrion.auth.principals import Action
from orchestrion.ui.pages import render, ui_router
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = ui_router()


@router.get("/templates")
@rule(Action.READ, targets.anywhere)
def templates(request: Request) -> Response:
    from orchestrion.app.templates import parsed

    rows = app_of(request).templates.list_libraries()
    libraries = [(row, parsed(row)) for row in rows]
    return render(
        request, "templates.html", nav="templates", title="Templates", libraries=libraries
    )
