"""Steps that wait on people: approve or reject an approval, send a signal, from the run
page and the overview (the same `App.waits` methods as the API and the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.errors import ParameterError
from orchestrion.spec.rules import load_json
from orchestrion.store.wait_records import WaitRecord
from orchestrion.ui.pages import form_data, redirect, ui_router
from orchestrion.web import targets
from orchestrion.web.csrf import check_csrf
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of

__all__ = ["router", "waits_of"]

router = ui_router()


def waits_of(
    app: App, run_id: str | None = None, visible: Callable[[str], bool] | None = None
) -> list[tuple[WaitRecord, dict[str, Any]]]:
    """The waiting steps a page shows (of one run, or all that `visible` lets through),
    each with its kind's settings: approvals first, the call to action."""
    found = [
        (w, app.waits.describe(w))
        for w in app.waits.pending(run_id)
        if visible is None or visible(w.workflow)
    ]
    return sorted(found, key=lambda pair: (pair[0].kind != "approval", pair[0].created_at))


@router.post("/runs/{run_id}/tasks/{task}/decide")
@rule(Action.DECIDE, targets.run, "run.decide")
async def decide(request: Request, run_id: str, task: str) -> Response:
    """Approve or reject (the button pressed) with the reason typed."""
    form = await form_data(request)
    check_csrf(request, form)
    decision, reason = form.get("decision", ""), form.get("reason", "")[:2000]
    if decision not in ("approve", "reject"):
        raise ParameterError(f"decision must be approve or reject, not {decision[:40]!r}")
    app, who = app_of(request), principal_of(request)
    verb = app.waits.approve if decision == "approve" else app.waits.reject
    verb(run_id, task, reason=reason, principal=who)
    back = form.get("back", "")
    return redirect(back if back == "/" else f"/runs/{quote(run_id)}")


@router.post("/runs/{run_id}/signal")
@rule(Action.SIGNAL, targets.run)
async def signal(request: Request, run_id: str) -> Response:
    """Send a signal with the JSON data typed (empty: null)."""
    form = await form_data(request)
    check_csrf(request, form)
    text = form.get("data", "").strip() or "null"
    try:
        data = load_json(text, what="the signal's data")
    except ValueError as exc:
        raise ParameterError(f"the signal's data must be JSON: {exc}") from None
    app_of(request).waits.signal(
        run_id, form.get("name", ""), data, principal=principal_of(request)
    )
    return redirect(f"/runs/{quote(run_id)}")
