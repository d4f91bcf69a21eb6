"""`SqlTemplates`: the `TemplateStore` of both dialects. A push is one transaction: the
primary key decides between two pushes of one version at once (the loser then compares
digests), and a new version writes its event in the same transaction."""

from __future__ import annotations

from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.queries import Q
from orchestrion.store.template_records import StoredLibrary
from orchestrion.store.templates import PushOutcome

__all__ = ["SqlTemplates"]


class SqlTemplates:
    """See `orchestrion.store.templates.TemplateStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def push_library(self, library: StoredLibrary, *, now: float) -> PushOutcome:
        lib = library

        def fn(adv: Advance) -> PushOutcome:
            row = (lib.name, lib.version, lib.digest, lib.description, lib.body)
            took = adv.tx.execute(Q.push_library, (*row, lib.pushed_by, now)).fetchone()
            if took is None:
                found = adv.tx.execute(Q.library_digest, (lib.name, lib.version)).fetchone()
                return "unchanged" if found["digest"] == lib.digest else "conflict"
            data = {"library": lib.name, "version": lib.version, "digest": lib.digest}
            adv.event(None, None, "template.pushed", data=data)
            return "created"

        return self._db.transact(now, fn)

    def get_library(self, name: str, version: int) -> StoredLibrary | None:
        found = self._db.read(Q.library, (name, version))
        return rows.LIBRARY(found[0]) if found else None

    def list_libraries(self) -> list[StoredLibrary]:
        return [rows.LIBRARY(r) for r in self._db.read(Q.libraries)]
