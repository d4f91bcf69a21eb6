"""`App.cache`: the task result cache (``docs/caching.md``): list entries and clear them.

Entries are written and reused by workers (`orchestrion.worker.caching`) and expire under
retention; these are what operators call. Clearing is audited.
"""

from __future__ import annotations

from collections.abc import Collection

from orchestrion.app.core import Facet
from orchestrion.store.records import CacheEntry

__all__ = ["Cache"]


class Cache(Facet):
    """Task cache entries, by workflow."""

    def list_entries(
        self,
        *,
        workflow: str | None = None,
        namespaces: Collection[str] | None = None,
        limit: int = 500,
    ) -> list[CacheEntry]:
        """Entries of `workflow` (None: of every workflow) in `namespaces` (None: every
        one), newest first. `NotFound` for an unknown workflow."""
        if workflow is not None:
            self.store.workflows.get_workflow(workflow)  # `NotFound` names an unknown one
        return self.store.cache.list_cache(workflow=workflow, namespaces=namespaces, limit=limit)

    def clear(
        self, *, workflow: str | None = None, namespaces: Collection[str] | None = None
    ) -> int:
        """Delete the entries of `workflow` (None: of every workflow) in `namespaces`;
        how many went. The next run of their tasks computes them again."""
        obj = f"workflow {workflow}" if workflow else "every workflow"
        with self._core.audited("cache.clear", f"cache of {obj}", workflow=workflow):
            if workflow is not None:
                self.store.workflows.get_workflow(workflow)
            return self.store.cache.clear_cache(
                workflow=workflow, namespaces=namespaces, now=self.clock.now()
            )
