"""The ``process`` executor: each Python attempt runs in a child process of its own.

Why one process per attempt rather than a reusable pool: killing is then exact. A hung task
is stopped by killing its process and nothing else (killing a pool member would break the
pool for every other attempt), and no state leaks from one attempt into the next.

Children are forked from a ``forkserver`` (started on first use, with orchestrion's worker
modules preloaded), never from the worker itself: forking a process that runs threads (the
worker's claimer, heartbeat and task threads) can copy a held lock into the child. The cost
per attempt is a fork plus loading the task's workflow file in the child (its module is
named after the file stem; the child loads the same file by path) — cheap next to the CPU-
bound work this executor is for; short tasks are faster in the default thread executor.

The child streams captured output back over a pipe as it is produced, so the worker's log
holds every line up to a kill. A second pipe is the child's lifeline: the worker holds its
only write end, so when the worker dies (even by SIGKILL) the child reads end-of-file and
exits at once instead of running on as an orphan; the worker's lease lapses and the attempt
is re-run elsewhere, as for a thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from orchestrion.errors import TaskError
from orchestrion.worker.context import LogSink
from orchestrion.worker.executors import Completion, Invocation, RemoteFailure, run_invocation

__all__ = ["ProcessExecutor"]

#: Imported once by the forkserver, so that each child starts with them. ``__main__`` (the
#: worker's entry script, imported under its guard as ``__mp_main__``) is among them because
#: a child re-imports it otherwise, once per attempt.
_PRELOAD = [
    "__main__",
    "orchestrion.worker.executors",
    "orchestrion.worker.capture",
    "orchestrion.spec.python",
]

#: How long a child that sent its completion may take to exit before it is killed.
_EXIT_WAIT = 5.0


class ProcessExecutor:
    """Runs each Python attempt in a child process of its own, forked from a forkserver, so that a
    hung attempt can be killed alone."""

    name = "process"

    def __init__(self) -> None:
        self._context: ForkServerContext = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._running: set[_ProcessExecution] = set()
        self._lock = threading.Lock()

    def submit(self, invocation: Invocation, log: LogSink) -> _ProcessExecution:
        """Start a child process for `invocation`; `log` receives the child's output as it is
        written. Raises `TaskError` if the process cannot start."""
        results_r, results_w = self._context.Pipe(duplex=False)
        lifeline_r, lifeline_w = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_child_main,
            args=(invocation, results_w, lifeline_r),
            name=f"orchestrion-task-{invocation.task_run_id}",
            daemon=True,
        )
        try:
            process.start()
        except OSError as exc:
            for conn in (results_r, results_w, lifeline_r, lifeline_w):
                conn.close()
            raise TaskError(f"cannot start the task's process: {exc}") from exc
        results_w.close()  # the child holds the only write end: its exit is end-of-file
        lifeline_r.close()
        execution = _ProcessExecution(process, results_r, lifeline_w, log, self._done)
        with self._lock:
            self._running.add(execution)
        return execution

    def close(self) -> None:
        """Kill the children still running: the worker is stopping, and their leases are
        released."""
        with self._lock:
            running = list(self._running)
        for execution in running:
            execution.cancel()

    def _done(self, execution: _ProcessExecution) -> None:
        with self._lock:
            self._running.discard(execution)


class _ProcessExecution:
    def __init__(
        self,
        process: BaseProcess,
        results: Connection,
        lifeline: Connection,
        log: LogSink,
        done: Any,
    ) -> None:
        self.process = process
        self._results = results
        self._lifeline = lifeline
        self._log = log
        self._on_done = done
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait(self, timeout: float) -> Completion | None:
        deadline = time.monotonic() + timeout
        while True:
            if not self._results.poll(max(0.0, deadline - time.monotonic())):
                return None
            try:
                message = self._results.recv()
            except EOFError:  # exited without a completion: killed, crashed, os._exit()
                self.process.join(_EXIT_WAIT)
                code = self.process.exitcode
                self._finish()
                raise TaskError(
                    f"the task's process exited with code {code} before it finished"
                ) from None
            if message[0] == "log":
                self._log(message[1], message[2])
                continue
            completion: Completion = message[1]
            self.process.join(_EXIT_WAIT)
            self._finish()
            return completion

    def cancel(self) -> None:
        self._finish()

    def _finish(self) -> None:
        """Kill the child and what it started, if it still runs, and close the pipes."""
        with self._lock:  # `close` of the executor may cancel while the task thread waits
            if self._closed:
                return
            self._closed = True
        pid = self.process.pid
        if pid is not None and self.process.is_alive():
            # The child leads a group of its own (see `_child_main`); before it made it,
            # there is no such group and only the child is killed.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            self.process.kill()
            self.process.join()
        self._results.close()
        self._lifeline.close()
        self.process.close()
        self._on_done(self)


# ---------------------------------------------------------------------- in the child


def _child_main(invocation: Invocation, results: Connection, lifeline: Connection) -> None:
    # A process group of its own, so that a kill also ends the processes the task started.
    os.setpgid(0, 0)
    threading.Thread(target=_exit_with_worker, args=(lifeline,), daemon=True).start()
    send_lock = threading.Lock()

    def sink(stream: str, line: str) -> None:
        with send_lock:
            results.send(("log", stream, line))

    completion = run_invocation(invocation, sink)
    with send_lock:
        try:
            results.send(("done", completion))
        except Exception as exc:  # the value did not pickle: report that, not a crash
            results.send(
                (
                    "done",
                    Completion(
                        failure=RemoteFailure(
                            message=f"the task's result cannot be sent back: {exc}",
                            error_types=(
                                "orchestrion.errors.TaskError",
                                "orchestrion.errors.OrchestrionError",
                            ),
                            traceback="",
                        )
                    ),
                )
            )
    results.close()


def _exit_with_worker(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()  # returns only at end-of-file: the worker closed it or died
    os._exit(1)
