"""`Stores`: one open database, as the role objects that share it.

A component takes only the roles it uses (the worker: runs, workflows, notifier; the
scheduler: triggers, workflows, runs; `Accounts`: accounts), so that another backend, or
an in-memory fake in a user's tests, implements just those. `App` holds the bundle.

An open runs every hot path through the roles a worker and a run use (workflows, runs,
triggers, reads, notifier); the others are made on first use, so a process that never
touches accounts, caches or assets does not import their SQL (start-up, issue 20).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from orchestrion.store.notifier import Notifier
from orchestrion.store.reads import ReadStore
from orchestrion.store.runs import RunStore
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.workflows import WorkflowStore

if TYPE_CHECKING:
    from orchestrion.store.accounts import AccountStore
    from orchestrion.store.artifacts import ArtifactStore
    from orchestrion.store.assets import AssetStore
    from orchestrion.store.cache import CacheStore
    from orchestrion.store.connections import ConnectionStore
    from orchestrion.store.notifications import NotificationStore
    from orchestrion.store.policies import PolicyStore
    from orchestrion.store.projects import ProjectStore
    from orchestrion.store.retention import RetentionStore
    from orchestrion.store.secrets import SecretStore
    from orchestrion.store.templates import TemplateStore
    from orchestrion.store.waits import WaitStore

__all__ = ["Backend", "LaterRoles", "Stores"]


class Backend(Protocol):
    """What the roles of one database share: its connections (closed once, for all roles)
    and its schema."""

    def close(self) -> None:
        """Release connections. No role can be used afterwards."""
        ...

    def schema_versions(self) -> list[str]:
        """The migrations applied to this database, in order."""
        ...


class LaterRoles(Protocol):
    """Makes the roles `Stores` builds on first use. Two threads may each make one at
    once (`cached_property` does not lock), so a role holds no state of its own."""

    def accounts(self) -> AccountStore:
        """Make the `accounts` role."""
        ...

    def secrets(self) -> SecretStore:
        """Make the `secrets` role."""
        ...

    def connections(self) -> ConnectionStore:
        """Make the `connections` role."""
        ...

    def notifications(self) -> NotificationStore:
        """Make the `notifications` role."""
        ...

    def retention(self) -> RetentionStore:
        """Make the `retention` role."""
        ...

    def artifacts(self) -> ArtifactStore:
        """Make the `artifacts` role."""
        ...

    def cache(self) -> CacheStore:
        """Make the `cache` role."""
        ...

    def waits(self) -> WaitStore:
        """Make the `waits` role."""
        ...

    def assets(self) -> AssetStore:
        """Make the `assets` role."""
        ...

    def projects(self) -> ProjectStore:
        """Make the `projects` role."""
        ...

    def templates(self) -> TemplateStore:
        """Make the `templates` role."""
        ...

    def policies(self) -> PolicyStore:
        """Make the `policies` role."""
        ...


class Stores:
    """The roles of one database (`orchestrion.store.open_store` builds them)."""

    def __init__(
        self,
        *,
        url: str,
        backend: Backend,
        workflows: WorkflowStore,
        runs: RunStore,
        triggers: TriggerStore,
        reads: ReadStore,
        notifier: Notifier,
        later: LaterRoles,
    ) -> None:
        self.url = url
        self.backend = backend
        self.workflows = workflows
        self.runs = runs
        self.triggers = triggers
        self.reads = reads
        self.notifier = notifier
        self._later = later

    @cached_property
    def accounts(self) -> AccountStore:
        """Users, tokens, role bindings."""
        return self._later.accounts()

    @cached_property
    def secrets(self) -> SecretStore:
        """Encrypted secrets."""
        return self._later.secrets()

    @cached_property
    def connections(self) -> ConnectionStore:
        """Named connections to outside systems."""
        return self._later.connections()

    @cached_property
    def notifications(self) -> NotificationStore:
        """Notification channels, rules and the outbox."""
        return self._later.notifications()

    @cached_property
    def retention(self) -> RetentionStore:
        """Retention policies and pruning."""
        return self._later.retention()

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """Artifacts and stored result objects of attempts."""
        return self._later.artifacts()

    @cached_property
    def cache(self) -> CacheStore:
        """The task result cache."""
        return self._later.cache()

    @cached_property
    def waits(self) -> WaitStore:
        """Steps waiting without a worker: approvals, signals, events, sensors."""
        return self._later.waits()

    @cached_property
    def assets(self) -> AssetStore:
        """Data assets: events, consumption, staleness."""
        return self._later.assets()

    @cached_property
    def projects(self) -> ProjectStore:
        """Declarative projects: applies, commits of versions, Git sync sources."""
        return self._later.projects()

    @cached_property
    def templates(self) -> TemplateStore:
        """Template libraries held in the database."""
        return self._later.templates()

    @cached_property
    def policies(self) -> PolicyStore:
        """Admission policies' versions."""
        return self._later.policies()

    def close(self) -> None:
        """Release connections. The roles cannot be used afterwards."""
        self.backend.close()

    def schema_versions(self) -> list[str]:
        """The migrations applied to this database, in order (every open applies the
        missing ones, under a lock, so several processes starting at once are safe)."""
        return self.backend.schema_versions()
