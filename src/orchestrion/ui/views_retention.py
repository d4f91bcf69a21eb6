"""Retention in the UI: the policies page (admins set and clear them) and the run page's
"keep" toggle. The same App methods as the API's and the CLI's."""

from __future__ import annotations

import math
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from orchestrion.auth.principals import Action
from orchestrion.errors import ParameterError
from orchestrion.ui.pages import form_data, redirect, render, ui_router
from orchestrion.web import targets
from orchestrion.web.csrf import check_csrf
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = ui_router()


def _number(form: dict[str, str], name: str) -> float | None:
    """A form field as a number of days (blank: the rule is off)."""
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(
            f"{name.replace('_', ' ')} must be a number, not {text[:40]!r}"
        ) from None
    if not math.isfinite(value):
        raise ParameterError(f"{name.replace('_', ' ')} must be a finite number")
    return value


@router.get("/retention")
@rule(Action.READ, targets.server_wide)
def retention(request: Request) -> Response:
    policies = app_of(request).retention.list_policies()
    return render(request, "retention.html", nav="retention", title="Retention", policies=policies)


@router.post("/retention")
@rule(Action.SETTINGS, targets.server_wide, "retention.set")
async def set_policy(request: Request) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    keep_last = _number(form, "keep_last")
    if keep_last is not None and keep_last != int(keep_last):
        raise ParameterError("keep last must be a whole number")
    app_of(request).retention.set_policy(
        form.get("namespace", "").strip(),
        runs_days=_number(form, "runs_days"),
        logs_days=_number(form, "logs_days"),
        keep_last=None if keep_last is None else int(keep_last),
        audit_days=_number(form, "audit_days"),
        audit_export_dir=form.get("audit_export_dir", "").strip() or None,
    )
    return redirect("/retention")


@router.post("/retention/{namespace}/clear")
@rule(Action.SETTINGS, targets.server_wide, "retention.clear")
async def clear_policy(request: Request, namespace: str) -> Response:
    check_csrf(request, await form_data(request))
    app_of(request).retention.clear_policy(namespace)
    return redirect("/retention")


@router.post("/runs/{run_id}/keep")
@rule(Action.KEEP, targets.run, "run.keep")
async def keep(request: Request, run_id: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    app_of(request).retention.keep_run(run_id, form.get("keep", "1") == "1")
    return redirect(f"/runs/{quote(run_id)}")
