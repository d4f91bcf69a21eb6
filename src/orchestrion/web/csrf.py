"""The CSRF defence of cookie-authenticated requests, for both faces.

A session's token is in every page's forms (a ``csrf_token`` field); a script sends it in
the ``X-CSRF-Token`` header. The guard checks it on every unsafe request made with a
session cookie; UI views check a form's token again where they use the form.
SameSite=Strict cookies are the second wall.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from orchestrion.errors import Forbidden

__all__ = ["CSRF_HEADER", "check_csrf", "check_request_csrf", "csrf_token"]

CSRF_HEADER: Final = "x-csrf-token"
_REFUSAL: Final = "missing or wrong CSRF token; reload the page and try again"


def csrf_token(request: Request) -> str:
    """The token every form carries: the session's (empty without a session)."""
    return str(getattr(request.state, "csrf", "") or "")


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def check_request_csrf(request: Request) -> None:
    """A cookie-authenticated unsafe request must echo the session's CSRF token, in the
    ``X-CSRF-Token`` header or a ``csrf_token`` form field."""
    given = request.headers.get(CSRF_HEADER, "")
    if not given and "form" in request.headers.get("content-type", ""):
        body = (await request.body()).decode("utf-8", "replace")
        given = dict(parse_qsl(body, keep_blank_values=True)).get("csrf_token", "")
    if not _same(given, csrf_token(request)):
        raise Forbidden(_REFUSAL)


def check_csrf(request: Request, form: Mapping[str, str]) -> None:
    """Check a form's CSRF token again where it is used (the guard checked it first; a view
    that is ever mounted without the guard still refuses a forged form)."""
    if getattr(request.state, "auth_via", None) != "session":
        return  # an API token in a header cannot be sent by another site's form
    if not _same(form.get("csrf_token", ""), csrf_token(request)):
        raise Forbidden(_REFUSAL)
