"""Open the container engine and make sure an image is there, with errors that say what to do.

``docker`` is imported here, and this module only by the code that runs a container task or
looks for orphans: a worker that never meets one never loads it (start-up imports are
pinned by tests/unit/test_startup_imports.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orchestrion.errors import TaskError, TaskTimeout
from orchestrion.spec.container import ContainerAction
from orchestrion.worker.containers.settings import ContainerSettings
from orchestrion.worker.context import TaskContext

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = ["api_problem", "ensure_image", "open_engine"]

#: Pull progress is logged once per this many messages at most (layers report often).
_PULL_LOG_EVERY = 50


@contextlib.contextmanager
def open_engine(settings: ContainerSettings) -> Iterator[DockerClient]:
    """A client of the engine, answering (pinged); `TaskError` naming the address and the
    settings when it does not. Closed on leaving."""
    import docker

    socket = settings.base_url.removeprefix("unix://")
    if settings.base_url.startswith("unix://") and not os.path.exists(socket):
        # Checked first: the client leaks its socket when connecting to a missing path.
        raise TaskError(_unreachable(settings, FileNotFoundError(f"no socket at {socket}")))
    try:
        client = docker.DockerClient(base_url=settings.base_url, timeout=int(settings.api_timeout))
    except docker.errors.DockerException as exc:
        raise TaskError(_unreachable(settings, exc)) from None
    try:
        try:
            client.ping()
        except Exception as exc:  # requests' connection errors and docker's own
            raise TaskError(_unreachable(settings, exc)) from None
        yield client
    finally:
        client.close()


def _unreachable(settings: ContainerSettings, exc: BaseException) -> str:
    return (
        f"cannot reach the container engine at {settings.base_url} ({_short(exc)}); set"
        " ORCHESTRION_CONTAINER_HOST (or DOCKER_HOST) to the engine's API, such as"
        " unix:///run/podman/podman.sock"
    )


def ensure_image(
    client: DockerClient,
    action: ContainerAction,
    ctx: TaskContext,
    *,
    deadline: float | None = None,
) -> None:
    """Have `action.image` on the engine as its pull policy says; `TaskError` when it cannot
    be had (no such image, no registry, no access), naming the image. A pull counts against
    the attempt's time: `TaskTimeout` once the monotonic `deadline` passes."""
    import docker
    from docker.utils import parse_repository_tag

    image = action.image
    if action.pull != "always" and _has_image(client, image):
        return
    if action.pull == "never":
        raise TaskError(
            f"image {image!r} is not on the container engine and the task says pull: never;"
            " build or load it on the worker's engine first"
        )
    ctx.log(f"pulling image {image}")
    repository, tag = parse_repository_tag(image)
    try:
        progress = client.api.pull(repository, tag=tag or "latest", stream=True, decode=True)
        for n, item in enumerate(progress):
            ctx.check_cancel()
            if deadline is not None and time.monotonic() >= deadline:
                raise TaskTimeout(f"timed out while pulling image {image!r}")
            if isinstance(item, dict) and item.get("error"):
                raise TaskError(f"cannot pull image {image!r}: {item['error']}")
            if n % _PULL_LOG_EVERY == 0 and isinstance(item, dict) and item.get("status"):
                ctx.log(f"pull: {item['status']}")
    except docker.errors.APIError as exc:
        raise TaskError(f"cannot pull image {image!r}: {api_problem(exc)}") from None
    except docker.errors.DockerException as exc:
        raise TaskError(f"cannot pull image {image!r}: {_short(exc)}") from None
    if not _has_image(client, image):
        raise TaskError(f"cannot pull image {image!r}: the engine did not get it")


def _has_image(client: DockerClient, image: str) -> bool:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise TaskError(f"cannot look up image {image!r}: {api_problem(exc)}") from None
    return True


def api_problem(exc: Any) -> str:
    """What the engine said (its explanation), not the client's wrapping of it."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + "..."
