"""The ``traces`` duty: one root span per run end, whoever ended the run (docs/operating.md).

Why a duty reading the history, not the process that ended the run: a run ends in many
places (a worker's outcome, a cancel through the API or a local CLI, the maintenance
duty's run timeout, the reaper failing a task whose worker was lost, a parent's cancel
reaching its children), in processes that may have no tracing configured at all (an
operator's ``orchestrion runs cancel``). Every one of those writes a ``run.<event>`` row
in the same transaction that ends the run, so the history is the one place that sees them
all. The duty follows it after a stored cursor (the ``cursors`` table, like run triggers
and notifications) under a lease taken only by processes that trace, so a run's span is
emitted once, by one process, whichever way the run ended.

A crash between emitting and moving the cursor re-emits at most one pass's spans (with
the same derived ids) on the next holder; a span still in the exporter's batch when its
process dies is lost either way, as with every OpenTelemetry batch pipeline.
"""

from __future__ import annotations

import logging
import threading

from orchestrion.clock import Clock
from orchestrion.store.records import FinishedRun
from orchestrion.store.runs import RunStore
from orchestrion.store.triggers import TriggerStore
from orchestrion.telemetry.tracing import (
    SpanRecord,
    Tracer,
    attempt_span_id,
    run_span_id,
    trace_id_of,
)
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import backoff

__all__ = ["CURSOR", "RunSpans"]

log = logging.getLogger("orchestrion.traces")

#: The history reader's name in ``cursors``.
CURSOR = "traces"


class RunSpans:
    """One process's share of the ``traces`` duty (under its lease when given one)."""

    def __init__(
        self,
        runs: RunStore,
        triggers: TriggerStore,
        tracer: Tracer,
        clock: Clock,
        *,
        lease: DutyLease | None = None,
        every: float = 1.0,
        close_tracer: bool = False,
    ) -> None:
        self.runs = runs
        self.triggers = triggers
        self.tracer = tracer
        self.clock = clock
        self.lease = lease
        self.every = every
        #: Shut the tracer down on `stop` (it is this duty's alone).
        self.close_tracer = close_tracer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traces", daemon=True)

    def start(self) -> None:
        """Start following the history (the cursor is placed first, synchronously, so a
        run that ends right after this call still gets its span)."""
        try:
            self.pass_once()
        except Exception:  # tracing never stops a process from starting
            log.exception("trace.pass_failed", extra={"failures": 1})
        self._thread.start()

    def stop(self) -> None:
        """One last pass (spans of runs that ended just now), then give the lease up."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            try:
                self.drain()
            except Exception:  # a database gone at shutdown: nothing more to emit
                log.warning("trace.drain_failed", exc_info=True)
            if self.lease is not None:
                self.lease.release()
        if self.close_tracer:
            self.tracer.shutdown()

    def drain(self) -> None:
        """Pass until the history is read to its end (or the lease is someone else's)."""
        for _ in range(100):
            if not self.pass_once():
                return

    def pass_once(self) -> int:
        """Emit the spans of runs that ended since the cursor, if this process holds the
        duty; how many were read (0 also when it does not hold it)."""
        now = self.clock.now()
        if self.lease is not None and not self.lease.holds(now):
            return 0
        position = self.triggers.get_cursor(CURSOR)
        if position is None:  # first start: trace the runs that end from now on
            _, top = self.triggers.finished_runs(-1)
            self.triggers.set_cursor(CURSOR, top, now=now)
            return 0
        ended, new_position = self.triggers.finished_runs(position)
        for item in ended:
            try:
                self._emit(item, now)
            except Exception:  # one run's lineage unreadable (pruned): skip its span
                log.warning("trace.run_span_failed", exc_info=True, extra={"run_id": item.run.id})
        if new_position != position:
            self.triggers.set_cursor(CURSOR, new_position, now=now)
        return len(ended)

    def _emit(self, item: FinishedRun, now: float) -> None:
        run = item.run  # in the state it ended in (it may have been retried since)
        lineage = self.runs.trace_lineage(run.id)
        parent = None
        if lineage.parent_run_id is not None and lineage.parent_task_run_id is not None:
            # A child run hangs under the attempt of the sub-workflow task that started it.
            parent = attempt_span_id(
                lineage.parent_run_id, lineage.parent_task_run_id, lineage.parent_epoch or 0
            )
        state = run.state.value
        end = run.finished_at if run.finished_at is not None else now
        self.tracer.emit(
            SpanRecord(
                name=f"run {run.workflow}",
                trace_id=trace_id_of(lineage.root_run_id),
                span_id=run_span_id(run.id),
                parent_span_id=parent,
                start=min(run.started_at or run.created_at, end),
                end=end,
                attributes={
                    "orchestrion.run_id": run.id,
                    "orchestrion.workflow": run.workflow,
                    "orchestrion.version": run.version,
                    "orchestrion.outcome": state,
                    "orchestrion.trigger": run.trigger,
                    "orchestrion.error": run.error or "",
                },
                # Failed (a task, a lost worker, a run timeout): ERROR. A user's cancel is
                # not an error of the run; its outcome attribute says canceled.
                error=(run.error or "failed") if state == "failed" else None,
            )
        )

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(backoff(self.every, failures)):
            try:
                self.pass_once()
                failures = 0
            except Exception:  # a daemon loop: log, back off, keep going
                failures += 1
                log.exception("trace.pass_failed", extra={"failures": failures})
