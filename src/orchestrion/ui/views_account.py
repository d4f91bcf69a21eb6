"""Sign in, sign out, and the audit log page.

The login form has its own CSRF defence before any session exists: a random value in a
short-lived cookie that the form must echo (double submit), so another site cannot sign a
victim into an attacker's account. The session cookie is HttpOnly and SameSite=Strict, and
Secure whenever the page came over HTTPS.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from fastapi import Request
from starlette.responses import Response

from orchestrion.app.accounts import SESSION_TTL
from orchestrion.auth.principals import Action
from orchestrion.errors import AuthError, Forbidden, OrchestrionError
from orchestrion.store.records import AuditFilter
from orchestrion.ui.pages import form_data, redirect, render, ui_router
from orchestrion.web import targets
from orchestrion.web.csrf import check_csrf, check_origin
from orchestrion.web.guard import SESSION_COOKIE
from orchestrion.web.params import RowId
from orchestrion.web.policy import public, rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = ui_router()

_LOGIN_CSRF: Final = "orchestrion_login_csrf"
_PAGE: Final = 100


def _safe_next(target: str | None) -> str:
    """Only a path on this server: never ``//host`` or ``https://…`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, *, status: int = 200, error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        nav="login",
        title="Sign in",
        login_csrf=token,
        next=_safe_next(request.query_params.get("next")),
        error=error,
    )
    response.set_cookie(
        _LOGIN_CSRF,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
@public
def login(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
@public
async def login_submit(request: Request) -> Response:
    form = await form_data(request)
    user = form.get("user", "").strip()[:64]
    request.state.audit = {
        "actor": user or "anonymous",
        "actor_kind": "user",
        "action": "session.login",
        "object": f"user {user}",
        "params": {"user": user},
    }
    try:
        check_origin(request)  # no signing in to another site's choice of account
    except Forbidden as exc:
        return _login_page(request, status=403, error=str(exc))
    expected = request.cookies.get(_LOGIN_CSRF, "")
    given = form.get("login_csrf", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _login_page(request, status=403, error="The form expired; please try again.")
    source = request.client.host if request.client else "?"
    try:
        session = app_of(request).accounts.login(user, form.get("password", ""), source=source)
    except AuthError as exc:
        if not _is_user(request, user):
            # What was typed is no user's name: it may be a password typed in the wrong
            # box, so the audit record keeps only its length.
            hidden = f"<unknown user, {len(user)} characters>"
            request.state.audit.update(actor="anonymous", object=hidden, params={"user": hidden})
        return _login_page(request, status=401, error=str(exc))
    response = redirect(_safe_next(form.get("next")))
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=int(SESSION_TTL),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(_LOGIN_CSRF, path="/login")
    return response


def _is_user(request: Request, name: str) -> bool:
    try:
        app_of(request).accounts.get_user(name)
    except OrchestrionError:  # NotFound, or a name no user can have
        return False
    return True


@router.post("/logout")
@rule(Action.READ, targets.signed_in, "session.logout")
async def logout(request: Request) -> Response:
    check_csrf(request, await form_data(request))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        app_of(request).accounts.logout(cookie)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/audit")
@rule(Action.READ_AUDIT, targets.anywhere)
def audit(
    request: Request,
    actor: str = "",
    action: str = "",
    outcome: str = "",
    before: RowId | None = None,
) -> Response:
    scope = scope_of(request, Action.READ_AUDIT)
    filt = AuditFilter(
        actor=actor or None,
        action=action or None,
        outcome=outcome or None,
        before=before,
        limit=_PAGE,
    )
    found = app_of(request).accounts.list_audit(filt)
    shown = [
        r
        for r in found
        if scope.everything or (r.namespace is not None and scope.namespace(r.namespace))
    ]
    return render(
        request,
        "audit.html",
        nav="audit",
        title="Audit log",
        records=shown,
        filters={"actor": actor, "action": action, "outcome": outcome},
        older=found[-1].id if len(found) == _PAGE else None,
    )
