"""The JSON error body of the HTTP edge: what the guard's refusals and the API's error
handlers send, so a client reads every failure the same way."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

__all__ = ["error_response"]


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``{"error": {"code": ..., "message": ...}}`` with this status, marked ``nosniff``
    here as well as by `headers.AlwaysHeaders`: Starlette answers an unexpected error (500)
    from outside every middleware the application adds."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(
        body,
        status_code=status,
        headers={"X-Content-Type-Options": "nosniff", **(headers or {})},
    )
