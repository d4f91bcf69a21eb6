"""`App.projects`: declarative projects (plan, apply, history) and Git sync sources.

See `orchestrion.app.projects.apply` for how an apply leaves nothing half-applied and
`orchestrion.app.projects.kinds` for the resource kinds.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from orchestrion.app.core import Facet
from orchestrion.app.projects.apply import ApplyFailed, apply_plan, make_plan
from orchestrion.app.projects.diff import Change, Plan, render
from orchestrion.app.projects.kind import Kind
from orchestrion.app.projects.kinds import CHECKS, KINDS
from orchestrion.errors import IllegalTransition, NotFound, ParameterError
from orchestrion.spec.project import LoadedProject
from orchestrion.spec.rules import NAME_PATTERN
from orchestrion.store.project_records import ProjectApply, SyncResult, SyncSource

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal

__all__ = ["ApplyFailed", "ApplyResult", "Change", "Plan", "Projects", "render"]


#: How long an apply may hold its namespace before another may take it over (a process
#: that died mid-apply).
_APPLY_TTL = 600.0


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What an apply did: its plan (the changes made), and the history row's id."""

    plan: Plan
    outcome: str
    apply_id: int


class Projects(Facet):
    """Plan and apply projects; the apply history; Git sync sources and their results."""

    def plan(
        self,
        project: LoadedProject,
        *,
        kinds: Sequence[Kind] = KINDS,
        principal: Principal | None = None,
    ) -> Plan:
        """What applying `project` would change (nothing is written), as the admission
        policies see it for `principal` (None: the App's actor)."""
        return make_plan(self._app, project, kinds, CHECKS, principal)

    def apply(
        self,
        project: LoadedProject,
        *,
        actor: str | None = None,
        principal: Principal | None = None,
        commit: str | None = None,
        kinds: Sequence[Kind] = KINDS,
        after_each: Callable[[Change], None] | None = None,
    ) -> ApplyResult:
        """Validate, then apply every change (undone on a failure: `ApplyFailed`); the
        apply is recorded in the history either way, with `commit` on the versions it
        deployed."""
        spec = project.spec
        who = actor or (self._core.actor.name if self._core.actor else "api")
        params = {"project": spec.project, "commit": commit}
        with (
            self._core.audited("project.apply", f"namespace {spec.namespace}", params=params),
            self._applying(spec.namespace),
        ):
            plan = make_plan(self._app, project, kinds, CHECKS, principal)
            try:
                apply_plan(self._app, project, plan, kinds, by=principal, after_each=after_each)
            except ApplyFailed as exc:
                self._record(project, plan, who, commit, "failed", str(exc))
                raise
            if commit is not None:
                pairs = [(w.spec.name, w.spec.version) for w in project.workflows]
                self.store.projects.record_commit(pairs, commit, now=self.clock.now())
            outcome = "applied" if plan.changes else "unchanged"
            apply_id = self._record(project, plan, who, commit, outcome, None)
        return ApplyResult(plan, outcome, apply_id)

    def applies(self, namespace: str | None = None, *, limit: int = 50) -> list[ProjectApply]:
        """The apply history, newest first (of one namespace)."""
        if not 1 <= limit <= 1000:
            raise ParameterError("limit is 1 to 1000")
        return self.store.projects.list_applies(namespace, limit=limit)

    def last_applies(self) -> list[ProjectApply]:
        """The newest apply of each namespace, by namespace."""
        newest: dict[str, ProjectApply] = {}
        for entry in self.store.projects.list_applies(None, limit=1000):
            newest.setdefault(entry.namespace, entry)
        return [newest[k] for k in sorted(newest)]

    def commits_of(self, workflow: str) -> dict[str, str]:
        """Version -> the commit it was deployed from, for one workflow."""
        return self.store.projects.commits_of(workflow)

    # ------------------------------------------------------------------ sync sources

    def put_source(
        self,
        name: str,
        *,
        repo: str,
        branch: str | None = None,
        tag: str | None = None,
        project_path: str,
        secret: str | None = None,
    ) -> bool:
        """Create or replace a sync source; True if created. `ParameterError` names a bad
        name, ref or path; the secret is a ``namespace/name`` reference."""
        from orchestrion.app.projects.sync_source import checked_source

        with self._core.audited("sync.source.put", f"sync source {name}"):
            source = checked_source(name, repo, branch, tag, project_path, secret)
            return self.store.projects.put_sync_source(source, now=self.clock.now())

    def sources(self) -> list[SyncSource]:
        """Every sync source, by name."""
        return self.store.projects.list_sync_sources()

    def source(self, name: str) -> SyncSource:
        """One sync source, or `NotFound`."""
        found = self.store.projects.get_sync_source(name)
        if found is None:
            raise NotFound(f"sync source {name[:100]!r} does not exist")
        return found

    def delete_source(self, name: str) -> None:
        """Delete a sync source (its results stay), or `NotFound`."""
        with self._core.audited("sync.source.delete", f"sync source {name}"):
            if not re.fullmatch(NAME_PATTERN, name):
                raise ParameterError(f"bad sync source name {name[:100]!r}")
            if not self.store.projects.delete_sync_source(name, now=self.clock.now()):
                raise NotFound(f"sync source {name[:100]!r} does not exist")

    def sync_results(self, source: str | None = None, *, limit: int = 50) -> list[SyncResult]:
        """What the looks at sources found, newest first (of one source)."""
        if not 1 <= limit <= 1000:
            raise ParameterError("limit is 1 to 1000")
        return self.store.projects.sync_results(source, limit=limit)

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _applying(self, namespace: str) -> Iterator[None]:
        """One apply per namespace at a time (a lease row; an apply that dies frees it
        when it expires): two interleaved applies could each undo the other's changes."""
        name, holder = f"project.{namespace}", secrets.token_hex(8)
        triggers = self.store.triggers
        epoch = triggers.acquire_lease(name, holder, ttl=_APPLY_TTL, now=self.clock.now())
        if epoch is None:
            raise IllegalTransition(
                f"another apply of namespace {namespace!r} is in progress; try again when it ends"
            )
        try:
            yield
        finally:
            triggers.release_lease(name, holder, epoch)

    @property
    def _app(self) -> App:
        # The Core every facet holds is the App itself: kinds call its other facets.
        return cast("App", self._core)

    def _record(
        self,
        project: LoadedProject,
        plan: Plan,
        who: str,
        commit: str | None,
        outcome: str,
        error: str | None,
    ) -> int:
        summary: dict[str, Any] = {
            **plan.summary(),
            "changes": [c.line() for c in plan.changes][:200],
        }
        entry = ProjectApply(
            namespace=project.spec.namespace,
            project=project.spec.project,
            actor=who,
            commit_sha=commit,
            source=project.source[:500],
            outcome=outcome,
            summary=summary,
            error=error[:2000] if error else None,
        )
        return self.store.projects.record_apply(entry, now=self.clock.now())
