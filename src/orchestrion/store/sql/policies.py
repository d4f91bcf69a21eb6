"""`SqlPolicies`: the `PolicyStore` of both dialects, over a `Database`.

A write reads the newest version with a lock (PostgreSQL; SQLite serialises writers) and
inserts the next one, with its event row, in one transaction. On PostgreSQL two writers
can still compute the same next version: a policy's first version has no row to lock, and
a writer that waited for another's lock is handed the row it waited for, not the version
the other just inserted (READ COMMITTED does not run ``ORDER BY ... LIMIT 1`` again). The
insert then takes nothing (``ON CONFLICT DO NOTHING``, which waits for the winner's
commit), and the writer reads the newest version again and decides again within its
transaction. So two admins writing at once make two versions in order; one that finds
the same content in force writes nothing; a deletion that finds a deletion does nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from orchestrion.errors import StoreError
from orchestrion.store.policy_records import PolicyRecord
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.jsontext import dumps
from orchestrion.store.sql.policy_rows import PQ
from orchestrion.store.sql.rows import reader

__all__ = ["SqlPolicies"]

#: How many times a write decides again after losing a version to another writer.
_RETRIES = 8


def _digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(dumps(dict(document)).encode()).hexdigest()


class SqlPolicies:
    """See `orchestrion.store.policies.PolicyStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def current_policies(self) -> list[PolicyRecord]:
        read = reader(PolicyRecord)
        return [read(r) for r in self._db.read(PQ.policies_current)]

    def policy_history(self, name: str) -> list[PolicyRecord]:
        read = reader(PolicyRecord)
        return [read(r) for r in self._db.read(PQ.policy_history, (name,))]

    def put_policy(
        self, name: str, document: Mapping[str, Any], *, by: str | None, now: float
    ) -> PolicyRecord:
        digest = _digest(document)

        def fn(adv: Advance) -> PolicyRecord:
            for _ in range(_RETRIES):
                row = adv.tx.execute(PQ.policy_latest + adv.for_update(), (name,)).fetchone()
                latest = reader(PolicyRecord)(row) if row is not None else None
                if latest is not None and not latest.deleted and latest.digest == digest:
                    return latest
                version = latest.version + 1 if latest is not None else 1
                values = (name, version, dumps(dict(document)), digest, 0, now, by)
                if adv.tx.execute(PQ.insert_policy, values).fetchone() is None:
                    continue  # another writer took this version: decide again
                adv.event(None, None, "policy.put", data={"policy": name, "version": version})
                return PolicyRecord(
                    name=name, version=version, document=dict(document), digest=digest,
                    deleted=False, created_at=now, created_by=by,
                )  # fmt: skip
            raise StoreError(f"policy {name!r}: other writers kept taking its next version")

        return self._db.transact(now, fn)

    def delete_policy(self, name: str, *, by: str | None, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            for _ in range(_RETRIES):
                row = adv.tx.execute(PQ.policy_latest + adv.for_update(), (name,)).fetchone()
                latest = None if row is None else reader(PolicyRecord)(row)
                if latest is None or latest.deleted:
                    return False
                version = latest.version + 1
                values = (
                    name, version, dumps(dict(latest.document)), latest.digest, 1, now, by,
                )  # fmt: skip
                if adv.tx.execute(PQ.insert_policy, values).fetchone() is None:
                    continue  # another writer took this version: decide again
                adv.event(None, None, "policy.deleted", data={"policy": name, "version": version})
                return True
            raise StoreError(f"policy {name!r}: other writers kept taking its next version")

        return self._db.transact(now, fn)
