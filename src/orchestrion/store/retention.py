"""`RetentionStore`: per-namespace retention policies, the "keep" mark on runs, and the
verbs that delete old rows in small batches (issue 16, part 4).

Every deleting verb removes at most `limit` items in one short transaction and returns
what it removed, so that the caller (`orchestrion.triggers.retention`) loops over batches
and no transaction holds the writer lock (SQLite) or row locks (PostgreSQL) for long. Each
batch that removes something writes an event row with its counts in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrion.store.records import AuditRecord, PruneBatch, PruneCounts, RetentionPolicy

__all__ = ["AuditScope", "RetentionStore"]

#: Which audit records an audit rule covers: ``(namespace, None)`` one namespace's;
#: ``(None, others)`` those of no namespace and of every namespace not in `others` (the
#: ``*`` policy's share).
AuditScope = tuple[str | None, Sequence[str]]


class RetentionStore(Protocol):
    """Policies, keep marks and batched pruning."""

    def put_policy(self, policy: RetentionPolicy, *, now: float) -> bool:
        """Create or replace a namespace's policy; True if created. Writes an event."""
        ...

    def get_policy(self, namespace: str) -> RetentionPolicy | None:
        """One namespace's own policy (``*``: the default), or None."""
        ...

    def list_policies(self) -> list[RetentionPolicy]:
        """Every policy, by namespace."""
        ...

    def delete_policy(self, namespace: str, *, now: float) -> bool:
        """Delete a namespace's policy; False if it had none. Writes an event."""
        ...

    def set_keep(self, run_id: str, keep: bool, *, now: float) -> bool:
        """Mark a run kept (or not); False if it already was. `NotFound` for no such run.
        Writes an event (``run.kept`` / ``run.unkept``)."""
        ...

    def prune_runs(
        self,
        workflow: str,
        *,
        before: float,
        keep_last: int,
        limit: int,
        now: float,
        after: tuple[float, str] | None = None,
        dry_run: bool = False,
    ) -> PruneBatch:
        """Delete the prunable runs among the next `limit` candidates of `workflow` (oldest
        first, after the position `after`), with every row they own (task runs, attempts,
        events, logs, their fires) and their child runs, in one transaction. A candidate:
        finished before `before`, not among the newest `keep_last` of its workflow, not
        kept, not a child run (children go with their parent). It is passed over if any
        run of its family is unfinished or kept. `dry_run`: count every prunable run and
        the rows it owns, change nothing (`limit` and `after` ignored)."""
        ...

    def prune_logs(
        self,
        workflows: Sequence[str],
        *,
        before: float,
        limit: int,
        now: float,
        dry_run: bool = False,
    ) -> int:
        """Delete up to `limit` log lines of finished, unkept runs of `workflows` that
        ended before `before` (the runs stay); `dry_run`: count them all instead."""
        ...

    def prune_history(self, *, before: float, limit: int, now: float) -> PruneCounts:
        """Delete up to `limit` rows of each kind that belong to no run, older than
        `before`: history rows without a run (``events``), received events (``inbox``: a
        redelivery of one older than this would start a run again) and schedule fires that
        started nothing (skipped, failed), in one transaction."""
        ...

    def prune_cache(self, *, now: float) -> int:
        """Delete task cache entries past their ttl and those whose source run is gone,
        in one transaction; how many went."""
        ...

    def audit_to_prune(self, scope: AuditScope, *, before: float, limit: int) -> list[AuditRecord]:
        """The oldest (by id) up to `limit` audit records of `scope` older than `before`,
        never the newest record of the log: what the next export and delete cover."""
        ...

    def delete_audit(
        self, scope: AuditScope, *, up_to_id: int, before: float, export: str, now: float
    ) -> int:
        """Delete the audit records of `scope` with an id at most `up_to_id` older than
        `before` (those `audit_to_prune` returned, once exported to `export`) through the
        audit log's pruning gate, and append an ``audit.pruned`` audit record naming the
        export, in one transaction. Returns how many went."""
        ...
