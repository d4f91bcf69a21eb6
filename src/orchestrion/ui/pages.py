"""The UI's plumbing: templates (autoescaped), security headers, error pages, static files
and form bodies. Views stay thin: they call `App` read methods and render. (The CSRF token
and its check are `orchestrion.web.csrf`'s, shared with the guard.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from orchestrion.auth.principals import Action, Principal, Resource, authorize
from orchestrion.errors import AuthError, Forbidden, IllegalTransition, NotFound, OrchestrionError
from orchestrion.ui.schedule_words import words
from orchestrion.web.csrf import csrf_token
from orchestrion.web.policy import public

__all__ = [
    "SECURITY_HEADERS",
    "UIRoute",
    "form_data",
    "redirect",
    "render",
    "ui_router",
]

log = logging.getLogger("orchestrion.ui")

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"

#: Sent with every UI response. No inline script or handler can run, even if escaping failed.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


_ASSETS = _asset_version()


# time.gmtime + strftime: a few times faster than datetime, and a list page formats
# thousands of instants (500 workflows x their last runs).
def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _utc(ts: float | None) -> str:
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "—"
    if end is None:
        return "…"
    secs = max(0.0, end - start)
    if secs < 1:
        return f"{secs * 1000:.0f} ms"
    if secs < 60:
        return f"{secs:.1f} s"
    if secs < 3600:
        return f"{int(secs // 60)} m {int(secs % 60)} s"
    return f"{int(secs // 3600)} h {int(secs % 3600 // 60)} m"


def _pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


_env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(iso=_iso, utc=_utc, pretty=_pretty)
_env.globals.update(
    duration=_duration, asset=lambda name: f"/static/{name}?v={_ASSETS}", schedule_words=words
)


def _may(principal: Principal | None) -> Callable[[str, str], bool]:
    """``can("run.cancel", namespace)`` for templates: a button the reader may not use is
    not offered (the guard refuses the request anyway; this only spares a 403 page)."""

    def can(action: str, namespace: str) -> bool:
        if principal is None:
            return False
        return bool(authorize(principal, Action(action), Resource(namespace, "object")))

    return can


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` as an HTML page, with what every page needs: the request, its CSRF
    token, its principal and a `can(action, namespace)` check for showing only the buttons that
    would work."""
    context.setdefault("nav", "")
    principal = getattr(request.state, "principal", None)
    html = _env.get_template(template).render(
        request=request,
        csrf_token=csrf_token(request),
        principal=principal,
        can=_may(principal),
        **context,
    )
    return HTMLResponse(html, status_code=status)


def redirect(url: str) -> RedirectResponse:
    """Post/Redirect/Get: 303 so that the browser follows with a GET."""
    return RedirectResponse(url, status_code=303)


async def form_data(request: Request) -> dict[str, str]:
    """An urlencoded form body (the last value of a repeated field wins)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=1000))


class UIRoute(APIRoute):
    """Adds the security headers to every UI response and turns errors into HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, with its errors shown as HTML pages (a sign-in redirect for
        `AuthError`) and the security headers added to every response."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except AuthError:
                response = redirect("/login")
            except Forbidden as exc:
                response = render(request, "error.html", 403, title="Forbidden", message=str(exc))
            except NotFound as exc:
                response = render(request, "error.html", 404, title="Not found", message=str(exc))
            except IllegalTransition as exc:
                response = render(request, "error.html", 409, title="Conflict", message=str(exc))
            except OrchestrionError as exc:
                response = render(request, "error.html", 400, title="Bad request", message=str(exc))
            response.headers.update(SECURITY_HEADERS)
            return response

        return wrapped


def ui_router() -> APIRouter:
    """A router for UI pages: every route is a `UIRoute`, and none appears in the API's OpenAPI
    schema."""
    return APIRouter(route_class=UIRoute, include_in_schema=False)


static_router = ui_router()

_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@static_router.get("/static/{path:path}")
@public
def static(path: str) -> Response:
    """Files under `static/` only (no traversal); cached long, busted by `?v=`."""
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR.resolve()) or not target.is_file():
        raise NotFound(f"no static file {path!r}")
    media = _TYPES.get(target.suffix, "text/plain")
    return FileResponse(
        target, media_type=media, headers={"Cache-Control": "public, max-age=86400"}
    )
