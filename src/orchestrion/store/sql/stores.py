"""`stores_of`: the roles of one SQL database, bundled as `orchestrion.store.stores.Stores`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrion.store.sql.database import Database
from orchestrion.store.sql.notifier import SqlNotifier
from orchestrion.store.sql.reads import SqlReads
from orchestrion.store.sql.runs import SqlRuns
from orchestrion.store.sql.triggers import SqlTriggers
from orchestrion.store.sql.workflows import SqlWorkflows
from orchestrion.store.stores import Stores

if TYPE_CHECKING:
    from orchestrion.store.sql.accounts import SqlAccounts
    from orchestrion.store.sql.artifacts import SqlArtifacts
    from orchestrion.store.sql.assets import SqlAssets
    from orchestrion.store.sql.cache import SqlCache
    from orchestrion.store.sql.connections import SqlConnections
    from orchestrion.store.sql.notifications import SqlNotifications
    from orchestrion.store.sql.policies import SqlPolicies
    from orchestrion.store.sql.projects import SqlProjects
    from orchestrion.store.sql.retention import SqlRetention
    from orchestrion.store.sql.secrets import SqlSecrets
    from orchestrion.store.sql.templates import SqlTemplates
    from orchestrion.store.sql.waits import SqlWaits

__all__ = ["stores_of"]


def stores_of(
    db: Database,
    *,
    runs: SqlRuns,
    reads: SqlReads | None = None,
    triggers: SqlTriggers | None = None,
    notifications: SqlNotifications | None = None,
) -> Stores:
    """The roles of `db`: the dialect's own `runs` (and `reads`, `triggers`, `notifications`
    where it runs some verbs differently), the shared SQL classes for the rest."""
    return Stores(
        url=db.url,
        backend=db,
        workflows=SqlWorkflows(db),
        runs=runs,
        triggers=triggers or SqlTriggers(db),
        reads=reads or SqlReads(db),
        notifier=SqlNotifier(db),
        later=_SqlLaterRoles(db, notifications),
    )


class _SqlLaterRoles:
    """The shared SQL classes of the roles `Stores` makes on first use; each imports its
    module only then."""

    def __init__(self, db: Database, notifications: SqlNotifications | None) -> None:
        self._db = db
        self._notifications = notifications

    def accounts(self) -> SqlAccounts:
        from orchestrion.store.sql.accounts import SqlAccounts

        return SqlAccounts(self._db)

    def secrets(self) -> SqlSecrets:
        from orchestrion.store.sql.secrets import SqlSecrets

        return SqlSecrets(self._db)

    def connections(self) -> SqlConnections:
        from orchestrion.store.sql.connections import SqlConnections

        return SqlConnections(self._db)

    def notifications(self) -> SqlNotifications:
        if self._notifications is not None:
            return self._notifications
        from orchestrion.store.sql.notifications import SqlNotifications

        return SqlNotifications(self._db)

    def retention(self) -> SqlRetention:
        from orchestrion.store.sql.retention import SqlRetention

        return SqlRetention(self._db)

    def artifacts(self) -> SqlArtifacts:
        from orchestrion.store.sql.artifacts import SqlArtifacts

        return SqlArtifacts(self._db)

    def cache(self) -> SqlCache:
        from orchestrion.store.sql.cache import SqlCache

        return SqlCache(self._db)

    def waits(self) -> SqlWaits:
        from orchestrion.store.sql.waits import SqlWaits

        return SqlWaits(self._db)

    def assets(self) -> SqlAssets:
        from orchestrion.store.sql.assets import SqlAssets

        return SqlAssets(self._db)

    def projects(self) -> SqlProjects:
        from orchestrion.store.sql.projects import SqlProjects

        return SqlProjects(self._db)

    def templates(self) -> SqlTemplates:
        from orchestrion.store.sql.templates import SqlTemplates

        return SqlTemplates(self._db)

    def policies(self) -> SqlPolicies:
        from orchestrion.store.sql.policies import SqlPolicies

        return SqlPolicies(self._db)
