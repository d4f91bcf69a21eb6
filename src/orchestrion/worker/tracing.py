"""A worker's spans (docs/operating.md): one per attempt it runs. Runs' own spans come
from the ``traces`` duty (`orchestrion.triggers.traces`), whoever ended the run.

Ids come from `orchestrion.telemetry.tracing`: the trace from the run tree's top-level run,
the run span from the run, an attempt span from its task run and lease epoch, so a child
run's span hangs under the attempt of the sub-workflow task that started it, whichever
worker process ran either. Tracing never fails a task: a store read that fails here only
leaves that span out (and says so in the log).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from orchestrion.clock import Clock
from orchestrion.store.metric_records import TraceLineage
from orchestrion.store.records import Claim, Outcome
from orchestrion.store.runs import RunStore
from orchestrion.telemetry.tracing import (
    Attribute,
    SpanRecord,
    Tracer,
    attempt_span_id,
    run_span_id,
    trace_id_of,
)

__all__ = ["AttemptTracing"]

log = logging.getLogger("orchestrion.worker")

#: Lineages kept (a run's root and parent never change); cleared when over.
_LINEAGES_KEPT = 10_000


class AttemptTracing:
    """Spans of the attempts one worker runs and of the runs they end."""

    def __init__(self, runs: RunStore, tracer: Tracer, clock: Clock, worker_id: str) -> None:
        self.runs = runs
        self.worker_id = worker_id
        self.tracer = tracer
        self.clock = clock
        self._lock = threading.Lock()
        self._lineages: dict[str, TraceLineage] = {}
        #: task run id -> (run id, attempt start) of the attempts begun and not yet ended.
        self._begun: dict[int, tuple[str, float]] = {}

    def _lineage(self, run_id: str) -> TraceLineage:
        with self._lock:
            found = self._lineages.get(run_id)
        if found is None:
            found = self.runs.trace_lineage(run_id)
            with self._lock:
                if len(self._lineages) > _LINEAGES_KEPT:
                    self._lineages.clear()
                self._lineages[run_id] = found
        return found

    def begin(self, claim: Claim) -> tuple[int, int] | None:
        """The attempt starts: its (trace id, span id), or None if its lineage is unknown."""
        try:
            lineage = self._lineage(claim.run_id)
        except Exception:  # tracing must never fail a task
            log.warning("trace.lineage_failed", exc_info=True, extra={"run_id": claim.run_id})
            return None
        with self._lock:
            if len(self._begun) > _LINEAGES_KEPT:  # outcomes never reported (fenced)
                self._begun.clear()
            self._begun[claim.task_run_id] = (claim.run_id, self.clock.now())
        span = attempt_span_id(claim.run_id, claim.task_run_id, claim.epoch)
        return trace_id_of(lineage.root_run_id), span

    def end(self, claim: Claim, outcome: Outcome | None) -> None:
        """The attempt's code returned: emit its span (None: it waits on a child run)."""
        with self._lock:
            begun = self._begun.get(claim.task_run_id)
        lineage = self._lineages.get(claim.run_id)
        if begun is None or lineage is None:
            return
        status = "waiting" if outcome is None else outcome.status
        attributes: dict[str, Attribute] = {
            "orchestrion.run_id": claim.run_id,
            "orchestrion.workflow": claim.workflow,
            "orchestrion.task": claim.task_name.removeprefix("undo:"),
            "orchestrion.task_run_id": claim.task_run_id,
            "orchestrion.attempt": claim.attempt,
            "orchestrion.retry": claim.attempt > 1,
            "orchestrion.compensation": claim.kind == "undo",
            "orchestrion.outcome": status,
            "orchestrion.worker": self.worker_id,
        }
        if claim.map_index >= 0:
            attributes["orchestrion.map_index"] = claim.map_index
        kind = "undo" if claim.kind == "undo" else "task"
        self.tracer.emit(
            SpanRecord(
                name=f"{kind} {claim.task_name.removeprefix('undo:')}",
                trace_id=trace_id_of(lineage.root_run_id),
                span_id=attempt_span_id(claim.run_id, claim.task_run_id, claim.epoch),
                parent_span_id=run_span_id(claim.run_id),
                start=begun[1],
                end=self.clock.now(),
                attributes=attributes,
                error=None if outcome is None or outcome.status != "failed" else outcome.error,
            )
        )

    def after_finish(self, outcomes: Sequence[Outcome], now: float) -> None:
        """Outcomes were recorded at `now`: their attempts are over. (The runs they ended
        get their spans from the ``traces`` duty, `orchestrion.triggers.traces`, like runs
        ended any other way.)"""
        with self._lock:
            for o in outcomes:
                self._begun.pop(o.task_run_id, None)

    def forget(self, task_run_id: int) -> None:
        """An attempt that reports nothing (it waits on a child run, or was fenced)."""
        with self._lock:
            self._begun.pop(task_run_id, None)
