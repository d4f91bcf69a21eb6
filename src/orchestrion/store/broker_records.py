"""The records of broker connections and their consumers (issue 14): what the store keeps
of a named connection and what a running consumer reports. Pure, like
`orchestrion.store.records`, which re-exports them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrion.store.record import Record, field

__all__ = ["ConnectionRecord", "ConsumerRecord"]


# ------------------------------------------------------------ broker connections


class ConnectionRecord(Record, frozen=True, kw_only=True):
    """A named broker connection of a namespace. It holds no credential: `password_secret`
    names a secret of the same namespace, opened only where the connection is made."""

    namespace: str
    name: str
    #: ``redis``, ``rabbitmq``, ``nats`` or ``mqtt``.
    kind: str
    #: Where the broker is, without a password (``amqp://host:5672/vhost``).
    url: str
    username: str | None = None
    #: The secret (same namespace) holding the password or token.
    password_secret: str | None = None
    #: TLS options: ``enabled``, ``ca_file``, ``cert_file``, ``key_file``, ``insecure``.
    tls: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


class ConsumerRecord(Record, frozen=True, kw_only=True):
    """A broker trigger's consumer as its scheduler last reported it, with what the inbox
    says of its messages."""

    key: str
    workflow: str
    kind: str
    connection: str
    destination: str
    #: The scheduler running it, and the epoch of its lease.
    holder: str
    epoch: int
    #: ``running``, ``held`` (at its in-flight limit), ``error`` or ``stopped``.
    state: str
    #: Messages waiting at the broker, where the broker says (None: unknown).
    lag: int | None = None
    last_message_at: float | None = None
    error: str | None = None
    updated_at: float = 0.0
    #: Messages recorded (each started a run or was dead-lettered).
    received: int = 0
    dead_lettered: int = 0
    #: Why the latest dead-lettered message was.
    last_dead_letter: str | None = None
