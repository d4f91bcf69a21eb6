"""`App.notifications`: channels, rules and the outbox's deliveries (issue 16).

A channel says where messages go and names the secret that holds what must stay secret
(a webhook's HMAC key, a Slack URL, an SMTP password); a rule says which workflows of the
namespace, on which events, go to which channel, with an optional message template. Writes
are checked here (a bad kind, URL, address, event or template is a `ParameterError` naming
it) and audited; reads hold no secret. Sending is the scheduler's ``notifications`` duty;
`test_channel` sends one message at once, for an operator checking a channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrion.app.core import Facet
from orchestrion.app.secrets import key_ring_of, resolve
from orchestrion.errors import ExpressionError, NotFound, ParameterError
from orchestrion.spec.expressions.compiler import compile_expression
from orchestrion.spec.expressions.templates import TEMPLATE_RE
from orchestrion.spec.rules import SECRET_NAME_PATTERN, check_ref
from orchestrion.store.notification_records import (
    CHANNEL_KINDS,
    DELIVERY_STATES,
    NOTIFY_EVENTS,
    ChannelRecord,
    DeliveryRecord,
    RuleRecord,
)

__all__ = ["Notifications"]

_SMTP_KEYS = frozenset({"host", "port", "username", "sender", "to", "starttls"})
_ADDRESS = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+$")


class Notifications(Facet):
    """Notification channels and rules by ``namespace/name``; deliveries to read."""

    # ------------------------------------------------------------------ channels

    def put_channel(
        self,
        namespace: str,
        name: str,
        *,
        kind: str,
        config: Mapping[str, Any] | None = None,
        secret: str | None = None,
    ) -> bool:
        """Create or replace a channel; True if it was created."""
        with self._core.audited("notification.channel.put", f"channel {namespace}/{name}"):
            check_ref(namespace, name, "notification")
            record = ChannelRecord(
                namespace=namespace,
                name=name,
                kind=kind,
                config=check_channel(kind, dict(config or {}), secret),
                secret=secret,
            )
            return self.store.notifications.put_channel(record, now=self.clock.now())

    def list_channels(self, namespace: str | None = None) -> list[ChannelRecord]:
        """The channels (of one namespace), by namespace and name."""
        return self.store.notifications.list_channels(namespace)

    def get_channel(self, namespace: str, name: str) -> ChannelRecord:
        """One channel, or `NotFound`."""
        found = self.store.notifications.get_channel(namespace, name)
        if found is None:
            raise NotFound(f"notification channel {namespace}/{name} does not exist")
        return found

    def delete_channel(self, namespace: str, name: str) -> None:
        """Delete a channel, or `NotFound`; its rules stay (and their deliveries fail)."""
        with self._core.audited("notification.channel.delete", f"channel {namespace}/{name}"):
            check_ref(namespace, name, "notification")
            now = self.clock.now()
            if not self.store.notifications.delete_channel(namespace, name, now=now):
                raise NotFound(f"notification channel {namespace}/{name} does not exist")

    def test_channel(self, namespace: str, name: str, text: str = "") -> None:
        """Send one message through a channel now (not through the outbox); `NotifyError`
        says why it failed."""
        from orchestrion.triggers.notify_send import Outbound, send

        with self._core.audited("notification.channel.test", f"channel {namespace}/{name}"):
            channel = self.get_channel(namespace, name)
            secret = None
            if channel.secret is not None:
                ring = key_ring_of(self._core.settings)
                opened = resolve(self.store.secrets, ring, namespace, [channel.secret])
                secret = opened[channel.secret].reveal()
            now = self.clock.now()
            message = text or f"[orchestrion] test message for channel {namespace}/{name}"
            probe = DeliveryRecord(
                id=0, dedupe_key="test", namespace=namespace, rule="test", channel=name,
                event="test", workflow=None, run_id=None, message=message,
                payload={"event": "test", "namespace": namespace}, state="pending",
                attempts=0, next_attempt_at=now, last_error=None, created_at=now, sent_at=None,
            )  # fmt: skip
            outbound = Outbound(allow=self._core.settings.http_allow)
            send(channel, probe, secret, now=now, outbound=outbound)

    # ------------------------------------------------------------------ rules

    def put_rule(
        self,
        namespace: str,
        name: str,
        *,
        channel: str,
        events: Sequence[str],
        workflows: str = "*",
        tags: Sequence[str] = (),
        template: str | None = None,
    ) -> bool:
        """Create or replace a rule; True if it was created. Its channel must exist."""
        with self._core.audited("notification.rule.put", f"rule {namespace}/{name}"):
            check_ref(namespace, name, "notification")
            self.get_channel(namespace, channel)
            record = RuleRecord(
                namespace=namespace,
                name=name,
                channel=channel,
                workflows=_check_glob(workflows),
                tags=tuple(_check_tags(tags)),
                events=tuple(_check_events(events)),
                template=_check_template(template),
            )
            return self.store.notifications.put_rule(record, now=self.clock.now())

    def list_rules(self, namespace: str | None = None) -> list[RuleRecord]:
        """The rules (of one namespace), by namespace and name."""
        return self.store.notifications.list_rules(namespace)

    def delete_rule(self, namespace: str, name: str) -> None:
        """Delete a rule, or `NotFound`."""
        with self._core.audited("notification.rule.delete", f"rule {namespace}/{name}"):
            check_ref(namespace, name, "notification")
            if not self.store.notifications.delete_rule(namespace, name, now=self.clock.now()):
                raise NotFound(f"notification rule {namespace}/{name} does not exist")

    # ------------------------------------------------------------------ deliveries

    def list_deliveries(
        self, namespace: str | None = None, *, state: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """The newest deliveries (of a namespace, in a state), with how sending went."""
        if state is not None and state not in DELIVERY_STATES:
            raise ParameterError(f"unknown state {state!r}: one of {', '.join(DELIVERY_STATES)}")
        if not 1 <= limit <= 1000:
            raise ParameterError("limit is 1 to 1000")
        return self.store.notifications.list_deliveries(namespace, state=state, limit=limit)


def check_channel(kind: str, config: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """A channel's config, checked for its kind; `ParameterError` names what is wrong."""
    if kind not in CHANNEL_KINDS:
        raise ParameterError(f"unknown channel kind {kind!r}: one of {', '.join(CHANNEL_KINDS)}")
    if secret is not None and not re.fullmatch(SECRET_NAME_PATTERN, secret):
        raise ParameterError(f"bad secret name {secret!r}: a secret of the channel's namespace")
    if kind == "webhook":
        _check_webhook(config)
    elif kind == "slack":
        _only(config, set(), kind)
        if secret is None:
            raise ParameterError("a slack channel needs --secret: the secret holding its URL")
    else:
        _check_smtp(config)
    return config


def _check_webhook(config: dict[str, Any]) -> None:
    _only(config, {"url"}, "webhook")
    url = config.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url) or len(url) > 2000:
        raise ParameterError("a webhook channel needs url: an http(s) URL")
    if re.match(r"^https?://[^/]*@", url):
        raise ParameterError("a webhook URL holds no credentials: put a key in --secret")


def _check_smtp(config: dict[str, Any]) -> None:
    _only(config, set(_SMTP_KEYS), "smtp")
    host, port = config.get("host"), config.get("port", 25)
    if not isinstance(host, str) or not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]{1,255}", host):
        raise ParameterError("an smtp channel needs host: a host name or address")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ParameterError("port is a number from 1 to 65535")
    to = config.get("to")
    if isinstance(to, str):
        config["to"] = to = [a.strip() for a in to.split(",") if a.strip()]
    if not isinstance(to, list) or not to or len(to) > 50:
        raise ParameterError("an smtp channel needs to: 1 to 50 addresses")
    for address in [*to, config.get("sender", "orchestrion@localhost")]:
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise ParameterError(f"bad email address {address!r}")
    if not isinstance(config.get("starttls", False), bool):
        raise ParameterError("starttls is true or false")


def _only(config: Mapping[str, Any], allowed: set[str], kind: str) -> None:
    extra = sorted(set(config) - allowed)
    if extra:
        known = ", ".join(sorted(allowed)) or "none"
        raise ParameterError(f"unknown {kind} channel option {extra[0]!r} (options: {known})")


def _check_glob(pattern: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.*?\[\]!-]{1,200}", pattern):
        raise ParameterError(f"bad workflow pattern {pattern!r}: a glob over workflow names")
    return pattern


def _check_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str) or len(tags) > 20 or any(not 0 < len(t) <= 200 for t in tags):
        raise ParameterError("tags: at most 20, each 1 to 200 characters")
    return list(tags)


def _check_events(events: Sequence[str]) -> list[str]:
    if isinstance(events, str) or not events:
        raise ParameterError(f"a rule needs events: some of {', '.join(NOTIFY_EVENTS)}")
    for event in events:
        if event not in NOTIFY_EVENTS:
            raise ParameterError(f"unknown event {event!r}: one of {', '.join(NOTIFY_EVENTS)}")
    return sorted(set(events), key=NOTIFY_EVENTS.index)


def _check_template(template: str | None) -> str | None:
    if template is None:
        return None
    if len(template) > 4000:
        raise ParameterError("a template is at most 4000 characters")
    try:
        for match in TEMPLATE_RE.finditer(template):
            compile_expression(match.group(1))
    except ExpressionError as exc:
        raise ParameterError(f"bad template: {exc}") from None
    return template
