"""Authentication, authorisation and audit around every request.

`Authenticate` (ASGI middleware) finds the principal: an API token (``Authorization:
Bearer``) or a UI session cookie. A request without one reaches only the routes marked
`policy.public`; others get 401 (API) or a redirect to the login page (UI pages). After
the response it appends the request's audit record, if the route mutates, with the outcome
read off the status code: exactly one record per mutating request, allowed or not.

`guard` (a dependency of every route) reads the matched route's `policy.rule`, checks the
CSRF token of a cookie-authenticated unsafe request, and calls `authorize_all` on what the
rule's target says the request touches. A route without a rule is refused.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote, unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrion.app import App
from orchestrion.auth.principals import Principal, authorize_all
from orchestrion.errors import (
    AuthError,
    Forbidden,
    InvalidValue,
    NotFound,
    OrchestrionError,
    ParameterError,
)
from orchestrion.spec.rules import CONTROL_RE, MAX_JSON_DEPTH, load_json
from orchestrion.web.audit_params import audit_params
from orchestrion.web.csrf import check_origin, check_request_csrf
from orchestrion.web.errors import error_response
from orchestrion.web.policy import PUBLIC_ROUTE, Rule, access_of
from orchestrion.web.probes import ProbeAudit
from orchestrion.web.request import app_of, principal_of

__all__ = ["SESSION_COOKIE", "Authenticate", "guard"]

log = logging.getLogger("orchestrion.web.guard")

SESSION_COOKIE: Final = "orchestrion_session"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: A token's public id as a refusal names it (`auth.tokens`); left out of audit records.
_TOKEN_ID: Final = re.compile(r"\b[0-9a-f]{16}\b")


async def guard(request: Request) -> None:
    """The authorisation step of every route (installed as an app-wide dependency)."""
    route = request.scope.get("route")
    access = access_of(getattr(route, "endpoint", None))
    if access == PUBLIC_ROUTE:
        return
    principal = principal_of(request)
    state = request.state
    if not isinstance(access, Rule):
        name = f"{request.method} {getattr(route, 'path', request.url.path)}"
        state.audit = {"action": name, "object": request.url.path}
        raise Forbidden(f"no access rule for {name}; refused")
    # Audited: what the rule calls a change, and every request that may change something
    # whatever the action it needs (signing out needs only to be signed in).
    audited = access.mutating or request.method not in _SAFE_METHODS
    if audited:
        state.audit = _audit_fields(request, access)
        state.audit["params"] = await audit_params(request, access)
    if request.method not in _SAFE_METHODS:  # after the audit fields: refusals are recorded
        await _refuse_bad_json(request)
    if state.auth_via == "session" and request.method not in _SAFE_METHODS:
        check_origin(request)
        await check_request_csrf(request)
    try:
        checks = await access.target(request, app_of(request), access.action)
    except NotFound:
        return  # nothing to authorise against: the handler answers 404 (or 422 first)
    for action in {a for a, _ in checks}:
        decision = authorize_all(principal, action, [r for a, r in checks if a == action])
        if not decision:
            raise Forbidden(decision.reason)
    if audited and checks:
        state.audit["namespace"] = checks[0][1].namespace
        state.audit["object"] = str(checks[0][1])


def _audit_fields(request: Request, rule: Rule) -> dict[str, Any]:
    params = {k: v for k, v in request.path_params.items()}
    return {"action": rule.audit_name, "object": request.url.path, "path": params}


def _wants_page(request: Request) -> bool:
    """A browser's page visit (answered with the login page rather than 401)."""
    path = request.url.path
    return request.method == "GET" and not path.startswith(("/api/", "/hooks/"))


def _credential_kind(request: Request) -> str:
    """What kind of credential a refused request sent: never any part of it."""
    header = request.headers.get("authorization", "")
    if header:
        scheme = header.partition(" ")[0].lower()
        return "bearer token" if scheme == "bearer" else "malformed Authorization header"
    return "session cookie" if request.cookies.get(SESSION_COOKIE) else "none"


class Authenticate:
    """Find the principal of every request; write the audit record after the response."""

    def __init__(
        self,
        app: ASGIApp,
        orchestrion: App,
        public: Iterable[tuple[str, str]],
        probes: ProbeAudit | None = None,
    ) -> None:
        self.app = app
        self.orchestrion = orchestrion
        self.probes = probes or ProbeAudit(orchestrion)
        # Matched before routing, so by the path templates' shapes (``/hooks/{name}``).
        self._public = [(method, compile_path(path)[0]) for method, path in public]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a URL with a control character; find the request's principal, refusing with
        401 unless the route is public; and write the request's audit record, if it has one,
        before the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        bad = _control_in_url(scope)
        if bad:
            # No name, id or filter holds one: a NUL cannot be stored by PostgreSQL, and an
            # escape or a newline would reach the audit log and whoever reads it.
            await error_response(400, "bad_request", f"{bad} in the request URL")(
                scope, receive, send
            )
            return
        request_id = secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state.update(request_id=request_id, principal=None, auth_via=None, csrf="", audit=None)
        refusal = await self._gate(request, state)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        written = False

        async def send_wrapper(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start":
                if message["status"] == 405 and not state.get("audit"):
                    await self._method_refused(request, state)
                # The record is written before the client sees the answer, so whoever acts
                # on a response finds its audit record already there.
                if state.get("audit") and not written:
                    written = True
                    await run_in_threadpool(self._write_audit, request, state, message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if state.get("audit") and not written:  # no response was started
                await run_in_threadpool(self._write_audit, request, state, 500)

    async def _gate(self, request: Request, state: dict[str, Any]) -> Response | None:
        """Find the principal; the refusal to send instead of the route (401, or the login
        page for a browser), audited, when there is none and the route is not public."""
        try:
            self._authenticate(request, state)
        except AuthError as exc:
            if self._is_public(request.scope):
                return None  # a bad cookie does not lock anyone out of the login page
            await self._refused(request, str(exc), state, bad_credential=True)
            return self._refuse(request, str(exc))
        if state["principal"] is None and not self._is_public(request.scope):
            reason = "sign in or send an API token"
            presented = _credential_kind(request) != "none"  # e.g. an expired session
            await self._refused(request, reason, state, bad_credential=presented)
            return self._refuse(request, reason)
        return None

    async def _refused(
        self, request: Request, reason: str, state: dict[str, Any], *, bad_credential: bool
    ) -> None:
        """Audit an unauthenticated request (rate-limited), never the credential it sent. A
        page visit without any credential is only sent to the login page: not a probe."""
        if not bad_credential and _wants_page(request):
            return
        await self.probes.refused(
            request.scope,
            401,
            _TOKEN_ID.sub("<id>", reason),  # even the public id part of what was sent
            params={"presented": _credential_kind(request)},
            request_id=state["request_id"],
        )

    async def _method_refused(self, request: Request, state: dict[str, Any]) -> None:
        principal: Principal | None = state["principal"]
        actor = (principal.name, principal.kind.value) if principal else None
        await self.probes.refused(
            request.scope,
            405,
            f"{request.method} is not allowed here",
            actor=actor or ("anonymous", "anonymous"),
            request_id=state["request_id"],
        )

    def _authenticate(self, request: Request, state: dict[str, Any]) -> None:
        header = request.headers.get("authorization", "")
        accounts = self.orchestrion.accounts
        if header:
            scheme, _, credential = header.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise AuthError("the Authorization header must be 'Bearer <API token>'")
            state["principal"] = accounts.principal_for_token(credential.strip())
            state["auth_via"] = "token"
            return
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal, csrf = accounts.principal_for_session(cookie)
            state.update(principal=principal, auth_via="session", csrf=csrf)

    def _refuse(self, request: Request, reason: str) -> Response:
        path = request.url.path
        if _wants_page(request):
            target = quote(path + (f"?{request.url.query}" if request.url.query else ""))
            response: Response = RedirectResponse(f"/login?next={target}", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        return error_response(
            401, "unauthenticated", reason, {"WWW-Authenticate": 'Bearer realm="orchestrion"'}
        )

    def _write_audit(self, request: Request, state: dict[str, Any], status: int) -> None:
        audit: dict[str, Any] = state["audit"]
        principal: Principal | None = state["principal"]
        outcome = (
            "ok"
            if status < 400
            else "denied"
            if status in (401, 403)
            else "failed"
            if status < 500
            else "error"
        )
        self.probes.flush()  # counts of refusals a finished minute did not record
        try:
            self.orchestrion.accounts.audit(
                actor=audit.get("actor") or (principal.name if principal else "anonymous"),
                actor_kind=audit.get("actor_kind")
                or (principal.kind.value if principal else "anonymous"),
                action=audit["action"],
                object=str(audit.get("object", request.url.path)),
                namespace=audit.get("namespace"),
                params=audit.get("params") or {},
                outcome=outcome,
                detail=f"HTTP {status}",
                request_id=state["request_id"],
                source=request.client.host if request.client else None,
            )
        except OrchestrionError:  # the store is down: say so loudly, never fail the response
            log.exception("audit.write_failed", extra={"action": audit.get("action")})

    def _is_public(self, scope: Scope) -> bool:
        """Is this a request to a route marked `policy.public`? (HEAD is GET's.)"""
        method, path = scope["method"], scope["path"]
        if method == "HEAD":
            method = "GET"
        return any(m == method and rx.match(path) for m, rx in self._public)


def _control_in_url(scope: Scope) -> str | None:
    """What is wrong with the request's path or query (decoded): a NUL byte or another
    control character (the shared `spec.fields.CONTROL_RE`); None when there is none."""
    query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
    for text in (scope["path"], query):
        found = CONTROL_RE.search(text)
        if found:
            return "NUL byte" if found.group() == "\x00" else f"control character {found.group()!r}"
    return None


#: What may hide a problem in a JSON body (`spec.fields.json_problem`): a NUL (a raw byte,
#: or a ``\u0000`` escape that is not itself escaped: ``\\u0000`` is the text
#: backslash-u-0000), a surrogate escape (``\ud800``, only text as half of a valid pair),
#: ``NaN`` or ``Infinity`` (which Python's decoder takes), or enough brackets to nest too
#: deep. A body with none is not decoded a second time.
_JSON_SUSPECT: Final = re.compile(
    rb"\x00|(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})|(?-i:NaN|Infinity)", re.IGNORECASE
)


def _suspect(body: bytes) -> bool:
    brackets = body.count(b"{") + body.count(b"[")
    return brackets > MAX_JSON_DEPTH or _JSON_SUSPECT.search(body) is not None


async def _refuse_bad_json(request: Request) -> None:
    """`ParameterError` (422) for a request body no store or serializer can take: a NUL
    (PostgreSQL text cannot hold one), a lone surrogate (not UTF-8 at all; both drivers
    fail on it), NaN or Infinity (not JSON), or nesting past `MAX_JSON_DEPTH` (pydantic's
    serializer and the decoder fail on it). Each would be a 5xx further in instead of a
    refusal naming the field, and no name, id, key or value of this API needs one. A form
    is checked for ``%00``. (Public routes, the signed webhooks among them, take their
    bodies as they come.)"""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        if b"%00" in body:
            raise ParameterError("NUL character in the form: no field may hold one")
        return
    if not _suspect(body):
        return
    try:
        load_json(body, what="the request body")
    except InvalidValue:
        raise  # a ParameterError (422) naming the problem and where
    except ValueError:
        return  # not JSON: the handler refuses it as such
