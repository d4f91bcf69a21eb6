"""Run an HTTP task: one request (plus up to 5 redirects), a checked status, a bounded body.

The worker hands over a *concrete* `HttpAction` (templates already rendered). This module
makes the call safe to put in a workflow:

* only ``http`` and ``https`` URLs, on the first hop and on every redirect (and never a
  downgrade from https to http), so a template cannot turn into ``file://`` or ``ftp://``;
* an ``Idempotency-Key`` header from the task context, stable across retries, so a server
  that honours it performs the effect once;
* one overall deadline for the whole exchange, and a cap on the body read into memory;
* logs that carry header *names* only: header values are often credentials;
* no request to loopback, private, link-local (cloud metadata) or other non-public
  addresses unless an admin allow-listed them (`orchestrion.auth.ssrf`, checked after DNS
  resolution on the first hop and on every redirect), and connections only to the
  addresses that check approved (`orchestrion.auth.http_pinning`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from orchestrion.auth.http_pinning import Pins, pinned_client
from orchestrion.auth.ssrf import (
    AllowList,
    CheckedURL,
    Resolver,
    check_redirect,
    check_url,
    system_resolver,
)
from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.spec.model import HttpAction
from orchestrion.worker.context import TaskContext

__all__ = ["MAX_REDIRECTS", "MAX_RESPONSE_BYTES", "MAX_TEXT_CHARS", "run_http"]

_log = logging.getLogger(__name__)

#: Redirects followed before giving up.
MAX_REDIRECTS = 5
#: Largest (decoded) response body read; a larger one fails the task.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
#: A non-JSON body is returned as text cut to this many characters.
MAX_TEXT_CHARS = 1024 * 1024

_ALLOWED_SCHEMES = ("http", "https")
_ERROR_BODY_CHARS = 500
_PREVIEW_CHARS = 200
_IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class _Exchange:
    """What is left of a response once its body is read and the connection released."""

    method: str
    url: str
    status: int
    headers: httpx.Headers
    body: bytes


def run_http(
    action: HttpAction,
    ctx: TaskContext,
    *,
    client: httpx.Client | None = None,
    timeout: float | None = None,
    allow: AllowList | None = None,
    resolve: Resolver = system_resolver,
    deadline: float | None = None,
) -> Any:
    """Send the request and return its result.

    The result is the parsed JSON body when the response says it is JSON, ``{"status",
    "headers"}`` for HEAD, else ``{"status", "text"}``. Raises `TaskError` for a refused URL,
    a network error, an unexpected status or an unreadable body; `TaskTimeout` when the
    exchange outlives ``min(action.timeout, timeout)`` (or the attempt's `deadline`);
    `CancelRequested` once ``ctx.cancel_event`` is set; `UnsafeURL` (a `TaskError`) for a
    destination that is not public and not in `allow`. A given `client` is used as it is
    (not pinned): the checks still run on every hop, but its connections resolve names again.
    """
    url = _checked_url(action.url)
    guard = _Guard(allow or AllowList(), resolve)
    guard.first(str(url))
    limit = action.timeout if timeout is None else min(action.timeout, timeout)
    # The attempt's `deadline` (a `time.monotonic` value) counts from when the worker took
    # the claim; the request's own timeout from now. The exchange ends at the earlier one.
    deadline = min(time.monotonic() + limit, deadline or float("inf"))
    owned = client is None
    http = pinned_client(guard.pins) if client is None else client
    try:
        request = http.build_request(
            action.method, url, headers=_headers(action, ctx), json=action.json_body
        )
        exchange = _send(http, request, action, ctx, deadline, limit, guard)
    finally:
        if owned:
            http.close()
    _check_status(exchange, action, ctx)
    return _result(exchange, ctx)


# ------------------------------------------------------------------------------ request


class _Guard:
    """The SSRF checks of one exchange: the first URL, then each redirect from the last."""

    def __init__(self, allow: AllowList, resolve: Resolver) -> None:
        self.allow = allow
        self.resolve = resolve
        self.pins = Pins()
        self._last: CheckedURL | None = None

    def first(self, url: str) -> None:
        self._approve(check_url(url, resolve=self.resolve, allow=self.allow))

    def redirect(self, location: str) -> None:
        assert self._last is not None
        checked = check_redirect(self._last, location, resolve=self.resolve, allow=self.allow)
        self._approve(checked)

    def _approve(self, checked: CheckedURL) -> None:
        self.pins.add(checked)
        self._last = checked


def _checked_url(raw: str, *, previous: httpx.URL | None = None) -> httpx.URL:
    """Parse a URL and refuse any scheme but http(s), and a redirect from https to http."""
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise TaskError(f"invalid URL {_redact(raw)}: {exc}") from exc
    if url.scheme not in _ALLOWED_SCHEMES:
        raise TaskError(
            f"refusing URL scheme {url.scheme or '(none)'!r} in {_redact(url)}: "
            "only http and https are allowed"
        )
    if not url.host:
        raise TaskError(f"URL has no host: {_redact(url)}")
    if previous is not None and previous.scheme == "https" and url.scheme == "http":
        raise TaskError(f"refusing redirect from https to http: {_redact(url)}")
    return url


def _headers(action: HttpAction, ctx: TaskContext) -> dict[str, str]:
    """The user's headers, plus an idempotency key and the attempt's ``traceparent``
    unless the user set them (any case)."""
    headers = dict(action.headers)
    if not any(name.lower() == _IDEMPOTENCY_HEADER.lower() for name in headers):
        headers[_IDEMPOTENCY_HEADER] = ctx.idempotency_key
    if ctx.traceparent and not any(name.lower() == "traceparent" for name in headers):
        headers["traceparent"] = ctx.traceparent  # the server's spans join the run's trace
    return headers


def _send(
    client: httpx.Client,
    request: httpx.Request,
    action: HttpAction,
    ctx: TaskContext,
    deadline: float,
    limit: float,
    guard: _Guard,
) -> _Exchange:
    """Send, following redirects by hand so every hop passes the scheme and SSRF checks."""
    for hop in range(MAX_REDIRECTS + 1):
        ctx.check_cancel()
        request.extensions["timeout"] = httpx.Timeout(_remaining(deadline, limit)).as_dict()
        _log_request(ctx, request, hop)
        exchange, next_request = _one_hop(client, request, action, ctx, deadline, limit)
        if next_request is None:
            return exchange
        _checked_url(str(next_request.url), previous=request.url)
        guard.redirect(str(next_request.url))
        request = next_request
    raise TaskError(
        f"more than {MAX_REDIRECTS} redirects from {action.method} {_redact(action.url)}"
    )


def _one_hop(
    client: httpx.Client,
    request: httpx.Request,
    action: HttpAction,
    ctx: TaskContext,
    deadline: float,
    limit: float,
) -> tuple[_Exchange, httpx.Request | None]:
    """One request/response; the next request when this response is a redirect to follow."""
    started = time.monotonic()
    with _translate_errors(request, limit):
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            follow = response.next_request is not None and not _expected(
                response.status_code, action
            )
            body = b"" if follow else _read_body(response, ctx, deadline, limit)
        finally:
            response.close()
    _log_response(ctx, request, response, len(body), time.monotonic() - started)
    exchange = _Exchange(
        method=request.method,
        url=_redact(request.url),
        status=response.status_code,
        headers=response.headers,
        body=body,
    )
    return exchange, response.next_request if follow else None


def _remaining(deadline: float, limit: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TaskTimeout(f"timed out after {limit:g}s")
    return left


@contextlib.contextmanager
def _translate_errors(request: httpx.Request, limit: float) -> Iterator[None]:
    """httpx exceptions become task errors naming the URL and the httpx error class."""
    where = f"{request.method} {_redact(request.url)}"
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TaskTimeout(f"timed out after {limit:g}s: {where} ({type(exc).__name__})") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise TaskError(f"{where} failed: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------------------ response


def _read_body(response: httpx.Response, ctx: TaskContext, deadline: float, limit: float) -> bytes:
    """Read the decoded body, stopping at the size cap, the deadline or a cancel."""
    declared = str(response.headers.get("content-length", ""))
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large(response)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _too_large(response)
        if ctx.cancel_event.is_set():
            raise CancelRequested()
        if time.monotonic() > deadline:
            raise TaskTimeout(f"timed out after {limit:g}s reading the response body")
    return bytes(body)


def _too_large(response: httpx.Response) -> TaskError:
    request = response.request
    return TaskError(
        f"response larger than {MAX_RESPONSE_BYTES} bytes from "
        f"{request.method} {_redact(request.url)}"
    )


def _expected(status: int, action: HttpAction) -> bool:
    if action.expect_status:
        return status in action.expect_status
    return 200 <= status < 300


def _check_status(exchange: _Exchange, action: HttpAction, ctx: TaskContext) -> None:
    if _expected(exchange.status, action):
        return
    text = ctx.masker.head(_decode(exchange.body, exchange.headers), _ERROR_BODY_CHARS)
    raise TaskError(f"HTTP {exchange.status} from {exchange.method} {exchange.url}: {text}")


def _result(exchange: _Exchange, ctx: TaskContext) -> Any:
    if exchange.method == "HEAD":
        return {"status": exchange.status, "headers": dict(exchange.headers)}
    if _is_json(exchange.headers):
        if not exchange.body.strip():
            return None  # e.g. 204 No Content declared as JSON: nothing to parse
        try:
            return json.loads(exchange.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            preview = ctx.masker.head(_decode(exchange.body, exchange.headers), _PREVIEW_CHARS)
            raise TaskError(
                f"malformed JSON from {exchange.method} {exchange.url} ({exc}): {preview!r}"
            ) from exc
    text = ctx.masker.head(_decode(exchange.body, exchange.headers), MAX_TEXT_CHARS)
    return {"status": exchange.status, "text": text}


def _is_json(headers: httpx.Headers) -> bool:
    """``application/json`` or any ``+json`` type (``application/problem+json``)."""
    media = str(headers.get("content-type", "")).split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _decode(body: bytes, headers: httpx.Headers) -> str:
    """Decode with the declared charset, UTF-8 otherwise; never fail on bad bytes."""
    charset = "utf-8"
    for param in str(headers.get("content-type", "")).split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------ logging


def _redact(url: httpx.URL | str) -> str:
    """The URL without a password in its userinfo (logs and errors are not secret)."""
    text = str(url)
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL:
        return text
    if parsed.password:
        return str(parsed.copy_with(password="***"))
    return text


def _log_request(ctx: TaskContext, request: httpx.Request, hop: int) -> None:
    names = ", ".join(sorted(request.headers.keys()))
    size = request.headers.get("content-length", "0")
    via = f" (redirect {hop})" if hop else ""
    _emit(
        ctx,
        f"HTTP {request.method} {_redact(request.url)}{via} headers=[{names}] body={size} bytes",
    )


def _log_response(
    ctx: TaskContext, request: httpx.Request, response: httpx.Response, size: int, took: float
) -> None:
    names = ", ".join(sorted(response.headers.keys()))
    _emit(
        ctx,
        f"HTTP {response.status_code} from {request.method} {_redact(request.url)} "
        f"in {took * 1000:.0f} ms headers=[{names}] body={size} bytes",
    )


def _emit(ctx: TaskContext, line: str) -> None:
    try:
        ctx.log_sink("log", line)
    except Exception:
        # Logging is a side channel: it must not fail the request.
        _log.exception("log sink failed")
