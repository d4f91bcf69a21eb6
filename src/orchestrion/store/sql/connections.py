"""`SqlConnections`: the `ConnectionStore` of both dialects, over a `Database`.

Each change is one transaction that writes the row and its event (namespace, name, kind:
never a URL, which a careless user might have given a token in, nor anything else)."""

from __future__ import annotations

import json

from orchestrion.store.records import ConnectionRecord
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.queries import Q

__all__ = ["SqlConnections"]


class SqlConnections:
    """See `orchestrion.store.connections.ConnectionStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put_connection(self, connection: ConnectionRecord, *, now: float) -> bool:
        c = connection

        def fn(adv: Advance) -> bool:
            existed = adv.tx.execute(
                Q.connection_exists + adv.for_update(), (c.namespace, c.name)
            ).fetchone()
            adv.tx.execute(
                Q.put_connection,
                (
                    c.namespace,
                    c.name,
                    c.kind,
                    c.url,
                    c.username,
                    c.password_secret,
                    json.dumps(dict(c.tls), sort_keys=True),
                    now,
                    now,
                ),
            )
            kind = "connection.updated" if existed else "connection.created"
            adv.event(
                None, None, kind, data={"namespace": c.namespace, "name": c.name, "kind": c.kind}
            )
            return existed is None

        return self._db.transact(now, fn)

    def get_connection(self, namespace: str, name: str) -> ConnectionRecord | None:
        found = self._db.read(Q.connection, (namespace, name))
        return rows.CONNECTION(found[0]) if found else None

    def list_connections(self, namespace: str | None = None) -> list[ConnectionRecord]:
        if namespace is None:
            found = self._db.read(Q.connections)
        else:
            found = self._db.read(Q.connections_of, (namespace,))
        return [rows.CONNECTION(r) for r in found]

    def delete_connection(self, namespace: str, name: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            gone = adv.tx.execute(Q.delete_connection, (namespace, name)).fetchone()
            if gone is None:
                return False
            adv.event(None, None, "connection.deleted", data={"namespace": namespace, "name": name})
            return True

        return self._db.transact(now, fn)
