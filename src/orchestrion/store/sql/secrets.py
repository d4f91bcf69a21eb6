"""`SqlSecrets`: the `SecretStore` of both dialects, over a `Database`.

The store keeps sealed values only (key id, nonce, ciphertext): sealing and opening happen
in the `App` with `orchestrion.auth.secret_box`, so no plaintext ever reaches SQL, and a
database dump holds nothing readable. Every change writes its event row (namespace and name,
never a value) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from orchestrion.store.records import SealedRow, SecretMeta
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database

__all__ = ["SqlSecrets"]

_META = "namespace, name, key_id, created_at, updated_at"
_SEALED = "namespace, name, key_id, nonce, ciphertext"


def _meta(row: Any) -> SecretMeta:
    return SecretMeta(
        namespace=row["namespace"],
        name=row["name"],
        key_id=row["key_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _sealed(row: Any) -> SealedRow:
    return SealedRow(
        namespace=row["namespace"],
        name=row["name"],
        key_id=row["key_id"],
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
    )


class SqlSecrets:
    """See `orchestrion.store.secrets.SecretStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put_secret(self, sealed: SealedRow, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            existed = adv.tx.execute(
                "SELECT 1 FROM secrets WHERE namespace = ? AND name = ?" + adv.for_update(),
                (sealed.namespace, sealed.name),
            ).fetchone()
            adv.tx.execute(
                "INSERT INTO secrets (namespace, name, key_id, nonce, ciphertext, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO"
                " UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,"
                " ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                (
                    sealed.namespace,
                    sealed.name,
                    sealed.key_id,
                    sealed.nonce,
                    sealed.ciphertext,
                    now,
                    now,
                ),
            )
            kind = "secret.updated" if existed else "secret.created"
            adv.event(None, None, kind, data={"namespace": sealed.namespace, "name": sealed.name})
            return existed is None

        return self._db.transact(now, fn)

    def sealed_secrets(
        self, namespace: str | None = None, names: Collection[str] | None = None
    ) -> list[SealedRow]:
        sql = f"SELECT {_SEALED} FROM secrets"
        where: list[str] = []
        params: list[Any] = []
        if namespace is not None:
            where.append("namespace = ?")
            params.append(namespace)
        if names is not None:
            if not names:
                return []
            where.append(f"name IN ({', '.join('?' * len(names))})")
            params.extend(names)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_sealed(r) for r in self._db.read(sql + " ORDER BY namespace, name", params)]

    def list_secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        if namespace is None:
            rows = self._db.read(f"SELECT {_META} FROM secrets ORDER BY namespace, name")
        else:
            rows = self._db.read(
                f"SELECT {_META} FROM secrets WHERE namespace = ? ORDER BY name", (namespace,)
            )
        return [_meta(r) for r in rows]

    def delete_secret(self, namespace: str, name: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            gone = adv.tx.execute(
                "DELETE FROM secrets WHERE namespace = ? AND name = ? RETURNING name",
                (namespace, name),
            ).fetchone()
            if gone is None:
                return False
            adv.event(None, None, "secret.deleted", data={"namespace": namespace, "name": name})
            return True

        return self._db.transact(now, fn)

    def reseal_secret(self, old: SealedRow, new: SealedRow, *, now: float) -> bool:
        """Replace `old` by `new` only if the row still holds `old` (a concurrent `put_secret`
        wins: its value is already sealed under a current key)."""
        if (old.namespace, old.name) != (new.namespace, new.name):
            raise ValueError("a reseal keeps the secret's namespace and name")

        def fn(adv: Advance) -> bool:
            done = adv.tx.execute(
                "UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ?"
                " WHERE namespace = ? AND name = ? AND key_id = ? AND nonce = ?"
                " RETURNING name",
                (
                    new.key_id,
                    new.nonce,
                    new.ciphertext,
                    now,
                    old.namespace,
                    old.name,
                    old.key_id,
                    old.nonce,
                ),
            ).fetchone()
            if done is None:
                return False
            adv.event(
                None,
                None,
                "secret.rotated",
                data={
                    "namespace": old.namespace,
                    "name": old.name,
                    "from_key": old.key_id,
                    "to_key": new.key_id,
                },
            )
            return True

        return self._db.transact(now, fn)
