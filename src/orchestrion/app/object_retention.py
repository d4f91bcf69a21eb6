"""Retention that deletes objects too: the `RetentionStore` that the scheduler's duty and
``orchestrion runs prune`` use, over the database's, deleting from the result store the
objects (large results, file artifacts) of every batch of runs it pruned, once that batch
is committed. An object whose delete fails (the store unreachable) is logged and left: the
rows are gone, so nothing refers to it any more."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from orchestrion.store.objects import ObjectStore
from orchestrion.store.records import AuditRecord, PruneBatch, PruneCounts, RetentionPolicy
from orchestrion.store.retention import AuditScope, RetentionStore

__all__ = ["ObjectRetention"]

log = logging.getLogger("orchestrion.retention")


class ObjectRetention:
    """`inner`, with the objects of pruned runs deleted from `objects`."""

    def __init__(self, inner: RetentionStore, objects: ObjectStore) -> None:
        self._inner = inner
        self._objects = objects

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
        went = self._inner.prune_runs(
            workflow,
            before=before,
            keep_last=keep_last,
            limit=limit,
            now=now,
            after=after,
            dry_run=dry_run,
        )
        if went.objects:
            try:
                self._objects.delete(went.objects)
            except Exception:  # the rows are gone: a left object is waste, not harm
                log.exception("retention.objects_failed", extra={"objects": len(went.objects)})
        return went

    def put_policy(self, policy: RetentionPolicy, *, now: float) -> bool:
        return self._inner.put_policy(policy, now=now)

    def get_policy(self, namespace: str) -> RetentionPolicy | None:
        return self._inner.get_policy(namespace)

    def list_policies(self) -> list[RetentionPolicy]:
        return self._inner.list_policies()

    def delete_policy(self, namespace: str, *, now: float) -> bool:
        return self._inner.delete_policy(namespace, now=now)

    def set_keep(self, run_id: str, keep: bool, *, now: float) -> bool:
        return self._inner.set_keep(run_id, keep, now=now)

    def prune_logs(
        self,
        workflows: Sequence[str],
        *,
        before: float,
        limit: int,
        now: float,
        dry_run: bool = False,
    ) -> int:
        return self._inner.prune_logs(
            workflows, before=before, limit=limit, now=now, dry_run=dry_run
        )

    def prune_cache(self, *, now: float) -> int:
        # Cache entries only copy a result column: a stored result's object belongs to the
        # run that wrote it and goes when that run is pruned.
        return self._inner.prune_cache(now=now)

    def prune_history(self, *, before: float, limit: int, now: float) -> PruneCounts:
        return self._inner.prune_history(before=before, limit=limit, now=now)

    def audit_to_prune(self, scope: AuditScope, *, before: float, limit: int) -> list[AuditRecord]:
        return self._inner.audit_to_prune(scope, before=before, limit=limit)

    def delete_audit(
        self, scope: AuditScope, *, up_to_id: int, before: float, export: str, now: float
    ) -> int:
        return self._inner.delete_audit(
            scope, up_to_id=up_to_id, before=before, export=export, now=now
        )
