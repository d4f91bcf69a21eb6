"""`Stores`: one open database, as the role objects that share it.

A component takes only the roles it uses (the worker: runs, workflows, notifier; the
scheduler: triggers, workflows, runs; `Accounts`: accounts), so that another backend, or
an in-memory fake in a user's tests, implements just those. `App` holds the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrion.store.accounts import AccountStore
from orchestrion.store.artifacts import ArtifactStore
from orchestrion.store.assets import AssetStore
from orchestrion.store.cache import CacheStore
from orchestrion.store.connections import ConnectionStore
from orchestrion.store.notifications import NotificationStore
from orchestrion.store.notifier import Notifier
from orchestrion.store.policies import PolicyStore
from orchestrion.store.reads import ReadStore
from orchestrion.store.retention import RetentionStore
from orchestrion.store.runs import RunStore
from orchestrion.store.secrets import SecretStore
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.waits import WaitStore
from orchestrion.store.workflows import WorkflowStore

__all__ = ["Backend", "Stores"]


class Backend(Protocol):
    """What the roles of one database share: its connections (closed once, for all roles)
    and its schema."""

    def close(self) -> None:
        """Release connections. No role can be used afterwards."""
        ...

    def schema_versions(self) -> list[str]:
        """The migrations applied to this database, in order."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Stores:
    """The roles of one database (`orchestrion.store.open_store` builds them)."""

    url: str
    workflows: WorkflowStore
    runs: RunStore
    triggers: TriggerStore
    accounts: AccountStore
    secrets: SecretStore
    connections: ConnectionStore
    notifications: NotificationStore
    reads: ReadStore
    notifier: Notifier
    retention: RetentionStore
    artifacts: ArtifactStore
    cache: CacheStore
    #: Steps waiting without a worker: approvals, signals, events, sensors.
    waits: WaitStore
    backend: Backend
    assets: AssetStore
    #: Admission policies' versions.
    policies: PolicyStore

    def close(self) -> None:
        """Release connections. The roles cannot be used afterwards."""
        self.backend.close()

    def schema_versions(self) -> list[str]:
        """The migrations applied to this database, in order (every open applies the
        missing ones, under a lock, so several processes starting at once are safe)."""
        return self.backend.schema_versions()
