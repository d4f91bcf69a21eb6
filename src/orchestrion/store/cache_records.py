"""The records of task result caching (``docs/caching.md``): an entry's identity, what a
worker reports with an attempt of a cached task, and what the store answers it.

Pure (stdlib only), re-exported by `orchestrion.store.records`."""

from __future__ import annotations

from typing import Any, Literal

from orchestrion.store.record import Record

__all__ = ["CacheEntry", "CacheKey", "CacheLookup", "CacheNote"]


class CacheKey(Record, frozen=True):
    """Which entry: entries are scoped per namespace, workflow and task."""

    namespace: str
    workflow: str
    task_name: str
    #: The hash of the task's inputs and code version, or of its key expression's value.
    key: str


class CacheNote(Record, frozen=True, kw_only=True):
    """Carried by the outcome of an attempt of a cached task: the finish that records the
    outcome acts on the entry in the same transaction."""

    key: CacheKey
    #: Set when the result came from the cache: the run and task run that produced it.
    source_run_id: str | None = None
    source_task_run_id: int | None = None
    #: For a computed result: how long the entry stays usable (None: no expiry).
    ttl: float | None = None


class CacheLookup(Record, frozen=True, kw_only=True):
    """What the store answers a cached task's attempt before it runs the body."""

    #: hit: reuse `result`; compute: this task run now owns the key; busy: another task
    #: run is computing it (wait, then ask again).
    verdict: Literal["hit", "compute", "busy"]
    result: Any = None
    source_run_id: str | None = None
    source_task_run_id: int | None = None


class CacheEntry(Record, frozen=True, kw_only=True):
    """One cache entry, as listed (its result left out: it may be large)."""

    namespace: str
    workflow: str
    task_name: str
    cache_key: str
    #: computing | ready
    state: str
    run_id: str
    task_run_id: int
    created_at: float
    expires_at: float | None
