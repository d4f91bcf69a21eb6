"""`App.retention`: per-namespace retention policies, the "keep" mark on runs, and
pruning on demand (issue 16, part 4; docs/operating.md, "Retention").

The scheduler's ``retention`` duty applies the policies by itself; these methods are what
operators call: set or clear a policy, mark a run to keep, and ``runs prune`` (with
``--dry-run`` first). Writes are checked here and audited.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

from orchestrion.app.core import Facet
from orchestrion.auth.principals import check_namespace
from orchestrion.errors import NotFound, ParameterError
from orchestrion.store.records import PruneCounts, RetentionPolicy
from orchestrion.triggers.retention import DAY, prune

__all__ = ["PruneReport", "Retention"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    """What `Retention.prune` removed, or for a dry run would remove."""

    dry_run: bool
    #: Runs that ended before this went (seconds since the epoch).
    before: float
    keep_last: int
    namespace: str | None
    workflows: tuple[str, ...]
    counts: PruneCounts


class Retention(Facet):
    """Policies by namespace (``*``: the default), keep marks, pruning."""

    def set_policy(
        self,
        namespace: str,
        *,
        runs_days: float | None = None,
        logs_days: float | None = None,
        keep_last: int | None = None,
        audit_days: float | None = None,
        audit_export_dir: str | None = None,
    ) -> bool:
        """Create or replace `namespace`'s policy; True if created. `ParameterError` names
        a bad value."""
        with self._core.audited("retention.set", f"retention {namespace}"):
            policy = checked_policy(
                namespace, runs_days, logs_days, keep_last, audit_days, audit_export_dir
            )
            return self.store.retention.put_policy(policy, now=self.clock.now())

    def get_policy(self, namespace: str) -> RetentionPolicy:
        """`namespace`'s own policy, or `NotFound`."""
        check_namespace(namespace)
        found = self.store.retention.get_policy(namespace)
        if found is None:
            raise NotFound(f"namespace {namespace!r} has no retention policy")
        return found

    def list_policies(self) -> list[RetentionPolicy]:
        """Every policy, by namespace."""
        return self.store.retention.list_policies()

    def clear_policy(self, namespace: str) -> None:
        """Delete `namespace`'s policy (nothing is pruned for it after), or `NotFound`."""
        with self._core.audited("retention.clear", f"retention {namespace}"):
            check_namespace(namespace)
            if not self.store.retention.delete_policy(namespace, now=self.clock.now()):
                raise NotFound(f"namespace {namespace!r} has no retention policy")

    def keep_run(self, run_id: str, keep: bool = True) -> bool:
        """Mark a run kept (never pruned, nor its family) or not; False if it already
        was. `NotFound` for no such run."""
        run = self.store.reads.get_run(run_id)  # a prefix is accepted, as everywhere
        action = "run.keep" if keep else "run.unkeep"
        with self._core.audited(action, f"run {run.id}", workflow=run.workflow):
            return self.store.retention.set_keep(run.id, keep, now=self.clock.now())

    def prune(
        self,
        *,
        older_than: float,
        keep_last: int = 0,
        namespace: str | None = None,
        workflow: str | None = None,
        dry_run: bool = False,
    ) -> PruneReport:
        """Prune finished, unkept runs that ended more than `older_than` seconds ago,
        keeping the newest `keep_last` of each workflow, of one `namespace` or `workflow`
        (or all), in batches; `dry_run`: count, change nothing."""
        params = {"older_than": older_than, "keep_last": keep_last, "dry_run": dry_run}
        audit = self._core.audited("runs.prune", f"namespace {namespace or '*'}", params=params)
        with contextlib.nullcontext() if dry_run else audit:  # a dry run changes nothing
            if not (math.isfinite(older_than) and older_than > 0):
                raise ParameterError(f"older than must be a positive duration, not {older_than}")
            if keep_last < 0:
                raise ParameterError(f"keep last must be 0 or more, not {keep_last}")
            names = self._workflows(namespace, workflow)
            now = self.clock.now()
            counts, _ = prune(
                self._core.pruning(),
                names,
                before=now - older_than,
                keep_last=keep_last,
                now=self.clock.now,
                dry_run=dry_run,
            )
            return PruneReport(
                dry_run=dry_run,
                before=now - older_than,
                keep_last=keep_last,
                namespace=namespace,
                workflows=tuple(names),
                counts=counts,
            )

    def apply_policies(self) -> PruneCounts:
        """One full pass of every policy now (what the scheduler's duty does in steps)."""
        from orchestrion.triggers.retention import apply_policies

        counts, _ = apply_policies(self._core.pruning(), self.store.workflows, self.clock.now)
        return counts

    def _workflows(self, namespace: str | None, workflow: str | None) -> list[str]:
        if namespace is not None:
            check_namespace(namespace, wildcard=False)
        every = self.store.workflows.list_workflows()
        if workflow is not None:
            found = [w for w in every if w.name == workflow]
            if not found:
                raise NotFound(f"no workflow named {workflow!r}")
            every = found
        return [w.name for w in every if namespace is None or w.namespace == namespace]


def checked_policy(
    namespace: str,
    runs_days: float | None,
    logs_days: float | None,
    keep_last: int | None,
    audit_days: float | None,
    audit_export_dir: str | None,
) -> RetentionPolicy:
    """The policy, or `ParameterError` naming what is wrong with it."""
    check_namespace(namespace)
    for name, days in (("runs days", runs_days), ("logs days", logs_days)):
        _check_days(name, days)
    _check_days("audit days", audit_days)
    if keep_last is not None and keep_last < 0:
        raise ParameterError(f"keep last must be 0 or more, not {keep_last}")
    if audit_days is not None and not audit_export_dir:
        raise ParameterError(
            "an audit rule needs an export folder (audit records are written there before"
            " they are deleted)"
        )
    if audit_export_dir is not None and not os.path.isabs(audit_export_dir):
        raise ParameterError(
            f"the audit export folder must be an absolute path: {audit_export_dir!r}"
        )
    if all(v is None for v in (runs_days, logs_days, keep_last, audit_days)):
        raise ParameterError(
            "a retention policy needs at least one rule (runs, logs, keep last or audit)"
        )
    return RetentionPolicy(
        namespace=namespace,
        runs_days=runs_days,
        logs_days=logs_days,
        keep_last=keep_last,
        audit_days=audit_days,
        audit_export_dir=audit_export_dir,
    )


def _check_days(name: str, days: float | None) -> None:
    if days is not None and not (math.isfinite(days) and days > 0 and days * DAY < 1e11):
        raise ParameterError(f"{name} must be a positive number of days, not {days}")
