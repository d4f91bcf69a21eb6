"""Run a shell task: one child process group, streamed output, and nothing left behind.

The worker hands over a *concrete* `ShellAction` (templates already rendered). Values reach
the child only as argv elements (no shell parses them) or as environment variables (a
script reads ``"$NAME"``), so a parameter can never become code.

The child starts in its own session, hence its own process group. Whatever ends the task
(timeout, cancellation, an exception in the worker, or the command finishing while it left
background jobs behind) ends the *whole* group: SIGTERM first, SIGKILL after a grace period.
A task's processes never outlive the task.

Output is read by two threads, one per pipe, so a child that fills stderr while we wait on
stdout cannot deadlock. Each line goes to ``ctx.log_sink`` as it arrives; the sink is called
from those threads and must be thread-safe.

Every place that shortens output (a line cut at `MAX_LINE_BYTES`, the stderr tail of an
error, the preview of stdout that is not JSON) masks the task's secrets *before* cutting
(`ctx.masker`), so a value straddling the cut leaves no fragment behind.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import IO, Any

from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.spec.model import ShellAction
from orchestrion.worker.context import TaskContext
from orchestrion.worker.secrets import HIDDEN_ENV

__all__ = [
    "DEFAULT_KILL_GRACE",
    "MAX_LINE_BYTES",
    "MAX_STDOUT_BYTES",
    "kill_running_process_groups",
    "run_shell",
]

_log = logging.getLogger(__name__)

#: One log line is cut at this many bytes; the rest of that line is dropped.
MAX_LINE_BYTES = 64 * 1024
#: Stdout kept for the result; beyond this a JSON result cannot be parsed.
MAX_STDOUT_BYTES = 16 * 1024 * 1024
#: Seconds between SIGTERM and SIGKILL to the process group.
DEFAULT_KILL_GRACE = 2.0

_POLL_SECONDS = 0.05
_STDERR_TAIL_LINES = 10
_STDERR_TAIL_CHARS = 2000
_READER_JOIN_SECONDS = 5.0
_TRUNCATED_MARK = " [line truncated]"
_PREVIEW_CHARS = 200

# Live children, so the worker can kill every group on its own shutdown.
_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()


def run_shell(
    action: ShellAction,
    ctx: TaskContext,
    *,
    timeout: float | None,
    extra_env: Mapping[str, str] | None = None,
    kill_grace: float = DEFAULT_KILL_GRACE,
    deadline: float | None = None,
) -> Any:
    """Run the action to completion and return its result.

    The result is stdout parsed as JSON (``json_output``) or the last non-empty stdout line
    (None when there is none). Raises `TaskError` on failure, `TaskTimeout` past
    ``timeout`` seconds (counted from `deadline`, a `time.monotonic` value, when the attempt
    has one), `CancelRequested` once ``ctx.cancel_event`` is set.
    """
    argv = _argv(action)
    env = _environment(action, ctx, extra_env)
    proc = _spawn(argv, env, action.cwd)
    try:
        return _supervise(proc, action, ctx, timeout, deadline, kill_grace)
    finally:
        with _running_lock:
            _running.discard(proc)


def kill_running_process_groups(grace: float = DEFAULT_KILL_GRACE) -> int:
    """Kill the process group of every shell task still running; return how many.

    For the worker's shutdown path: the `run_shell` calls then see their child die and
    report it as killed by a signal.
    """
    with _running_lock:
        procs = list(_running)
    threads = [threading.Thread(target=_kill_group, args=(p, grace)) for p in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(procs)


# ------------------------------------------------------------------------------ starting


def _argv(action: ShellAction) -> list[str]:
    """The exact argv; a script runs as ``bash -c SCRIPT`` with its text untouched."""
    if action.argv is not None:
        return list(action.argv)
    assert action.script is not None  # the model guarantees exactly one form
    return ["bash", "-c", action.script]


def _environment(
    action: ShellAction, ctx: TaskContext, extra_env: Mapping[str, str] | None
) -> dict[str, str]:
    """Inherited environment (less the master key), then the action's, then the task
    identity, then the caller's (the task's secrets)."""
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN_ENV}
    env.update(action.env)
    env.update(
        {
            "ORCHESTRION_RUN_ID": ctx.run_id,
            "ORCHESTRION_TASK": ctx.task_name,
            "ORCHESTRION_ATTEMPT": str(ctx.attempt),
            "ORCHESTRION_IDEMPOTENCY_KEY": ctx.idempotency_key,
        }
    )
    if ctx.traceparent:
        env["TRACEPARENT"] = ctx.traceparent  # the attempt's span, for traced programs
    if extra_env:
        env.update(extra_env)
    return env


def _spawn(argv: list[str], env: dict[str, str], cwd: str | None) -> subprocess.Popen[bytes]:
    """Start the child in a new session; turn every start-up failure into a `TaskError`."""
    if cwd is not None and not os.path.isdir(cwd):
        raise TaskError(f"working directory does not exist: {cwd}")
    try:
        proc = subprocess.Popen(
            argv,
            shell=False,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError as exc:
        raise TaskError(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise TaskError(f"permission denied running {argv[0]}: {exc.strerror}") from exc
    except (OSError, ValueError) as exc:
        # ValueError: an argument or environment value holds a NUL byte.
        raise TaskError(f"cannot start {argv[0]}: {exc}") from exc
    with _running_lock:
        _running.add(proc)
    return proc


# ------------------------------------------------------------------------------ waiting


def _supervise(
    proc: subprocess.Popen[bytes],
    action: ShellAction,
    ctx: TaskContext,
    timeout: float | None,
    deadline: float | None,
    grace: float,
) -> Any:
    """Drain the output, wait for the end, clean up the group, and build the result."""
    out = _Reader(proc.stdout, "stdout", ctx, keep_bytes=MAX_STDOUT_BYTES)
    err = _Reader(proc.stderr, "stderr", ctx, keep_bytes=0)
    try:
        code = _wait(proc, ctx, timeout, deadline)
    except BaseException:
        # Timeout, cancel, or the worker itself going down: the group must not survive.
        _kill_group(proc, grace)
        _join_readers(out, err)
        raise
    if _group_alive(proc.pid):
        # The command finished but left background jobs behind (maybe holding our pipes).
        _kill_group(proc, grace)
    _join_readers(out, err)
    if code != 0:
        raise TaskError(_failure_message(code, err.tail, ctx))
    return _result(action, out, ctx)


def _wait(
    proc: subprocess.Popen[bytes], ctx: TaskContext, timeout: float | None, deadline: float | None
) -> int:
    """Wait for exit in short slices so cancel and timeout are noticed within ~50 ms."""
    if deadline is None and timeout is not None:
        deadline = time.monotonic() + timeout
    while True:
        if ctx.cancel_event.is_set():
            raise CancelRequested()
        slice_ = _POLL_SECONDS
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TaskTimeout(f"timed out after {timeout or 0:g}s; process group killed")
            slice_ = min(slice_, remaining)
        try:
            return proc.wait(timeout=slice_)
        except subprocess.TimeoutExpired:
            continue


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in the group.

    Zombies do not count: where PID 1 does not reap orphans (many containers) they stay
    in the group forever, and waiting on them would always cost the full grace period.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """Scan /proc for a non-zombie member; without /proc, assume there is one."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited while we looked
        # Fields after "(comm)": state, ppid, pgrp, ... (comm itself may contain spaces).
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the group, give it ``grace`` seconds to go, then SIGKILL; reap the leader.

    The group id is the leader's pid (new session). The kernel does not hand out a pid
    still in use as a group id, so signalling the group after reaping the leader is safe.
    """
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(grace, 0.0))
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    # Unconditional: zombies keep the group "alive" forever where nobody reaps orphans.
    _signal_group(pgid, signal.SIGKILL)
    proc.wait()


# ------------------------------------------------------------------------------ output


class _Reader:
    """Drains one pipe in a daemon thread, forwarding lines to the log sink as they arrive."""

    def __init__(
        self, pipe: IO[bytes] | None, stream: str, ctx: TaskContext, *, keep_bytes: int
    ) -> None:
        assert pipe is not None
        self._pipe = pipe
        self._stream = stream
        self._sink = ctx.log_sink
        self._masker = ctx.masker
        self._keep_bytes = keep_bytes
        self.kept = bytearray()
        self.overflowed = False
        self.last_line: str | None = None
        self.tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._sink_failed = False
        self.thread = threading.Thread(
            target=self._run, name=f"orchestrion-shell-{stream}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        try:
            self._pump()
        except (OSError, ValueError):
            # The pipe broke or was closed under us; there is nothing more to read.
            pass
        finally:
            with contextlib.suppress(OSError):
                self._pipe.close()

    def _pump(self) -> None:
        discarding = False  # inside an over-long line whose head was already emitted
        while chunk := self._pipe.readline(MAX_LINE_BYTES):
            self._keep(chunk)
            complete = chunk.endswith(b"\n")
            if discarding:
                discarding = not complete
                continue
            if not complete and len(chunk) >= MAX_LINE_BYTES:
                # The rest of the line is dropped: what is kept may end inside a secret.
                discarding = True
                text = self._masker.scrub_end(_decode_cut(chunk)) + _TRUNCATED_MARK
            else:
                text = self._masker.mask(_decode_line(chunk))
            self._line(text)

    def _keep(self, chunk: bytes) -> None:
        if self._keep_bytes <= 0 or self.overflowed:
            return
        room = self._keep_bytes - len(self.kept)
        if len(chunk) > room:
            self.overflowed = True
            chunk = chunk[:room]
        self.kept += chunk

    def _line(self, text: str) -> None:
        if text.strip():
            self.last_line = text
            self.tail.append(text)
        try:
            self._sink(self._stream, text)
        except Exception:
            # A broken sink must not stop the draining, or the child would block on a full
            # pipe. Report it once, not once per line.
            if not self._sink_failed:
                self._sink_failed = True
                _log.exception(
                    "log sink failed for %s; further failures are not logged", self._stream
                )


def _decode_line(chunk: bytes) -> str:
    if chunk.endswith(b"\n"):
        chunk = chunk[:-1]
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
    return chunk.decode("utf-8", errors="replace")


def _decode_cut(chunk: bytes) -> str:
    """A chunk cut at a byte count, without the partial character the cut may end in (it
    would decode to U+FFFD and hide the fragment before it from `Masker.scrub_end`)."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(chunk, final=False)


def _join_readers(*readers: _Reader) -> None:
    """Wait for the pipes to drain; give up on one a process outside the group still holds."""
    deadline = time.monotonic() + _READER_JOIN_SECONDS
    for reader in readers:
        reader.thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        if reader.thread.is_alive():
            _log.warning("shell output pipe still open after the process group was killed")


# ------------------------------------------------------------------------------ results


def _failure_message(code: int, stderr_tail: deque[str], ctx: TaskContext) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        message = f"command killed by {name}"
    else:
        message = f"command exited with status {code}"
    if stderr_tail:
        tail = ctx.masker.tail("\n".join(stderr_tail), _STDERR_TAIL_CHARS)
        message += f"; stderr ends with:\n{tail}"
    return message


def _result(action: ShellAction, out: _Reader, ctx: TaskContext) -> Any:
    if not action.json_output:
        return out.last_line
    if out.overflowed:
        raise TaskError(f"stdout larger than {MAX_STDOUT_BYTES} bytes; cannot parse it as JSON")
    text = out.kept.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        preview = ctx.masker.head(text, _PREVIEW_CHARS)
        raise TaskError(f"stdout is not valid JSON ({exc}): {preview!r}") from exc
