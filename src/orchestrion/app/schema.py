"""`App.schema`: which migrations a database has, and which this version knows.

Opening an App applies the missing migrations (under a lock, once, however many processes
start together); `peek_applied` reads a database's migrations without opening it, so that
``orchestrion db upgrade`` can say what its open applied.
"""

from __future__ import annotations

from orchestrion.app.core import Facet
from orchestrion.app.settings import Settings
from orchestrion.store import migration_names, peek_schema_versions

__all__ = ["Schema", "peek_applied"]


class Schema(Facet):
    """The open database's schema version."""

    def applied(self) -> list[str]:
        """The migrations applied to this database, in order."""
        return self.store.schema_versions()

    def known(self) -> list[str]:
        """The migrations this version of Orchestrion has for the database's dialect."""
        return migration_names(self._core.settings.database_url)


def peek_applied(settings: Settings) -> list[str]:
    """The migrations applied to the configured database, read without applying any ([]
    for a database that does not exist yet or was never migrated)."""
    return peek_schema_versions(settings.database_url)
