"""`AssetStore`: the role that keeps data assets' events and what asset triggers consumed.

Events are written by the finish of the attempt that produced them (`RunStore.finish`,
in its transaction); this role reads them, and starts the runs of asset triggers under a
compare-and-set on what each trigger consumed (`fire_asset_trigger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrion.store.asset_records import AssetEvent, AssetSummary
from orchestrion.store.records import RunRequest

__all__ = ["AssetStore"]


class AssetStore(Protocol):
    """Data assets' history and asset triggers' bookkeeping."""

    def list_assets(self, namespaces: Sequence[str] | None = None) -> list[AssetSummary]:
        """Every asset with at least one event (of `namespaces`, or all), by namespace and key."""
        ...

    def asset_events(
        self,
        namespace: str,
        asset: str,
        *,
        partition: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AssetEvent]:
        """An asset's events, newest first (ids below `before`; of one `partition`)."""
        ...

    def unconsumed(
        self, trigger_key: str, namespace: str, assets: Sequence[str], *, after: int
    ) -> list[AssetEvent]:
        """Events of `assets` past `after` that the trigger has not consumed, oldest first."""
        ...

    def trigger_start(self, trigger_key: str, *, now: float) -> int:
        """Where a trigger's history begins: the newest event id when it was first seen
        (kept, so a new trigger does not fire for what happened before it)."""
        ...

    def fire_asset_trigger(
        self,
        trigger_key: str,
        event_ids: Sequence[int],
        request: RunRequest | None,
        *,
        now: float,
    ) -> str | None:
        """Consume `event_ids` for the trigger and start `request`'s run (None: consume
        them only), in one transaction; None (nothing done) if another scheduler consumed
        any of them first."""
        ...

    def mark_stale(
        self, namespace: str, asset: str, last_event: int, *, workflow: str, now: float
    ) -> bool:
        """Record that `asset` went stale after event `last_event` (0: it has none) and
        write an ``asset.stale`` event naming its producer `workflow` (what notification
        rules match); False if that was recorded before."""
        ...
