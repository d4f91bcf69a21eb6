"""OpenLineage run events: the scheduler's ``lineage`` duty posts a RunEvent (spec 2-0-2)
for each run that starts (START), succeeds (COMPLETE), fails (FAIL) or is canceled
(ABORT) to the endpoint in ``ORCHESTRION_OPENLINEAGE_URL``.

The duty reads the history past its cursor (``cursors`` row ``openlineage``; a first pass
starts at the newest event, so enabling it does not replay the past), builds the events
(`run_event`, pure), posts them in order and moves the cursor past what was delivered. A
collector that refuses or does not answer stops the pass; the next pass sends from the
first undelivered event again: delivery is at least once (receivers deduplicate on
``run.runId`` and ``eventType``). Runs never wait for it: it reads what their
transactions wrote.

The job is the workflow (``namespace`` = the workflow's namespace, ``name`` = its name);
inputs are the assets its tasks consume and its asset triggers listen to; outputs are the
assets it declares (START) or those its run actually updated (COMPLETE), as datasets of
the same namespace. OpenLineage wants a UUID run id: it is derived from the run's id
(UUID 5), the same for every event of a run.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.assets import AssetStore
from orchestrion.store.reads import ReadStore
from orchestrion.store.records import EventRecord, RunRecord
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.workflows import WorkflowStore

__all__ = ["CURSOR", "EVENT_TYPES", "PRODUCER", "SCHEMA_URL", "LineageEmitter", "run_event"]

log = logging.getLogger("orchestrion.scheduler")

CURSOR = "openlineage"
PRODUCER = "https://github.com/orchestrion/orchestrion"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#: History kinds -> OpenLineage event types (a run created running, the common case,
#: starts with its ``run.created`` row; one queued first, with ``run.start``).
EVENT_TYPES = {
    "run.created": "START",
    "run.start": "START",
    "run.succeed": "COMPLETE",
    "run.fail": "FAIL",
    "run.cancel": "ABORT",
}
_RUN_NAMESPACE = uuid.UUID("6f1c4d1e-8a43-5b7e-9f0e-6d7a1c2b3e4f")

#: ``(url, body) -> None``; raises on a delivery that failed.
Post = Callable[[str, dict[str, Any]], None]


def run_uuid(run_id: str) -> str:
    """The OpenLineage run id of an Orchestrion run (stable: UUID 5 of its id)."""
    return str(uuid.uuid5(_RUN_NAMESPACE, run_id))


def run_event(
    kind: str, at: float, run: RunRecord, spec: WorkflowSpec, produced: Iterable[str]
) -> dict[str, Any]:
    """The RunEvent of history row `kind` at `at` for `run`; `produced`: the assets its run
    updated (used for COMPLETE)."""
    event_type = EVENT_TYPES[kind]
    inputs: set[str] = set()
    outputs: set[str] = set()
    for task in spec.tasks:
        inputs.update(ref.key for ref in task.consumes)
        outputs.update(ref.key for ref in task.produces)
    for trigger in spec.triggers:
        inputs.update(trigger.assets or ())
    if event_type == "COMPLETE":
        outputs = set(produced)
    elif event_type != "START":
        outputs = set()
    when = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")
    return {
        "eventType": event_type,
        "eventTime": when.replace("+00:00", "Z"),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_uuid(run.id)},
        "job": {"namespace": spec.namespace, "name": spec.name},
        "inputs": [{"namespace": spec.namespace, "name": k} for k in sorted(inputs)],
        "outputs": [{"namespace": spec.namespace, "name": k} for k in sorted(outputs)],
    }


def http_post(timeout: float = 5.0) -> Post:
    """Posts with httpx: any answer but 2xx, or none within `timeout`, is a failure."""

    def post(url: str, body: dict[str, Any]) -> None:
        response = httpx.post(url, json=body, timeout=timeout)
        response.raise_for_status()

    return post


class LineageEmitter:
    """One scheduler's ``lineage`` duty (`tick` under its lease)."""

    def __init__(
        self,
        url: str,
        *,
        reads: ReadStore,
        workflows: WorkflowStore,
        triggers: TriggerStore,
        assets: AssetStore,
        post: Post | None = None,
        batch: int = 200,
    ) -> None:
        self.url = url
        self.reads, self.workflows, self.triggers, self.assets = reads, workflows, triggers, assets
        self.post = post or http_post()
        self.batch = batch
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}

    def tick(self, now: float) -> int:
        """Deliver what happened since the cursor: how many events were posted."""
        position = self.triggers.get_cursor(CURSOR)
        if position is None:
            self.triggers.set_cursor(CURSOR, self.reads.last_event_id(), now=now)
            return 0
        sent, start = 0, position
        for row in self.reads.list_events(after_id=position, limit=self.batch):
            if _notable(row):
                try:
                    self.post(self.url, self._event(row))
                except (httpx.HTTPError, OSError) as exc:
                    log.warning("openlineage.post_failed", extra={"error": str(exc)[:300]})
                    break
                sent += 1
            position = row.id
        if position != start:
            self.triggers.set_cursor(CURSOR, position, now=now)
        return sent

    def _event(self, row: EventRecord) -> dict[str, Any]:
        assert row.run_id is not None
        run = self.reads.get_run(row.run_id)
        spec = self._spec(run.workflow, run.version)
        produced: list[str] = []
        if row.kind == "run.succeed":
            produced = [
                key for key in _declared(spec) if self._made_by(spec.namespace, key, run.id)
            ]
        return run_event(row.kind, row.at, run, spec, produced)

    def _made_by(self, namespace: str, key: str, run_id: str) -> bool:
        return any(e.run_id == run_id for e in self.assets.asset_events(namespace, key, limit=50))

    def _spec(self, name: str, version: str) -> WorkflowSpec:
        found = self._specs.get((name, version))
        if found is None:
            found = self._specs[(name, version)] = self.workflows.get_workflow(name, version).spec
        return found


def _notable(row: EventRecord) -> bool:
    if row.run_id is None or row.kind not in EVENT_TYPES:
        return False
    return row.kind != "run.created" or row.to_state == "running"


def _declared(spec: WorkflowSpec) -> list[str]:
    seen: dict[str, None] = {}
    for task in spec.tasks:
        for ref in task.produces:
            seen[ref.key] = None
    return list(seen)
