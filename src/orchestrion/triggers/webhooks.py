"""Webhooks: signature checks, the body as the trigger sees it, and the replay key (pure: no
framework, no clock of its own).

Three signature styles cover most senders:

- ``github``: header ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; the
  delivery id (``X-GitHub-Delivery``) is the event id. GitHub signs no timestamp.
- ``stripe``: header ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``
  (several ``v1`` allowed, for secret rotation); the timestamp must be within
  `tolerance` seconds of now, so a captured request cannot be replayed later.
- ``hmac``: our own generic form, ``X-Orchestrion-Signature: t=<unix>,v1=<hex>`` signed
  like Stripe's, plus an optional ``X-Orchestrion-Delivery`` id.

Comparisons are constant-time. `verify` names what was wrong, never the secret or the
expected signature; `accept` tells the caller only that a delivery was refused (the reason
is kept on the exception for the audit log), and does the same work for a webhook that is
not configured as for one that is, so an unauthenticated caller cannot tell them apart.

Replays: delivery ids are headers outside the signature, so they cannot be the only
defence. `Delivery.replay_key` digests what the signature covers (the body, with its signed
timestamp where the style has one) under the webhook's name; the store keeps each key for
`Delivery.replay_until` and refuses a second delivery of it (`orchestrion.store.records.Replay`).

Bodies: JSON, form data and text are accepted, by the delivery's Content-Type, when the
webhook takes that kind (``ORCHESTRION_WEBHOOK_<NAME>_CONTENT_TYPE``: a comma-separated
list of ``json``, ``form``, ``text``; all three by default); see `Body`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qsl

from orchestrion.errors import BadSignature, ParameterError, UnsupportedMediaType

__all__ = [
    "REFUSED",
    "Body",
    "Delivery",
    "HookConfig",
    "Kind",
    "Style",
    "Verified",
    "WebhookRejected",
    "accept",
    "read_body",
    "sign",
    "verify",
]

log = logging.getLogger("orchestrion.webhooks")

Style = Literal["github", "stripe", "hmac"]
#: What a body is taken as, by its Content-Type.
Kind = Literal["json", "form", "text"]
_KINDS: Final = frozenset(get_args(Kind))

#: Seconds a signed timestamp may differ from now (Stripe's default).
DEFAULT_TOLERANCE = 300.0
#: How long the replay key of a delivery without a signed timestamp (``github``) is kept.
UNSTAMPED_REPLAY_WINDOW = 7 * 86400.0
#: Form fields a body may hold (a flood of tiny fields costs memory per field).
MAX_FORM_FIELDS = 1000
#: What every refused delivery is told, configured webhook or not.
REFUSED: Final = "webhook delivery refused: its signature could not be verified"
#: The key an unconfigured webhook's decoy check uses: random, never matched.
_DECOY_SECRET: Final = secrets.token_bytes(32)


class WebhookRejected(BadSignature):
    """The webhook request is not authentic."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        #: What was wrong, for the audit log (the caller is told only `str(self)`).
        self.reason = reason or message


@dataclass(frozen=True, slots=True)
class Verified:
    """What a valid signature check learns of the request from the sender's headers."""

    #: A stable id for de-duplication, when the sender provides one.
    delivery_id: str | None
    #: The sender's event name (GitHub's X-GitHub-Event), when it provides one.
    event: str | None
    #: What the signature covers: the body, or ``<timestamp>.<body>``.
    signed: bytes = field(default=b"", repr=False)
    #: The signed timestamp, for the styles that sign one.
    stamp: int | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """A delivery's body as a trigger's ``filter`` and ``params`` see it (``event.*``).

    ``payload`` (the event's stored payload) is the parsed JSON value, the form's fields,
    or the text; ``text`` is always the body as text; ``json`` and ``form`` are None unless
    the body is of that kind. A form field sent more than once is a list of its values.
    """

    kind: Kind
    #: The media type, lower case, without parameters (``application/json``).
    content_type: str
    text: str
    json: Any = None
    form: dict[str, str | list[str]] | None = None

    @property
    def payload(self) -> Any:
        """The body's natural value: JSON, the form's fields, or the text."""
        return self.json if self.kind == "json" else self.form if self.kind == "form" else self.text


@dataclass(frozen=True, slots=True)
class HookConfig:
    """One webhook's configuration, from ``ORCHESTRION_WEBHOOK_<NAME>_...`` variables."""

    name: str
    style: Style
    secret: bytes = field(repr=False)
    kinds: frozenset[Kind] = _KINDS

    @classmethod
    def from_env(cls, name: str, env: Mapping[str, str]) -> HookConfig | None:
        """The configuration of webhook `name`; None when it has no secret, or a setting
        is unusable (logged: the operator must hear of it, the caller must not)."""
        key = "".join(c if c.isalnum() else "_" for c in name).upper()
        prefix = f"ORCHESTRION_WEBHOOK_{key}_"
        secret = env.get(prefix + "SECRET", "")
        if not secret:
            return None
        style = env.get(prefix + "STYLE", "github").strip().lower()
        kinds = {k.strip().lower() for k in env.get(prefix + "CONTENT_TYPE", "").split(",")}
        kinds.discard("")
        if style not in get_args(Style) or not kinds <= _KINDS:
            log.warning(
                "webhook.misconfigured",
                extra={"webhook": name, "style": style, "content_types": sorted(kinds)},
            )
            return None
        chosen = frozenset(k for k in _KINDS if k in kinds) if kinds else _KINDS
        return cls(name=name, style=_style(style), secret=secret.encode(), kinds=chosen)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An authentic webhook request, as the event it sends."""

    #: ``webhook.<name>``, or ``webhook.<name>.<sender's event>`` when the sender names one.
    event: str
    delivery_id: str | None
    payload: Any
    #: The body as the trigger sees it (None only for deliveries built by hand).
    body: Body | None = None
    #: A digest of what the signature covers, under the webhook's name: a second delivery
    #: of the same key is a replay, whatever its unsigned headers say.
    replay_key: str = ""
    #: Until when the key must be remembered (past it, the signature is refused anyway, or
    #: for unstamped styles, the window `UNSTAMPED_REPLAY_WINDOW` ends).
    replay_until: float = 0.0
    #: The webhook's name.
    hook: str = ""

    def scope(self) -> dict[str, Any]:
        """What a trigger reads of this delivery besides ``event.type``/``id``/``payload``."""
        body = self.body
        return {
            "hook": self.hook,
            "delivery_id": self.delivery_id,
            "kind": body.kind if body else None,
            "content_type": body.content_type if body else None,
            "text": body.text if body else None,
            "json": body.json if body else None,
            "form": body.form if body else None,
        }


def accept(
    name: str,
    env: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Delivery:
    """Verify a request to webhook `name` with its configuration in `env` (`HookConfig`),
    then read its body.

    Raises `WebhookRejected` (always with the message `REFUSED`; the reason is on the
    exception) for a webhook that is not configured and for a bad signature alike, after
    the same work; then, for an authentic delivery only, `UnsupportedMediaType` for a
    Content-Type the webhook does not take and `ParameterError` for a body that is not what
    its Content-Type says.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    config = HookConfig.from_env(name, env)
    if config is None:
        _decoy(lower, body, now, tolerance)
        raise WebhookRejected(REFUSED, reason=f"no webhook named {name!r} is configured")
    try:
        verified = verify(config.style, config.secret, lower, body, now, tolerance)
    except WebhookRejected as exc:
        raise WebhookRejected(REFUSED, reason=exc.reason) from None
    parsed = read_body(lower.get("content-type"), body, config.kinds)
    event = f"webhook.{name}" + (f".{verified.event}" if verified.event else "")
    named = name.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(b"webhook\x00" + named + b"\x00" + verified.signed)
    until = (
        now + UNSTAMPED_REPLAY_WINDOW
        if verified.stamp is None
        else max(now, verified.stamp + tolerance) + 1.0
    )
    return Delivery(
        event=event,
        delivery_id=verified.delivery_id,
        payload=parsed.payload,
        body=parsed,
        replay_key=digest.hexdigest(),
        replay_until=until,
        hook=name,
    )


def _decoy(headers: Mapping[str, str], body: bytes, now: float, tolerance: float) -> None:
    """Check the request as a configured webhook of the style its headers suggest would,
    with a secret nobody has: the same work, and the same refusal."""
    style: Style = (
        "stripe"
        if "stripe-signature" in headers
        else "hmac"
        if "x-orchestrion-signature" in headers
        else "github"
    )
    with contextlib.suppress(WebhookRejected):
        verify(style, _DECOY_SECRET, headers, body, now, tolerance)


def read_body(content_type: str | None, body: bytes, kinds: frozenset[Kind] = _KINDS) -> Body:
    """The body as JSON, form data or text, by its Content-Type; `UnsupportedMediaType` for
    another type or a kind not in `kinds`, `ParameterError` for a body that is not what
    its type says (bad JSON, bytes that are not text in its charset)."""
    media, charset = _media_type(content_type or "")
    kind = _kind_of(media)
    if kind is None:
        raise UnsupportedMediaType(
            f"a webhook body must be JSON (application/json), form data"
            f" (application/x-www-form-urlencoded) or text (text/*), not"
            f" {media[:100] or 'a body without a Content-Type'}"
        )
    if kind not in kinds:
        raise UnsupportedMediaType(
            f"this webhook takes {', '.join(sorted(kinds))} bodies, not {kind} ({media[:100]})"
        )
    try:
        text = body.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise ParameterError(f"the {media} body is not valid {charset[:40]} text") from None
    if kind == "json":
        try:
            value = json.loads(text) if text.strip() else None
        except ValueError as exc:
            raise ParameterError(f"the body is not the JSON its Content-Type says: {exc}") from None
        return Body(kind, media, text, json=value)
    if kind == "form":
        return Body(kind, media, text, form=_form(text))
    return Body(kind, media, text)


def _media_type(header: str) -> tuple[str, str]:
    """``(media type, charset)`` of a Content-Type value (charset ``utf-8`` by default)."""
    media, *params = header.split(";")
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def _kind_of(media: str) -> Kind | None:
    if media == "application/json" or (media.startswith("application/") and media[-5:] == "+json"):
        return "json"
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media.startswith("text/") or media == "application/xml" or media.endswith("+xml"):
        return "text"
    return None


def _form(text: str) -> dict[str, str | list[str]]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise ParameterError(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    out: dict[str, str | list[str]] = {}
    for key, value in pairs:
        seen = out.get(key)
        if seen is None:
            out[key] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            out[key] = [seen, value]
    return out


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
    stamp = _timestamped(secret, lower.get(header), header, body, now, tolerance)
    delivery = lower.get("x-orchestrion-delivery") if style == "hmac" else None
    return Verified(
        delivery_id=delivery,
        event=lower.get("x-orchestrion-event"),
        signed=str(stamp).encode() + b"." + body,
        stamp=stamp,
    )


def _github(secret: bytes, headers: Mapping[str, str], body: bytes) -> Verified:
    given = headers.get("x-hub-signature-256")
    if not given:
        raise WebhookRejected("missing X-Hub-Signature-256 header")
    if not given.startswith("sha256="):
        raise WebhookRejected("X-Hub-Signature-256 must start with 'sha256='")
    if not hmac.compare_digest(given[7:].lower(), _hmac(secret, body)):
        raise WebhookRejected("signature does not match the body")
    return Verified(
        delivery_id=headers.get("x-github-delivery"),
        event=headers.get("x-github-event"),
        signed=body,
    )


def _timestamped(
    secret: bytes, value: str | None, header: str, body: bytes, now: float, tolerance: float
) -> int:
    """The signed timestamp of a valid ``t=...,v1=...`` header."""
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
    if stamp is None or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 15:
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
    return int(stamp)
