"""Task log lines on their way to the store: buffered as tasks write them, sent in batches.

A task's output is captured line by line (`orchestrion.worker.capture`); writing each line
to the database as it comes would make a chatty task as slow as its store. Lines wait here
until the heartbeat flushes them, or until an outcome is reported, so a run's log is
complete once its outcome is recorded.
"""

from __future__ import annotations

import logging
import threading

from orchestrion.clock import Clock
from orchestrion.errors import OrchestrionError
from orchestrion.store.records import Claim, LogLine
from orchestrion.store.runs import RunStore
from orchestrion.worker.context import LogSink

__all__ = ["LogBuffer"]

log = logging.getLogger("orchestrion.worker")

#: A longer line is cut: one runaway line must not make a log row of any size.
_MAX_LINE = 65_536


class LogBuffer:
    """The worker's unsent log lines, shared by every task thread."""

    def __init__(self, runs: RunStore, clock: Clock) -> None:
        self._runs = runs
        self._clock = clock
        self._lines: list[LogLine] = []
        self._lock = threading.Lock()

    def sink_for(self, claim: Claim) -> LogSink:
        """Where the attempt of `claim` writes its lines, stamped with the time written."""

        def sink(stream: str, line: str) -> None:
            entry = LogLine(
                run_id=claim.run_id,
                task_run_id=claim.task_run_id,
                attempt=claim.attempt,
                at=self._clock.now(),
                stream=stream,
                line=line[:_MAX_LINE],
            )
            with self._lock:
                self._lines.append(entry)

        return sink

    def flush(self) -> None:
        """Send the buffered lines. A store error loses them (logged): a log is worth less
        than the attempts whose heartbeats and outcomes share the same store."""
        with self._lock:
            batch, self._lines = self._lines, []
        if batch:
            try:
                self._runs.append_logs(batch)
            except OrchestrionError:
                log.exception("worker.log_flush_failed")
