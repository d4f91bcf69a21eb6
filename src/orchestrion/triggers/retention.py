"""Retention: which runs, log lines and audit records each namespace's policy lets go,
removed in small batches (issue 16, part 4).

The store deletes one batch per transaction (`RetentionStore`); this module decides what
each policy covers and loops. It serves two callers: the scheduler's ``retention`` duty
(`RetentionDuty`, under its own lease, so one process at a time prunes) and
``orchestrion runs prune`` (`prune`, through `App.retention`).

Namespaces come from the workflows: a run belongs to its workflow's namespace (the current
version's). The ``*`` policy covers every namespace without one of its own.

Audit records leave only through `prune_audit`: exported first to a JSON-lines file
(owner-only) and synced to disk, then deleted through the audit log's gate, with an
``audit.pruned`` record naming the file in the same transaction.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrion.store.record import field_names
from orchestrion.store.records import (
    DEFAULT_NAMESPACE,
    AuditRecord,
    PruneCounts,
    RetentionPolicy,
)
from orchestrion.store.retention import AuditScope, RetentionStore
from orchestrion.store.workflows import WorkflowStore

__all__ = [
    "BATCH",
    "DAY",
    "RetentionDuty",
    "apply_policies",
    "covered_workflows",
    "export_audit",
    "prune",
    "prune_audit",
]

log = logging.getLogger("orchestrion.retention")

DAY = 86400.0
#: Runs (or log lines) per transaction: short enough that workers never wait long for the
#: SQLite writer lock, large enough that a backlog of 50,000 runs goes in a minute or so.
BATCH = 500
#: Audit records per export file and delete.
AUDIT_BATCH = 5000


@dataclass
class _Budget:
    """How many batches a pass may still run (None: no limit), and whether it ran out."""

    left: int | None
    ran_out: bool = False

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            self.ran_out = True
            return False
        self.left -= 1
        return True


def covered_workflows(
    workflows: WorkflowStore, policies: Sequence[RetentionPolicy]
) -> dict[str, list[str]]:
    """Namespace of each policy -> the workflows it governs (``*``: those of every
    namespace without a policy of its own)."""
    own = {p.namespace for p in policies if p.namespace != DEFAULT_NAMESPACE}
    covered: dict[str, list[str]] = {p.namespace: [] for p in policies}
    for w in workflows.list_workflows():
        key = w.namespace if w.namespace in own else DEFAULT_NAMESPACE
        if key in covered:
            covered[key].append(w.name)
    return covered


def prune(
    retention: RetentionStore,
    workflows: Sequence[str],
    *,
    before: float,
    keep_last: int,
    now: Callable[[], float],
    logs_before: float | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    budget: int | None = None,
    cursors: dict[str, tuple[float, str]] | None = None,
) -> tuple[PruneCounts, bool]:
    """Prune the runs of `workflows` that ended before `before` (and, with `logs_before`,
    the log lines of the runs that stay), batch after batch until none is left or
    `budget` batches ran; (what went, whether the budget ran out first). `cursors` keeps
    each workflow's position between calls that the budget cut short. `dry_run`: what
    would go, nothing changed."""
    left = _Budget(budget)
    total = PruneCounts()
    if dry_run:
        for workflow in workflows:
            total += retention.prune_runs(
                workflow, before=before, keep_last=keep_last, limit=batch, now=now(),
                dry_run=True,
            ).counts  # fmt: skip
        if logs_before is not None:
            # Counted over every old run: those pruned above would lose their logs anyway.
            logs = retention.prune_logs(
                workflows, before=logs_before, limit=batch, now=now(), dry_run=True
            )
            total += PruneCounts(logs=max(0, logs - total.logs))
        return total, False
    # Each batch starts where the last one stopped (across passes too, with `cursors`):
    # candidates whose family must stay are passed over once, not looked at again and again.
    positions: dict[str, tuple[float, str]] = {} if cursors is None else cursors
    for workflow in workflows:
        while left.take():
            went = retention.prune_runs(
                workflow,
                before=before,
                keep_last=keep_last,
                limit=batch,
                now=now(),
                after=positions.get(workflow),
            )
            total += went.counts
            if went.next is None:
                positions.pop(workflow, None)  # done: the next pass starts from the oldest
                break
            positions[workflow] = went.next
    while logs_before is not None and left.take():
        gone = retention.prune_logs(workflows, before=logs_before, limit=batch * 20, now=now())
        total += PruneCounts(logs=gone)
        if gone == 0:
            break
    return total, left.ran_out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def export_audit(records: Sequence[AuditRecord], folder: Path, label: str) -> Path:
    """Write `records` (audit records) as JSON lines to a new owner-only file in `folder`
    (made 0700 if missing) and sync it to disk; the file's path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    first, last = records[0].id, records[-1].id
    path = folder / f"audit-{_safe(label)}-{first:012d}-{last:012d}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file of that name may be looser
        for record in records:
            data = {n: getattr(record, n) for n in field_names(record)}
            data["params"] = dict(record.params)
            out.write(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
        out.flush()
        os.fsync(out.fileno())
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the file's name is durable too
    finally:
        os.close(dir_fd)
    return path


def prune_audit(
    retention: RetentionStore,
    scope: AuditScope,
    *,
    before: float,
    folder: Path,
    now: Callable[[], float],
    budget: int | None = None,
) -> tuple[int, list[Path], bool]:
    """Export then delete the audit records of `scope` older than `before`, a file per
    batch; (records deleted, files written, whether the budget ran out). A record is
    deleted only after the file holding it is on disk."""
    left = _Budget(budget)
    deleted, files = 0, []
    label = scope[0] or "default"
    while left.take():
        found = retention.audit_to_prune(scope, before=before, limit=AUDIT_BATCH)
        if not found:
            break
        path = export_audit(found, folder, label)
        files.append(path)
        deleted += retention.delete_audit(
            scope, up_to_id=found[-1].id, before=before, export=str(path), now=now()
        )
    return deleted, files, left.ran_out


def apply_policies(
    retention: RetentionStore,
    workflows: WorkflowStore,
    now: Callable[[], float],
    *,
    budget: int | None = None,
    cursors: dict[str, tuple[float, str]] | None = None,
) -> tuple[PruneCounts, bool]:
    """One pass of every policy; (what went, whether `budget` batches ran out first).
    `cursors`: where each workflow's pruning stopped, kept by the caller between passes."""
    # Expired cache entries go whatever the policies say: their ttl is their policy.
    total, behind = PruneCounts(cache=retention.prune_cache(now=now())), False
    policies = retention.list_policies()
    if not policies:
        return total, False
    start = now()
    covered = covered_workflows(workflows, policies)
    own_audit = [p.namespace for p in policies if p.namespace != DEFAULT_NAMESPACE]
    for policy in policies:
        names = covered.get(policy.namespace, [])
        if names and (policy.runs_days is not None or policy.logs_days is not None):
            went, ran_out = prune(
                retention,
                names,
                before=_cutoff(start, policy.runs_days),
                keep_last=policy.keep_last or 0,
                logs_before=None if policy.logs_days is None else start - policy.logs_days * DAY,
                now=now,
                budget=budget,
                cursors=cursors,
            )
            total, behind = total + went, behind or ran_out
        if policy.namespace == DEFAULT_NAMESPACE and policy.runs_days is not None:
            # What belongs to no run (and so to no namespace) ages under the default.
            history, ran_out = _prune_history(
                retention, before=_cutoff(start, policy.runs_days), now=now, budget=budget
            )
            total, behind = total + history, behind or ran_out
        if policy.audit_days is not None and policy.audit_export_dir:
            scope: AuditScope = (
                (None, own_audit)
                if policy.namespace == DEFAULT_NAMESPACE
                else (policy.namespace, ())
            )
            gone, _, ran_out = prune_audit(
                retention,
                scope,
                before=start - policy.audit_days * DAY,
                folder=Path(policy.audit_export_dir),
                now=now,
                budget=budget,
            )
            total, behind = total + PruneCounts(audit=gone), behind or ran_out
    return total, behind


def _prune_history(
    retention: RetentionStore, *, before: float, now: Callable[[], float], budget: int | None
) -> tuple[PruneCounts, bool]:
    """History of no run, received events and fires that started nothing, older than
    `before`, batch after batch; (what went, whether the budget ran out first)."""
    left = _Budget(budget)
    total = PruneCounts()
    while left.take():
        went = retention.prune_history(before=before, limit=BATCH * 4, now=now())
        total += went
        if went.total == 0:
            break
    return total, left.ran_out


def _cutoff(start: float, days: float | None) -> float:
    """Runs that ended before this go; no runs rule: none (the epoch)."""
    return 0.0 if days is None else start - days * DAY


class RetentionDuty:
    """The scheduler's ``retention`` duty: `apply_policies` every `every` seconds, at most
    `budget` batches a pass, and again at the next tick while a backlog remains."""

    def __init__(
        self,
        retention: RetentionStore,
        workflows: WorkflowStore,
        now: Callable[[], float],
        *,
        every: float = 60.0,
        budget: int = 4,
    ) -> None:
        self.retention = retention
        self.workflows = workflows
        self.now = now
        self.every = every
        self.budget = budget
        self._due = 0.0
        #: Where each workflow's pruning stopped when a pass ran out of budget.
        self._cursors: dict[str, tuple[float, str]] = {}

    def tick(self, now: float) -> PruneCounts | None:
        """Apply the policies if due; what went (None: not due, or it failed, logged)."""
        if now < self._due:
            return None
        self._due = now + self.every
        try:
            went, behind = apply_policies(
                self.retention, self.workflows, self.now, budget=self.budget, cursors=self._cursors
            )
        except Exception:  # a duty of a long-running loop: log it, try again next time
            # An export folder that cannot be written, a database error: never the other
            # duties' problem.
            log.exception("retention.failed")
            return None
        if behind:
            self._due = now  # a backlog: carry on at the next tick
        if went.total:
            log.info("retention.pruned", extra=went.as_dict())
        return went
