"""`ConnectionStore`: named broker connections per namespace (issue 14).

A connection row holds where a broker is and how to reach it, never a credential: its
password or token is a secret of the same namespace, named by `password_secret`, sealed in
the `SecretStore` and opened only by the process that connects.
"""

from __future__ import annotations

from typing import Protocol

from orchestrion.store.records import ConnectionRecord

__all__ = ["ConnectionStore"]


class ConnectionStore(Protocol):
    """Every change writes its event row (namespace, name, kind) in the same transaction."""

    def put_connection(self, connection: ConnectionRecord, *, now: float) -> bool:
        """Create or replace a connection; True if it was created. Writes an event."""
        ...

    def get_connection(self, namespace: str, name: str) -> ConnectionRecord | None:
        """One connection, or None."""
        ...

    def list_connections(self, namespace: str | None = None) -> list[ConnectionRecord]:
        """The connections (of one namespace), by namespace and name."""
        ...

    def delete_connection(self, namespace: str, name: str, *, now: float) -> bool:
        """Delete a connection; False if there was none. Writes an event."""
        ...
