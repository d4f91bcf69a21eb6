"""Sending one notification: a signed webhook, a Slack-compatible webhook, an email.

Outbound HTTP goes through the SSRF check every HTTP task uses (`orchestrion.auth.ssrf`,
the admin's allow-list) and connects only to the addresses it approved
(`orchestrion.auth.http_pinning`), never follows redirects and ignores proxy variables;
the SMTP host is checked the same way (and then connected to by name). Every failure is
a `NotifyError` naming what went wrong, without the secret: the outbox records it and
tries again later.

A webhook's body is JSON; its signature is ``X-Orchestrion-Signature: sha256=<hex>``, an
HMAC-SHA256 under the channel's secret of ``<timestamp>.<body>``, where the timestamp
(Unix seconds) is ``X-Orchestrion-Timestamp``: a receiver recomputes it, compares in
constant time and refuses old timestamps, so a captured delivery cannot be replayed later.
``X-Orchestrion-Delivery`` is the outbox row's id, the same on every retry (a receiver may
use it to drop duplicates: delivery is at least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from orchestrion.auth.http_pinning import Pins, pinned_client
from orchestrion.auth.ssrf import AllowList, check_url
from orchestrion.errors import NotifyError, UnsafeURL
from orchestrion.store.notification_records import ChannelRecord, DeliveryRecord

__all__ = ["Outbound", "send", "signature"]

SIGNATURE_HEADER = "X-Orchestrion-Signature"
TIMESTAMP_HEADER = "X-Orchestrion-Timestamp"
DELIVERY_HEADER = "X-Orchestrion-Delivery"


@dataclass(frozen=True, slots=True)
class Outbound:
    """What the sending process allows: the SSRF allow-list and a timeout per send."""

    allow: AllowList = field(default_factory=AllowList)
    timeout: float = 10.0


def signature(key: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 under `key` of ``<timestamp>.<body>``."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def send(
    channel: ChannelRecord,
    delivery: DeliveryRecord,
    secret: str | None,
    *,
    now: float,
    outbound: Outbound,
) -> None:
    """Deliver once, or raise `NotifyError`."""
    if channel.kind == "webhook":
        _webhook(channel, delivery, secret, int(now), outbound)
    elif channel.kind == "slack":
        if not secret:
            raise NotifyError(f"slack channel {channel.name} has no secret holding its URL")
        body = json.dumps({"text": delivery.message}).encode()
        _post(secret, body, {"Content-Type": "application/json"}, outbound, show_url=False)
    elif channel.kind == "smtp":
        _email(channel.config, delivery, secret, outbound)
    else:
        raise NotifyError(f"unknown channel kind {channel.kind!r}")


def _webhook(
    channel: ChannelRecord,
    delivery: DeliveryRecord,
    key: str | None,
    timestamp: int,
    outbound: Outbound,
) -> None:
    url = str(channel.config.get("url", ""))
    document = {**delivery.payload, "message": delivery.message, "delivery": delivery.id}
    body = json.dumps(document, sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: str(delivery.id),
    }
    if key:
        headers[SIGNATURE_HEADER] = signature(key, timestamp, body)
    _post(url, body, headers, outbound, show_url=True)


def _post(
    url: str, body: bytes, headers: dict[str, str], outbound: Outbound, *, show_url: bool
) -> None:
    # A Slack URL is a credential: errors name the host at most.
    where = url if show_url else _host_of(url)
    pins = Pins()
    try:
        pins.add(check_url(url, allow=outbound.allow))
    except (UnsafeURL, ValueError) as exc:
        raise NotifyError(f"refused {where}: {exc}") from None
    try:
        # Connects only to the addresses just checked (no DNS rebinding), no redirects,
        # no proxy variables: the client HTTP tasks use.
        with pinned_client(pins) as client:
            response = client.post(url, content=body, headers=headers, timeout=outbound.timeout)
    except httpx.HTTPError as exc:
        detail = f"{type(exc).__name__}: {exc}" if show_url else type(exc).__name__
        raise NotifyError(f"POST {where} failed: {detail}") from None
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        detail = str(exc) if show_url else type(exc).__name__
        raise NotifyError(f"POST {where}: bad URL ({detail})") from None
    if not 200 <= response.status_code < 300:
        raise NotifyError(f"POST {where} answered {response.status_code}")


def _host_of(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, ValueError, TypeError):
        return "?"


def _email(
    config: Mapping[str, Any], delivery: DeliveryRecord, password: str | None, out: Outbound
) -> None:
    host = str(config.get("host", ""))
    port = int(config.get("port", 25))
    recipients = [str(r) for r in config.get("to", [])]
    try:
        check_url(f"http://{host}:{port}/", allow=out.allow)
    except (UnsafeURL, ValueError) as exc:
        raise NotifyError(f"refused SMTP host {host}:{port}: {exc}") from None
    email = EmailMessage()
    email["From"] = str(config.get("sender", "orchestrion@localhost"))
    email["To"] = ", ".join(recipients)
    email["Subject"] = delivery.message.splitlines()[0][:200] if delivery.message else "-"
    email["Message-ID"] = f"<orchestrion-delivery-{delivery.id}@{host}>"
    email.set_content(
        f"{delivery.message}\n\n{json.dumps(dict(delivery.payload), indent=1, default=str)}\n"
    )
    try:
        with smtplib.SMTP(host, port, timeout=out.timeout) as smtp:
            if config.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            username = config.get("username")
            if username and password:
                smtp.login(str(username), password)
            smtp.send_message(email, to_addrs=recipients)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifyError(f"SMTP {host}:{port} failed: {type(exc).__name__}: {exc}") from None
