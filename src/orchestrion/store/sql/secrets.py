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
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.named import marks, where
from orchestrion.store.sql.queries import Q

__all__ = ["SqlSecrets"]


class SqlSecrets:
    """See `orchestrion.store.secrets.SecretStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put_secret(self, sealed: SealedRow, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            existed = adv.tx.execute(
                Q.secret_exists + adv.for_update(), (sealed.namespace, sealed.name)
            ).fetchone()
            adv.tx.execute(
                Q.put_secret,
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
        conditions: list[str] = []
        params: list[Any] = []
        if namespace is not None:
            conditions.append(Q.secrets_where_namespace)
            params.append(namespace)
        if names is not None:
            if not names:
                return []
            conditions.append(Q.secrets_where_names.fill(names=marks(len(names))))
            params.extend(names)
        sql = Q.sealed_secrets.fill(where=where(*conditions))
        return [rows.SEALED(r) for r in self._db.read(sql, params)]

    def list_secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        if namespace is None:
            found = self._db.read(Q.secret_metas)
        else:
            found = self._db.read(Q.secret_metas_of, (namespace,))
        return [rows.SECRET_META(r) for r in found]

    def delete_secret(self, namespace: str, name: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            gone = adv.tx.execute(Q.delete_secret, (namespace, name)).fetchone()
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
                Q.reseal_secret,
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
