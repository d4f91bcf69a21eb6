"""`stores_of`: the roles of one SQL database, bundled as `orchestrion.store.Stores`."""

from __future__ import annotations

from orchestrion.store.sql.accounts import SqlAccounts
from orchestrion.store.sql.artifacts import SqlArtifacts
from orchestrion.store.sql.assets import SqlAssets
from orchestrion.store.sql.cache import SqlCache
from orchestrion.store.sql.connections import SqlConnections
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.notifications import SqlNotifications
from orchestrion.store.sql.notifier import SqlNotifier
from orchestrion.store.sql.policies import SqlPolicies
from orchestrion.store.sql.reads import SqlReads
from orchestrion.store.sql.retention import SqlRetention
from orchestrion.store.sql.runs import SqlRuns
from orchestrion.store.sql.secrets import SqlSecrets
from orchestrion.store.sql.triggers import SqlTriggers
from orchestrion.store.sql.waits import SqlWaits
from orchestrion.store.sql.workflows import SqlWorkflows
from orchestrion.store.stores import Stores

__all__ = ["stores_of"]


def stores_of(
    db: Database,
    *,
    runs: SqlRuns,
    reads: SqlReads | None = None,
    triggers: SqlTriggers | None = None,
    notifications: SqlNotifications | None = None,
) -> Stores:
    """The roles of `db`: the dialect's own `runs` (and `reads`, `triggers` where it runs
    some verbs differently), the shared SQL classes for the rest."""
    return Stores(
        url=db.url,
        workflows=SqlWorkflows(db),
        runs=runs,
        triggers=triggers or SqlTriggers(db),
        accounts=SqlAccounts(db),
        secrets=SqlSecrets(db),
        connections=SqlConnections(db),
        notifications=notifications or SqlNotifications(db),
        reads=reads or SqlReads(db),
        notifier=SqlNotifier(db),
        retention=SqlRetention(db),
        artifacts=SqlArtifacts(db),
        cache=SqlCache(db),
        waits=SqlWaits(db),
        backend=db,
        assets=SqlAssets(db),
        policies=SqlPolicies(db),
    )
