"""Webhook signature checks (pure: no framework, no clock of its own).

Two styles cover most senders:

- ``github``: header ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; the
  delivery id (``X-GitHub-Delivery``) is the event id, so a redelivery never starts a
  second run. GitHub signs no timestamp: replay protection is the delivery-id dedupe.
- ``stripe``: header ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``
  (several ``v1`` allowed, for secret rotation); the timestamp must be within
  `tolerance` seconds of now, so a captured request cannot be replayed later.
- ``hmac``: our own generic form, ``X-Orchestrion-Signature: t=<unix>,v1=<hex>`` signed
  like Stripe's, plus an optional ``X-Orchestrion-Delivery`` id.

Comparisons are constant-time. Every failure is a `WebhookRejected` naming what was wrong,
never the secret or the expected signature.

`accept` is the whole intake of one request to a named webhook: its configuration (read
from the environment mapping it is given), the signature, the JSON body, the event name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrion.errors import BadSignature, NotFound, ParameterError

__all__ = ["Delivery", "Style", "Verified", "WebhookRejected", "accept", "sign", "verify"]

Style = Literal["github", "stripe", "hmac"]

#: Seconds a signed timestamp may differ from now (Stripe's default).
DEFAULT_TOLERANCE = 300.0


class WebhookRejected(BadSignature):
    """The webhook request is not authentic."""


@dataclass(frozen=True, slots=True)
class Verified:
    """What a valid signature check learns of the request from the sender's headers."""

    #: A stable id for de-duplication, when the sender provides one.
    delivery_id: str | None
    #: The sender's event name (GitHub's X-GitHub-Event), when it provides one.
    event: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An authentic webhook request, as the event it sends."""

    #: ``webhook.<name>``, or ``webhook.<name>.<sender's event>`` when the sender names one.
    event: str
    delivery_id: str | None
    payload: Any


def accept(
    name: str, env: Mapping[str, str], headers: Mapping[str, str], body: bytes, now: float
) -> Delivery:
    """Verify a request to webhook `name` with its secret (``ORCHESTRION_WEBHOOK_<NAME>_SECRET``
    in `env`) and style (``..._STYLE``: github, stripe or hmac; github by default).

    Raises `NotFound` for a webhook that is not configured, `WebhookRejected` for a bad
    signature and `ParameterError` for a body that is not JSON.
    """
    key = "".join(c if c.isalnum() else "_" for c in name).upper()
    secret = env.get(f"ORCHESTRION_WEBHOOK_{key}_SECRET", "")
    style = env.get(f"ORCHESTRION_WEBHOOK_{key}_STYLE", "github")
    if not secret or style not in ("github", "stripe", "hmac"):
        raise NotFound(f"no webhook named {name!r} is configured")
    verified = verify(_style(style), secret.encode(), headers, body, now)
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        raise ParameterError("webhook body is not JSON") from None
    event = f"webhook.{name}" + (f".{verified.event}" if verified.event else "")
    return Delivery(event=event, delivery_id=verified.delivery_id, payload=payload)


def _style(value: str) -> Style:
    return "stripe" if value == "stripe" else "hmac" if value == "hmac" else "github"


def _hmac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(style: Style, secret: bytes, body: bytes, now: float) -> dict[str, str]:
    """Headers a sender of `style` would send (for tests and for our own clients)."""
    if style == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hmac(secret, body)}
    stamp = str(int(now))
    value = f"t={stamp},v1={_hmac(secret, stamp.encode() + b'.' + body)}"
    name = "Stripe-Signature" if style == "stripe" else "X-Orchestrion-Signature"
    return {name: value}


def verify(
    style: Style,
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verified:
    """Check a request's signature; `headers` must be case-insensitive (or lower-case)."""
    if not secret:
        raise WebhookRejected("this webhook has no secret configured; refusing all requests")
    lower = {k.lower(): v for k, v in headers.items()}
    if style == "github":
        return _github(secret, lower, body)
    header = "stripe-signature" if style == "stripe" else "x-orchestrion-signature"
    _timestamped(secret, lower.get(header), header, body, now, tolerance)
    delivery = lower.get("x-orchestrion-delivery") if style == "hmac" else None
    return Verified(delivery_id=delivery, event=lower.get("x-orchestrion-event"))


def _github(secret: bytes, headers: Mapping[str, str], body: bytes) -> Verified:
    given = headers.get("x-hub-signature-256")
    if not given:
        raise WebhookRejected("missing X-Hub-Signature-256 header")
    if not given.startswith("sha256="):
        raise WebhookRejected("X-Hub-Signature-256 must start with 'sha256='")
    if not hmac.compare_digest(given[7:].lower(), _hmac(secret, body)):
        raise WebhookRejected("signature does not match the body")
    return Verified(
        delivery_id=headers.get("x-github-delivery"), event=headers.get("x-github-event")
    )


def _timestamped(
    secret: bytes, value: str | None, header: str, body: bytes, now: float, tolerance: float
) -> None:
    if not value:
        raise WebhookRejected(f"missing {header} header")
    stamp: str | None = None
    candidates: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            stamp = item
        elif key == "v1":
            candidates.append(item.lower())
    if stamp is None or not stamp.isdigit():
        raise WebhookRejected(f"{header} has no valid t=<unix time>")
    if not candidates:
        raise WebhookRejected(f"{header} has no v1 signature")
    if abs(now - int(stamp)) > tolerance:
        raise WebhookRejected(
            f"signed timestamp is {abs(now - int(stamp)):.0f}s from now (over {tolerance:.0f}s):"
            " possible replay"
        )
    expected = _hmac(secret, stamp.encode() + b"." + body)
    if not any(hmac.compare_digest(c, expected) for c in candidates):
        raise WebhookRejected("signature does not match the body")
