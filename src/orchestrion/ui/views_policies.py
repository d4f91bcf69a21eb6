"""Admission policies in the UI: the list (each policy's rules and version) and a
policy's page (its YAML and its history). Policies are written with the CLI or the API
(``orchestrion policy apply``): a rule is code review material, not a form. Denials and
warnings show where a deploy or a trigger happens (the trigger form)."""

from __future__ import annotations

import yaml
from fastapi import Request
from starlette.responses import Response

from orchestrion.auth.principals import Action
from orchestrion.ui.pages import render, ui_router
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = ui_router()


@router.get("/policies")
@rule(Action.READ, targets.anywhere)
def policies(request: Request) -> Response:
    records = app_of(request).policies.list()
    return render(request, "policies.html", nav="policies", title="Policies", policies=records)


@router.get("/policies/{name}")
@rule(Action.READ, targets.anywhere)
def policy(request: Request, name: str) -> Response:
    app = app_of(request)
    history = app.policies.history(name)
    current = history[0]
    text = yaml.safe_dump(dict(current.document), sort_keys=False, allow_unicode=True)
    return render(
        request,
        "policy.html",
        nav="policies",
        title=f"Policy {name}",
        policy=current,
        text=text,
        history=history,
    )
