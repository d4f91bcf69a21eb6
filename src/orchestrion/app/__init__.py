"""`App`: the one facade that the edges (CLI, API, UI) call.

App owns the settings, the clock, the actor, the code registry of loaded workflow files and
the store (`Core`); what it does is grouped in sub-facades, one attribute each:

- `workflows`: load, register, read and pause workflows;
- `runs`: start, control, recover and read runs (history, logs);
- `triggers`: events, schedules, backfills;
- `secrets`: seal, list, rotate and (for workers) open secrets;
- `connections`: named broker connections (and, for workers and consumers, opened ones);
- `templates`: template libraries held by the server, for ``uses:`` in YAML it loads;
- `notifications`: notification channels, rules and the deliveries of the outbox;
- `reads`: composite reads for summary pages, and the workers;
- `queues`: per-queue concurrency limits;
- `policies`: admission policies (versioned) and their checks;
- `waits`: approvals, signals and the other steps that wait without a worker;
- `retention`: retention policies, keep marks on runs, pruning;
- `assets`: data assets' catalogue, history, lineage, materialize;
- `projects`: declarative projects (plan, apply) and Git sync sources;
- `accounts`: users, tokens, sessions, the audit log;
- `schema`: the database's migrations;
- `runtime`: the builder of workers, schedulers and the housekeeping loop.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from orchestrion.app.connections import Connections
from orchestrion.app.core import Actor, Core
from orchestrion.app.queues import Queues
from orchestrion.app.reads import Reads
from orchestrion.app.runs import Runs
from orchestrion.app.runtime import Runtime
from orchestrion.app.schema import Schema
from orchestrion.app.secrets import Secrets
from orchestrion.app.settings import Settings
from orchestrion.app.triggers import Triggers
from orchestrion.app.workflows import Workflows
from orchestrion.clock import Clock
from orchestrion.spec.loading import load_workflows, spec_from_data

if TYPE_CHECKING:
    from orchestrion.app.assets import Assets
    from orchestrion.app.cache import Cache
    from orchestrion.app.notifications import Notifications
    from orchestrion.app.outputs import Outputs
    from orchestrion.app.policies import Policies
    from orchestrion.app.projects import Projects
    from orchestrion.app.retention import Retention
    from orchestrion.app.templates import Templates
    from orchestrion.app.waits import Waits

__all__ = ["Actor", "App", "Settings", "load_workflows", "spec_from_data"]


class App(Core):
    """Open it (``with App(settings) as app``), then call its sub-facades."""

    def __init__(
        self,
        settings: Settings | None = None,
        clock: Clock | None = None,
        *,
        actor: Actor | None = None,
    ) -> None:
        super().__init__(settings, clock, actor=actor)
        self.workflows = Workflows(self)
        self.runs = Runs(self)
        self.triggers = Triggers(self)
        self.secrets = Secrets(self)
        self.connections = Connections(self)
        self.reads = Reads(self)
        self.queues = Queues(self)
        self.schema = Schema(self)
        self.runtime = Runtime(
            self, secrets=self.secrets.resolve_secrets, connections=self.connections.endpoint
        )

    # Made on first use: a run, a worker or a CLI command that touches neither does not
    # import them (`orchestrion run` is measured from process start, issue 20).

    @cached_property
    def notifications(self) -> Notifications:
        """Notification channels, rules and the deliveries of the outbox."""
        from orchestrion.app.notifications import Notifications

        return Notifications(self)

    @cached_property
    def projects(self) -> Projects:
        """Declarative projects (plan, apply, history) and Git sync sources."""
        from orchestrion.app.projects import Projects

        return Projects(self)

    @cached_property
    def outputs(self) -> Outputs:
        """Artifacts and results kept in the object store."""
        from orchestrion.app.outputs import Outputs

        return Outputs(self)

    @cached_property
    def cache(self) -> Cache:
        """The task result cache: list and clear entries."""
        from orchestrion.app.cache import Cache

        return Cache(self)

    @cached_property
    def assets(self) -> Assets:
        """Data assets: catalogue, history, lineage, materialize."""
        from orchestrion.app.assets import Assets

        return Assets(self)

    @cached_property
    def waits(self) -> Waits:
        """Approvals, signals and the steps that wait without a worker."""
        from orchestrion.app.waits import Waits

        return Waits(self)

    @cached_property
    def templates(self) -> Templates:
        """Template libraries held by the server."""
        from orchestrion.app.templates import Templates

        return Templates(self)

    @cached_property
    def retention(self) -> Retention:
        """Retention policies, keep marks on runs, pruning."""
        from orchestrion.app.retention import Retention

        return Retention(self)

    @cached_property
    def policies(self) -> Policies:
        """Admission policies: versions, and the checks of deploys and triggers."""
        from orchestrion.app.policies import Policies

        return Policies(self)
