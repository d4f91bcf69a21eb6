"""`CacheStore`: task result caching (``docs/caching.md``), as a store role.

A cached task's attempt asks `cache_begin` before it runs the body; its outcome (with a
`CacheNote`) writes the entry in the finish that records it (`RunStore.finish`), so an
entry is never visible half-written. Listing and clearing serve the CLI, API and UI;
retention removes expired entries (`RetentionStore.prune_cache`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from orchestrion.store.cache_records import CacheEntry, CacheKey, CacheLookup

__all__ = ["CacheStore"]


class CacheStore(Protocol):
    """Task cache entries: the lookup before a cached task runs, listing and clearing."""

    def cache_begin(
        self, key: CacheKey, *, run_id: str, task_run_id: int, now: float
    ) -> CacheLookup:
        """In one transaction: a usable entry is a hit (unless the run was started with
        "no cache"); a key nobody computes (new, expired, refreshed, or whose computing
        task run stopped running) is taken by `task_run_id` to compute; one another task
        run is computing is busy."""
        ...

    def list_cache(
        self,
        *,
        workflow: str | None = None,
        namespaces: Collection[str] | None = None,
        limit: int = 500,
    ) -> list[CacheEntry]:
        """Entries, newest first, of `workflow` (None: every one) in `namespaces` (None:
        every namespace)."""
        ...

    def clear_cache(
        self,
        *,
        workflow: str | None = None,
        namespaces: Collection[str] | None = None,
        now: float,
    ) -> int:
        """Delete the entries `list_cache` would list (all of them); how many went.
        Writes an event."""
        ...
