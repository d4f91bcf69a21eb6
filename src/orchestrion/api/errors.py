"""Every error leaves the API as JSON with a stable code and a message naming the problem.

Nothing a client sends may produce a 5xx: known errors map to 4xx here, and anything
unexpected is logged and reported as ``internal`` without internals.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrion.api.schemas import BadCursor
from orchestrion.errors import (
    AlreadyExists,
    AuthError,
    BadSignature,
    ExpressionError,
    Forbidden,
    IllegalTransition,
    NotFound,
    NotifyError,
    OrchestrionError,
    ParameterError,
    PolicyDenied,
    PolicyError,
    SecretError,
    SpecError,
    StoreError,
    UnsupportedMediaType,
)
from orchestrion.web.errors import error_response, finding_json

__all__ = ["install_error_handlers"]

log = logging.getLogger("orchestrion.api")

_STATUS: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (AuthError, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (AlreadyExists, 409, "already_exists"),
    (BadSignature, 401, "bad_signature"),
    (BadCursor, 400, "bad_cursor"),
    (UnsupportedMediaType, 415, "unsupported_media_type"),
    (ParameterError, 422, "bad_parameters"),
    (PolicyError, 422, "invalid_policy"),
    (SpecError, 422, "invalid_workflow"),
    (ExpressionError, 422, "bad_expression"),
    (SecretError, 422, "bad_secret"),
    (NotifyError, 400, "delivery_failed"),
    (IllegalTransition, 409, "conflict"),
    (StoreError, 503, "store_unavailable"),
    (OrchestrionError, 400, "bad_request"),
]


def install_error_handlers(api: FastAPI) -> None:
    """Answer every `OrchestrionError` and request validation error with the API's one error body,
    ``{"error": {"code", "message"}}``, and the status its kind maps to."""

    @api.exception_handler(OrchestrionError)
    async def _known(request: Request, exc: OrchestrionError) -> JSONResponse:
        if isinstance(exc, PolicyDenied):
            # 403: allowed to deploy or trigger, but not this. Each finding names its
            # policy, rule, effect, field and message, for clients to show one by one.
            findings = [finding_json(f) for f in exc.findings]
            return error_response(403, "policy_denied", str(exc), extra={"findings": findings})
        for kind, status, code in _STATUS:
            if isinstance(exc, kind):
                return error_response(status, code, str(exc))
        return error_response(400, "bad_request", str(exc))  # pragma: no cover

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        # A shared check's own message (a namespace, a control character) says it all.
        what = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        message = f"{where}: {what}" if where else what
        more = len(exc.errors()) - 1
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        return error_response(422, "invalid_request", message)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.internal_error", extra={"path": request.url.path})
        return error_response(500, "internal", "internal error; see the server log")
