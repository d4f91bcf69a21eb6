"""Run one attempt of a container task: a fresh container, streamed output, nothing left.

The worker hands over a *concrete* `ContainerAction` (templates rendered). The container
gets only what the task declares: its environment (the action's ``env``, the attempt's
identity, ``TRACEPARENT`` when traced, then the task's secrets: never the worker's own
environment) and a work folder made for this attempt, mounted at ``work_dir`` with
``inputs.json`` (params, upstream results, item) in it.

Each container carries the labels of its attempt (`settings.LABEL_*`). Whatever ends the
attempt (exit, timeout, cancellation, an error here) ends with the container removed: a
timeout or cancellation first stops it (SIGTERM, SIGKILL after `stop_grace`). A worker
killed outright cannot; the reaper (`reaper`) removes its containers once its lease is
reaped.

stdout and stderr are followed by `output.LogFollower`, so lines reach the task's log as
the container prints them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import shutil
import signal
import tarfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.spec.container import ContainerAction, ResultFile, memory_bytes
from orchestrion.worker.containers.engine import api_problem, ensure_image, open_engine
from orchestrion.worker.containers.output import LogFollower, join_followers
from orchestrion.worker.containers.settings import (
    LABEL_ATTEMPT,
    LABEL_RUN,
    LABEL_TASK_RUN,
    ContainerSettings,
)
from orchestrion.worker.context import TaskContext
from orchestrion.worker.shell import MAX_STDOUT_BYTES

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

__all__ = ["MAX_RESULT_FILE_BYTES", "run_container"]

_log = logging.getLogger(__name__)

#: A result file larger than this is refused (it would become one stored JSON value).
MAX_RESULT_FILE_BYTES = 16 * 1024 * 1024

_POLL_SECONDS = 0.05
_STDERR_TAIL_CHARS = 2000
_PREVIEW_CHARS = 200


def run_container(
    action: ContainerAction,
    ctx: TaskContext,
    *,
    timeout: float | None,
    extra_env: Mapping[str, str] | None = None,
    settings: ContainerSettings | None = None,
    inputs: Mapping[str, Any] | None = None,
    files: Mapping[str, Path] | None = None,
    deadline: float | None = None,
) -> Any:
    """Run the action's container to its end and return the result its ``result`` names.

    `extra_env` (the task's secrets) goes into this container's environment only; `inputs`
    is written to ``inputs.json`` in the work folder. Raises `TaskError` on a failure (the
    engine unreachable, an image that cannot be had, a non-zero exit, a bad result),
    `TaskTimeout` past `timeout` seconds, `CancelRequested` once the attempt must stop.
    `deadline` (a `time.monotonic` value) is the attempt's, set when the worker took the
    claim: counting from it, this function's timeout fires before the worker's watchdog
    (a second later) and its message says what was stopped.
    """
    settings = settings or ContainerSettings()
    if deadline is None and timeout is not None:
        deadline = time.monotonic() + timeout
    ctx.check_cancel()
    with open_engine(settings) as client:
        ensure_image(client, action, ctx, deadline=deadline)
        ctx.check_cancel()
        if deadline is not None and time.monotonic() >= deadline:
            raise TaskTimeout(f"timed out after {timeout or 0:g}s getting image {action.image!r}")
        work = _work_folder(settings, ctx, inputs or {})
        _place_results(work, files or {})
        try:
            container = _create(client, action, ctx, work, extra_env or {})
            try:
                return _supervise(client, container, action, ctx, deadline, timeout, settings)
            finally:
                _remove(container)
        finally:
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------ starting


def _work_folder(settings: ContainerSettings, ctx: TaskContext, inputs: Mapping[str, Any]) -> str:
    """A fresh folder for this attempt, with ``inputs.json``; removed when it ends."""
    os.makedirs(settings.work_root, mode=0o700, exist_ok=True)
    name = f"{ctx.run_id}-{ctx.task_run_id}-{ctx.attempt}-{secrets.token_hex(3)}"
    path = os.path.join(settings.work_root, name)
    os.makedirs(path, mode=0o777)
    os.chmod(path, 0o777)  # the image's user may not be ours: it must write its outputs
    with open(os.path.join(path, "inputs.json"), "w", encoding="utf-8") as handle:
        json.dump(dict(inputs), handle, default=str)
    return path


def _place_results(work: str, files: Mapping[str, Path]) -> None:
    """Stored upstream results into the work folder as ``results/<task>.json``, each a
    streamed copy: not a hard link, which the container (root inside) could write through
    into the stored object that other tasks read."""
    if not files:
        return
    folder = os.path.join(work, "results")
    os.makedirs(folder, mode=0o755)
    for name, source in files.items():
        target = os.path.join(folder, f"{name}.json")
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)  # the image's user may not be ours


def _environment(
    action: ContainerAction, ctx: TaskContext, extra_env: Mapping[str, str]
) -> dict[str, str]:
    env = dict(action.env)
    env.update(
        {
            "ORCHESTRION_RUN_ID": ctx.run_id,
            "ORCHESTRION_TASK": ctx.task_name,
            "ORCHESTRION_ATTEMPT": str(ctx.attempt),
            "ORCHESTRION_IDEMPOTENCY_KEY": ctx.idempotency_key,
            "ORCHESTRION_WORK_DIR": action.work_dir,
        }
    )
    if ctx.traceparent:
        env["TRACEPARENT"] = ctx.traceparent
    env.update(extra_env)
    return env


def _create(
    client: DockerClient,
    action: ContainerAction,
    ctx: TaskContext,
    work: str,
    extra_env: Mapping[str, str],
) -> Container:
    import docker

    limits: dict[str, Any] = {}
    if action.resources.cpus is not None:
        limits["nano_cpus"] = int(action.resources.cpus * 1e9)
    if action.resources.memory is not None:
        limits["mem_limit"] = memory_bytes(action.resources.memory)
    try:
        return client.containers.create(
            action.image,
            command=None if action.command is None else list(action.command),
            entrypoint=None if action.entrypoint is None else list(action.entrypoint),
            environment=_environment(action, ctx, extra_env),
            labels={
                LABEL_RUN: ctx.run_id,
                LABEL_TASK_RUN: str(ctx.task_run_id),
                LABEL_ATTEMPT: str(ctx.attempt),
            },
            name=f"orchestrion-{ctx.run_id}-{ctx.task_run_id}-{ctx.attempt}-{secrets.token_hex(2)}",
            volumes={work: {"bind": action.work_dir, "mode": "rw"}},
            detach=True,
            **limits,
        )
    except docker.errors.APIError as exc:
        raise TaskError(f"cannot create the container: {api_problem(exc)}") from None


# ------------------------------------------------------------------------------ waiting


def _supervise(
    client: DockerClient,
    container: Container,
    action: ContainerAction,
    ctx: TaskContext,
    deadline: float | None,
    timeout: float | None,
    settings: ContainerSettings,
) -> Any:
    import docker

    try:
        container.start()
    except docker.errors.APIError as exc:
        raise TaskError(f"cannot start the container: {api_problem(exc)}") from None
    out = LogFollower(client, container.id or "", "stdout", ctx, keep_bytes=MAX_STDOUT_BYTES)
    err = LogFollower(client, container.id or "", "stderr", ctx, keep_bytes=0)
    waiter = _Waiter(client, container.id or "")
    try:
        while not waiter.done.wait(_POLL_SECONDS):
            if ctx.cancel_event.is_set():
                raise CancelRequested()
            if deadline is not None and time.monotonic() >= deadline:
                raise TaskTimeout(
                    f"timed out after {timeout or 0:g}s; container killed and removed"
                )
    except TaskTimeout:
        # A hard limit, which the worker enforces itself a second later: no grace, and
        # one call that kills and removes.
        _remove(container)
        join_followers(out, err)
        raise
    except BaseException:
        _stop(container, settings.stop_grace)
        join_followers(out, err)
        raise
    join_followers(out, err)
    if waiter.error is not None:
        raise TaskError(f"lost track of the container: {waiter.error}")
    if waiter.status != 0:
        raise TaskError(_failure_message(container, waiter.status, action, err.tail, ctx))
    return _result(container, action, out, ctx)


class _Waiter:
    """Waits for the container's end in a thread (the engine answers when it exits)."""

    def __init__(self, client: DockerClient, container_id: str) -> None:
        self.done = threading.Event()
        self.status = -1
        self.error: str | None = None
        self._client = client
        self._id = container_id
        threading.Thread(target=self._run, name="orchestrion-container-wait", daemon=True).start()

    def _run(self) -> None:
        try:
            answer = self._client.api.wait(self._id, timeout=None)
            self.status = int(answer.get("StatusCode", -1))
        except Exception as exc:  # removed under us, or the engine went away
            self.error = api_problem(exc)
        finally:
            self.done.set()


def _stop(container: Container, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (the engine does both)."""
    with contextlib.suppress(Exception):
        container.stop(timeout=max(int(grace), 0))


def _remove(container: Container) -> None:
    """Remove it (killing it if it still runs); gone already is fine."""
    try:
        container.remove(force=True)
    except Exception as exc:
        if "no such container" not in str(exc).lower() and "404" not in str(exc):
            _log.warning("container.remove_failed", extra={"container": container.id})


# ------------------------------------------------------------------------------ results


def _failure_message(
    container: Container,
    status: int,
    action: ContainerAction,
    stderr_tail: deque[str],
    ctx: TaskContext,
) -> str:
    message = f"container exited with status {status}"
    limit = action.resources.memory
    oom = False
    with contextlib.suppress(Exception):
        container.reload()
        oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
    if oom:
        message = f"container killed: out of memory (limit {limit})"
    elif status > 128:
        # Not every engine says OOMKilled (Podman on cgroup v1 does not): name the signal,
        # and the likely cause when it is SIGKILL under a memory limit.
        with contextlib.suppress(ValueError):
            message += f" (killed by {signal.Signals(status - 128).name}"
            message += f"; out of memory? its limit is {limit})" if status == 137 and limit else ")"
    if stderr_tail:
        tail = ctx.masker.tail("\n".join(stderr_tail), _STDERR_TAIL_CHARS)
        message += f"; stderr ends with:\n{tail}"
    return message


def _result(
    container: Container, action: ContainerAction, out: LogFollower, ctx: TaskContext
) -> Any:
    form = action.result
    if isinstance(form, ResultFile):
        return _parse(_read_file(container, form.file), f"result file {form.file}", ctx)
    if form == "none":
        return None
    if form == "last-line":
        return out.last_line
    if out.overflowed:
        raise TaskError(f"stdout larger than {MAX_STDOUT_BYTES} bytes; cannot parse it as JSON")
    return _parse(bytes(out.kept), "stdout", ctx)


def _read_file(container: Container, path: str) -> bytes:
    """The file's bytes, copied out of the exited container (before it is removed)."""
    import docker

    try:
        stream, stat = container.get_archive(path)
        if int((stat or {}).get("size", 0)) > MAX_RESULT_FILE_BYTES:
            raise TaskError(f"result file {path} is larger than {MAX_RESULT_FILE_BYTES} bytes")
        data = b"".join(stream)
    except docker.errors.NotFound:
        raise TaskError(f"the container wrote no result file {path}") from None
    except docker.errors.APIError as exc:
        raise TaskError(f"cannot read result file {path}: {api_problem(exc)}") from None
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = next((m for m in archive.getmembers() if m.isfile()), None)
        handle = None if member is None else archive.extractfile(member)
        if handle is None:
            raise TaskError(f"result file {path} is not a regular file")
        return handle.read(MAX_RESULT_FILE_BYTES + 1)


def _parse(data: bytes, what: str, ctx: TaskContext) -> Any:
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        preview = ctx.masker.head(text, _PREVIEW_CHARS)
        raise TaskError(f"{what} is not valid JSON ({exc}): {preview!r}") from None
