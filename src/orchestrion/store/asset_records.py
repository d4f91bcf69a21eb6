"""The store's records of data assets (`orchestrion.store.assets.AssetStore`)."""

from __future__ import annotations

from typing import Any

from orchestrion.store.record import Record

__all__ = ["AssetEvent", "AssetSummary"]


class AssetEvent(Record, frozen=True, kw_only=True):
    """One update of an asset: the succeeded attempt that made it, and what it said."""

    id: int
    namespace: str
    asset: str
    #: The partition's name; None for an unpartitioned asset.
    partition: str | None
    workflow: str
    run_id: str
    task_name: str
    task_run_id: int
    attempt: int
    metadata: dict[str, Any] | None
    created_at: float


class AssetSummary(Record, frozen=True, kw_only=True):
    """An asset that has events: how many, and its newest."""

    namespace: str
    asset: str
    events: int
    last_event_id: int
    last_at: float
