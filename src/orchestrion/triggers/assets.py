"""The scheduler's ``assets`` duty: asset-triggered runs and stale assets.

Asset triggers. For each current workflow's ``assets:`` trigger, the events of its
assets that it has not consumed are grouped by partition (`plan_fires`, pure). A
partition fires when every listed asset has an event in it (``all_updated``) or any has
(``any_updated``); its run's params are the trigger's templates over ``partition`` and
``assets`` (the newest event of each asset: ``id``, ``run``, ``partition``, ``metadata``).
The events are consumed in the transaction that starts the run, under the primary key
(trigger, event): with two schedulers racing, one set of events starts one run
(`AssetStore.fire_asset_trigger`). A trigger only sees events from when it was first
seen on. A paused workflow's events wait. A filter that is false, or params that do not
fit the workflow, consume the events without a run (logged), so they cannot block the
partition's next events.

Freshness. A produced asset that declares ``max_age`` is stale when its newest event is
older than that (or, with none, when the workflow's version has been current that long):
the duty writes one ``asset.stale`` event per staleness (`AssetStore.mark_stale`), which
notifications match; the API and UI compute the state on read (`asset_state`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.errors import ExpressionError, ParameterError
from orchestrion.spec.expressions import compile_expression, render, whole_template
from orchestrion.spec.model import TriggerSpec, WorkflowSpec
from orchestrion.spec.params import resolve_params
from orchestrion.store.asset_records import AssetEvent, AssetSummary
from orchestrion.store.assets import AssetStore
from orchestrion.store.records import RunRequest

__all__ = ["AssetDuty", "AssetFire", "asset_state", "max_ages", "plan_fires", "uses_assets"]

log = logging.getLogger("orchestrion.scheduler")


@dataclass(frozen=True, slots=True)
class AssetFire:
    """One run an asset trigger is due to start: the events it consumes, and its scope."""

    partition: str | None
    event_ids: tuple[int, ...]
    scope: dict[str, Any]


def plan_fires(trigger: TriggerSpec, events: Sequence[AssetEvent]) -> list[AssetFire]:
    """The fires due for `trigger` given its unconsumed `events` (oldest first), in the order
    their partitions were first updated."""
    wanted = tuple(trigger.assets or ())
    by_part: dict[str | None, dict[str, list[AssetEvent]]] = {}
    for event in events:
        by_part.setdefault(event.partition, {}).setdefault(event.asset, []).append(event)
    fires: list[AssetFire] = []
    for partition, found in by_part.items():
        if trigger.when != "any_updated" and not all(key in found for key in wanted):
            continue
        ids = tuple(sorted(e.id for each in found.values() for e in each))
        newest = {
            key: {
                "id": each[-1].id,
                "run": each[-1].run_id,
                "partition": each[-1].partition,
                "metadata": each[-1].metadata,
            }
            for key, each in found.items()
        }
        fires.append(AssetFire(partition, ids, {"partition": partition, "assets": newest}))
    return fires


def uses_assets(spec: WorkflowSpec) -> bool:
    """Whether the assets duty has work for `spec`: an asset trigger or a max_age."""
    return any(t.assets for t in spec.triggers) or any(
        ref.max_age is not None for task in spec.tasks for ref in task.produces
    )


def max_ages(specs: Sequence[WorkflowSpec]) -> dict[tuple[str, str], tuple[float, str]]:
    """(namespace, asset) -> the shortest ``max_age`` its producers declare, and the
    workflow that declares it."""
    out: dict[tuple[str, str], tuple[float, str]] = {}
    for spec in specs:
        for task in spec.tasks:
            for ref in task.produces:
                if ref.max_age is not None:
                    key = (spec.namespace, ref.key)
                    if key not in out or ref.max_age < out[key][0]:
                        out[key] = (ref.max_age, spec.name)
    return out


def asset_state(last_at: float | None, max_age: float | None, now: float) -> str:
    """``fresh``, ``stale`` (older than `max_age`), ``missing`` (never produced) or
    ``unknown`` (produced, but promises no age)."""
    if last_at is None:
        return "missing"
    if max_age is None:
        return "unknown"
    return "stale" if now - last_at > max_age else "fresh"


class AssetDuty:
    """One pass of asset triggers and freshness checks (`tick`)."""

    def __init__(self, assets: AssetStore) -> None:
        self.assets = assets

    def tick(
        self,
        specs: Sequence[tuple[WorkflowSpec, float]],
        paused: Collection[str],
        now: float,
    ) -> list[str]:
        """Start what is due: the ids of the runs started. `specs` are the current
        versions, each with when it became current."""
        started: list[str] = []
        for spec, _ in specs:
            if spec.name in paused:
                continue
            for trigger in spec.triggers:
                if trigger.assets is not None:
                    started += self._trigger(spec, trigger, now)
        self._freshness(specs, now)
        return started

    def _trigger(self, spec: WorkflowSpec, trigger: TriggerSpec, now: float) -> list[str]:
        key = trigger.key(spec.name)
        after = self.assets.trigger_start(key, now=now)
        events = self.assets.unconsumed(key, spec.namespace, trigger.assets or (), after=after)
        started: list[str] = []
        for fire in plan_fires(trigger, events):
            request = _request(spec, trigger, key, fire)
            run_id = self.assets.fire_asset_trigger(key, fire.event_ids, request, now=now)
            if run_id is not None:
                started.append(run_id)
                log.info("assets.triggered", extra={"trigger": key, "run": run_id})
        return started

    def _freshness(self, specs: Sequence[tuple[WorkflowSpec, float]], now: float) -> None:
        ages = max_ages([spec for spec, _ in specs])
        if not ages:
            return
        since = {}
        for spec, current_since in specs:
            for task in spec.tasks:
                for ref in task.produces:
                    since[(spec.namespace, ref.key)] = current_since
        known: Mapping[tuple[str, str], AssetSummary] = {
            (s.namespace, s.asset): s for s in self.assets.list_assets()
        }
        for (namespace, asset), (age, producer) in sorted(ages.items()):
            summary = known.get((namespace, asset))
            last_at = since[(namespace, asset)] if summary is None else summary.last_at
            if now - last_at > age:
                last = 0 if summary is None else summary.last_event_id
                if self.assets.mark_stale(namespace, asset, last, workflow=producer, now=now):
                    log.info("assets.stale", extra={"asset": asset, "namespace": namespace})


def _request(
    spec: WorkflowSpec, trigger: TriggerSpec, key: str, fire: AssetFire
) -> RunRequest | None:
    """The run `fire` starts, or None when its filter is false or its params do not fit."""
    digest = hashlib.sha256(",".join(map(str, fire.event_ids)).encode()).hexdigest()[:16]
    try:
        if trigger.filter is not None:
            text = whole_template(trigger.filter) or trigger.filter
            if not compile_expression(text).evaluate(fire.scope):
                return None
        params = resolve_params(spec, render(dict(trigger.params), fire.scope))
    except (ExpressionError, ParameterError) as exc:
        log.warning("assets.trigger_failed", extra={"trigger": key, "error": str(exc)})
        return None
    return RunRequest(
        spec=spec, params=params, trigger=f"assets:{key}", idempotency_key=f"assets:{key}:{digest}"
    )
