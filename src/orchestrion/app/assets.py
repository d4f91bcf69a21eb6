"""`App.assets`: data assets' catalogue, history and lineage, and materializing one.

The catalogue joins two sources: the current version of every workflow (who produces and
consumes each asset, and the ``max_age`` producers promise) and the store's asset events
(what actually happened). Lineage edges are derived from the specs: each asset a task
consumes is upstream of each asset it produces, and so is each asset of a workflow's
asset trigger for every asset that workflow produces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from orchestrion.app.core import Facet
from orchestrion.errors import NotFound, ParameterError
from orchestrion.spec.expressions import whole_template
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.asset_records import AssetEvent
from orchestrion.triggers.assets import asset_state

__all__ = ["AssetInfo", "Assets", "Lineage"]


@dataclass(slots=True, kw_only=True)
class AssetInfo:
    """One asset: where it comes from, what reads it, its newest event and its state."""

    namespace: str
    key: str
    #: Workflow/task names that produce and consume it (current versions).
    producers: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    #: Workflows whose asset triggers listen to it.
    triggers: list[str] = field(default_factory=list)
    max_age: float | None = None
    events: int = 0
    last_event_id: int | None = None
    last_at: float | None = None
    #: ``fresh``, ``stale``, ``missing`` (never produced) or ``unknown`` (no max_age).
    state: str = "missing"
    upstream: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (API, CLI)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Lineage:
    """A graph of assets: nodes (the infos) and edges (upstream key, downstream key)."""

    nodes: list[AssetInfo]
    edges: list[tuple[str, str]]


class Assets(Facet):
    """Data assets: list, show, history, lineage, materialize."""

    def catalogue(
        self, namespaces: Collection[str] | None = None
    ) -> dict[tuple[str, str], AssetInfo]:
        """Every asset known from specs or events, by (namespace, key); only those of
        `namespaces` when given."""
        infos: dict[tuple[str, str], AssetInfo] = {}

        def info(namespace: str, key: str) -> AssetInfo:
            found = infos.get((namespace, key))
            if found is None:
                found = infos[(namespace, key)] = AssetInfo(namespace=namespace, key=key)
            return found

        for spec in self._specs():
            if namespaces is not None and spec.namespace not in namespaces:
                continue
            self._add_spec(spec, info)
        listed = None if namespaces is None else sorted(namespaces)
        for summary in self.store.assets.list_assets(listed):
            item = info(summary.namespace, summary.asset)
            item.events, item.last_event_id = summary.events, summary.last_event_id
            item.last_at = summary.last_at
        now = self.clock.now()
        for item in infos.values():
            item.state = asset_state(item.last_at, item.max_age, now)
            item.upstream.sort()
            item.downstream.sort()
        return dict(sorted(infos.items()))

    def list_assets(self, namespaces: Collection[str] | None = None) -> list[AssetInfo]:
        """Every asset (of `namespaces`), by namespace and key."""
        return list(self.catalogue(namespaces).values())

    def show(self, key: str, namespace: str = "default") -> AssetInfo:
        """One asset; `NotFound` if no spec names it and it has no event."""
        found = self.catalogue([namespace]).get((namespace, key))
        if found is None:
            raise NotFound(f"no asset {key[:200]!r} in namespace {namespace!r}")
        return found

    def history(
        self,
        key: str,
        namespace: str = "default",
        *,
        partition: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AssetEvent]:
        """An asset's events, newest first."""
        if not 1 <= limit <= 1000:
            raise ParameterError("limit must be between 1 and 1000")
        return self.store.assets.asset_events(
            namespace, key, partition=partition, before=before, limit=limit
        )

    def lineage(self, key: str, namespace: str = "default", *, depth: int = 10) -> Lineage:
        """The asset and what lies up- and downstream of it, up to `depth` steps each way."""
        catalogue = self.catalogue([namespace])
        if (namespace, key) not in catalogue:
            raise NotFound(f"no asset {key[:200]!r} in namespace {namespace!r}")
        seen = {key}
        edges: set[tuple[str, str]] = set()
        for direction in ("upstream", "downstream"):
            frontier = [key]
            for _ in range(depth):
                nxt: list[str] = []
                for current in frontier:
                    item = catalogue.get((namespace, current))
                    for other in getattr(item, direction, []) if item else []:
                        edges.add((other, current) if direction == "upstream" else (current, other))
                        if other not in seen:
                            seen.add(other)
                            nxt.append(other)
                frontier = nxt
        nodes = [catalogue[(namespace, k)] for k in sorted(seen) if (namespace, k) in catalogue]
        return Lineage(nodes, sorted(edges))

    def materialize(
        self,
        key: str,
        namespace: str = "default",
        *,
        partition: str | None = None,
        upstream: bool = False,
    ) -> list[str]:
        """Start the workflows that produce `key` (with `upstream`, first those producing
        what it needs, furthest upstream first): the run ids. A partition is passed as
        the parameter the producer's partition template names (``{{ params.day }}``)."""
        order = [key]
        if upstream:
            order = self._upstream_order(key, namespace)
        started: list[str] = []
        done: set[str] = set()
        from orchestrion.app.runs import Runs

        runs = Runs(self._core)
        for asset_key in order:
            producers = self._producers(asset_key, namespace)
            if not producers and asset_key == key:
                raise NotFound(f"no workflow produces asset {key[:200]!r} in {namespace!r}")
            for spec, template in producers:
                if spec.name in done:
                    continue
                done.add(spec.name)
                params = _partition_params(spec, template, partition)
                run = runs.trigger(spec.name, params, trigger=f"materialize:{asset_key}")
                started.append(run.id)
        return started

    # ------------------------------------------------------------------ helpers

    def _specs(self) -> list[WorkflowSpec]:
        out = []
        for record in self.store.workflows.list_workflows():
            out.append(self.store.workflows.get_workflow(record.name).spec)
        return out

    def _add_spec(self, spec: WorkflowSpec, info: Any) -> None:
        produced: list[str] = []
        for task in spec.tasks:
            where = f"{spec.name}/{task.name}"
            for ref in task.produces:
                item = info(spec.namespace, ref.key)
                item.producers.append(where)
                produced.append(ref.key)
                if ref.max_age is not None:
                    item.max_age = min(item.max_age or ref.max_age, ref.max_age)
            for ref in task.consumes:
                info(spec.namespace, ref.key).consumers.append(where)
                for out in task.produces:
                    _link(info(spec.namespace, ref.key), info(spec.namespace, out.key))
        for trigger in spec.triggers:
            for key in trigger.assets or ():
                info(spec.namespace, key).triggers.append(spec.name)
                for made in produced:
                    _link(info(spec.namespace, key), info(spec.namespace, made))

    def _producers(self, key: str, namespace: str) -> list[tuple[WorkflowSpec, str | None]]:
        out = []
        for spec in self._specs():
            if spec.namespace != namespace:
                continue
            for task in spec.tasks:
                ref = next((r for r in task.produces if r.key == key), None)
                if ref is not None:
                    out.append((spec, ref.partition))
                    break
        return out

    def _upstream_order(self, key: str, namespace: str) -> list[str]:
        catalogue = self.catalogue([namespace])
        order: list[str] = []

        def visit(current: str, path: tuple[str, ...]) -> None:
            if current in order or current in path:
                return
            item = catalogue.get((namespace, current))
            for up in item.upstream if item else []:
                visit(up, (*path, current))
            order.append(current)

        visit(key, ())
        return order


def _link(up: AssetInfo, down: AssetInfo) -> None:
    if down.key not in up.downstream and down.key != up.key:
        up.downstream.append(down.key)
    if up.key not in down.upstream and down.key != up.key:
        down.upstream.append(up.key)


def _partition_params(
    spec: WorkflowSpec, template: str | None, partition: str | None
) -> dict[str, Any]:
    """The run params that make the producer write `partition`."""
    if partition is None:
        return {}
    inner = None if template is None else whole_template(template)
    name = (inner or "").strip()
    if not name.startswith("params.") or not name[7:].isidentifier():
        raise ParameterError(
            f"workflow {spec.name!r} does not take the partition as a parameter (its"
            f" partition is {template!r}; materialize it with params instead)"
        )
    return {name[7:]: partition}
