"""`App.connections`: named connections per namespace, to brokers (issue 14) and to
databases for ``sql`` tasks (issue 15).

A connection says where a broker is (kind, URL, TLS options) and names the secret that
holds its password; workflow files name connections, never credentials. Writes are
checked here (a URL with a password is refused: it belongs in a secret) and audited;
reads never contain a credential (the connection has none). `endpoint` opens the secret
for the one process about to connect: a worker's publish task or a trigger's consumer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orchestrion.app.core import Facet
from orchestrion.app.secrets import key_ring_of, resolve
from orchestrion.brokers.endpoint import Endpoint, check_tls, check_url
from orchestrion.errors import NotFound, ParameterError
from orchestrion.spec.actions import CONNECTION_KINDS
from orchestrion.spec.rules import SECRET_NAME_PATTERN, check_ref
from orchestrion.store.records import ConnectionRecord

__all__ = ["Connections"]


class Connections(Facet):
    """Broker and database connections by ``namespace/name``."""

    def put_connection(
        self,
        namespace: str,
        name: str,
        *,
        kind: str,
        url: str,
        username: str | None = None,
        password_secret: str | None = None,
        tls: Mapping[str, Any] | None = None,
    ) -> bool:
        """Create or replace ``namespace/name``; True if it was created. `ParameterError`
        names a bad kind, URL, secret name or TLS option."""
        with self._core.audited("connection.put", f"connection {namespace}/{name}"):
            record = checked(namespace, name, kind, url, username, password_secret, dict(tls or {}))
            return self.store.connections.put_connection(record, now=self.clock.now())

    def list_connections(self, namespace: str | None = None) -> list[ConnectionRecord]:
        """The connections (of one namespace), by namespace and name."""
        return self.store.connections.list_connections(namespace)

    def get_connection(self, namespace: str, name: str) -> ConnectionRecord:
        """One connection, or `NotFound`."""
        found = self.store.connections.get_connection(namespace, name)
        if found is None:
            raise NotFound(
                f"connection {namespace}/{name} does not exist (create it with"
                f" `orchestrion connections create {namespace}/{name} --kind ... --url ...`)"
            )
        return found

    def delete_connection(self, namespace: str, name: str) -> None:
        """Delete ``namespace/name``, or `NotFound`."""
        with self._core.audited("connection.delete", f"connection {namespace}/{name}"):
            check_ref(namespace, name, "connection")
            if not self.store.connections.delete_connection(namespace, name, now=self.clock.now()):
                raise NotFound(f"connection {namespace}/{name} does not exist")

    def endpoint(self, namespace: str, name: str) -> Endpoint:
        """The connection opened for connecting: its password secret resolved. `NotFound`
        names a missing connection or secret."""
        record = self.get_connection(namespace, name)
        password = None
        if record.password_secret is not None:
            ring = key_ring_of(self._core.settings)
            opened = resolve(self.store.secrets, ring, namespace, [record.password_secret])
            password = opened[record.password_secret]
        return Endpoint(
            namespace=record.namespace,
            name=record.name,
            kind=record.kind,
            url=record.url,
            username=record.username,
            password=password,
            tls=record.tls,
        )


def checked(
    namespace: str,
    name: str,
    kind: str,
    url: str,
    username: str | None,
    password_secret: str | None,
    tls: dict[str, Any],
) -> ConnectionRecord:
    """The record of a connection, or `ParameterError` naming what is wrong."""
    check_ref(namespace, name, "connection")
    if kind not in CONNECTION_KINDS:
        raise ParameterError(
            f"unknown connection kind {kind!r}: one of {', '.join(CONNECTION_KINDS)}"
        )
    if len(url) > 2000:
        raise ParameterError("the URL is over 2000 characters")
    try:
        check_url(kind, url)
        check_tls(tls)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    if password_secret is not None and not re.fullmatch(SECRET_NAME_PATTERN, password_secret):
        raise ParameterError(
            f"bad secret name {password_secret!r}: a secret of namespace {namespace!r},"
            " by its name only (letters, digits, '_', '.' and '-')"
        )
    if username is not None and not 0 < len(username) <= 200:
        raise ParameterError("a username is 1 to 200 characters")
    return ConnectionRecord(
        namespace=namespace,
        name=name,
        kind=kind,
        url=url,
        username=username,
        password_secret=password_secret,
        tls=tls,
    )
