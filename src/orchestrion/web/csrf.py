"""The CSRF defence of cookie-authenticated requests, for both faces.

A session's token is in every page's forms (a ``csrf_token`` field); a script sends it in
the ``X-CSRF-Token`` header. The guard checks it on every unsafe request made with a
session cookie; UI views check a form's token again where they use the form.
SameSite=Strict cookies are the second wall, and `check_origin` the third: a browser names
the page a request comes from (``Origin``, else ``Referer``), and a page of another origin
is refused, whatever token it managed to send.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from orchestrion.errors import Forbidden

__all__ = ["CSRF_HEADER", "check_csrf", "check_origin", "check_request_csrf", "csrf_token"]

CSRF_HEADER: Final = "x-csrf-token"
_REFUSAL: Final = "missing or wrong CSRF token; reload the page and try again"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: What `_origin_of` gives for ``null`` and other unreadable values: never accepted.
_UNREADABLE: Final = "<unreadable>"


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


def check_origin(request: Request) -> None:
    """A cookie-authenticated unsafe request must come from this server's own pages: its
    ``Origin`` (else its ``Referer``'s origin) must be the server's, which is the scheme the
    request arrived with (``X-Forwarded-Proto`` from a trusted proxy counts) and its
    ``Host``. A request naming neither passes to the token check: browsers send ``Origin``
    on every unsafe request they make, so only a non-browser client (which holds the cookie
    and the token itself) omits both. ``Origin: null`` (a sandboxed or file page) is
    refused."""
    given = request.headers.get("origin")
    if given is None:
        referer = request.headers.get("referer")
        if referer is None:
            return
        given = _origin_of(referer)
    own = _origin_of(f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}")
    origin = _origin_of(given)
    if origin == _UNREADABLE or origin != own:
        raise Forbidden(
            f"cross-origin request refused: it comes from {given[:200]!r}, not from this"
            f" server ({own}); behind a reverse proxy, name it with --trusted-proxy so its"
            " X-Forwarded-Proto is believed"
        )


def _origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, with the scheme's default port written out and the
    host in lower case; an unreadable URL gives a value no origin equals."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
        host = (parts.hostname or "").lower()
    except ValueError:
        return _UNREADABLE
    if not scheme or not host:
        return _UNREADABLE
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"
