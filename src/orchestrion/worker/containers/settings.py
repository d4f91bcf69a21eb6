"""Where a worker's container engine is, and the labels that tie a container to its attempt.

Cheap to import (no ``docker``): the App's settings build a `ContainerSettings` for every
worker, whether or not it ever runs a container.
"""

from __future__ import annotations

import os
import tempfile
from typing import Final

import msgspec

__all__ = [
    "DEFAULT_HOST",
    "LABEL_ATTEMPT",
    "LABEL_RUN",
    "LABEL_TASK_RUN",
    "ContainerSettings",
]

#: The Docker Engine's socket when nothing else is configured (what ``docker`` assumes).
DEFAULT_HOST: Final = "unix:///var/run/docker.sock"

#: Every container a worker starts carries these labels: the run, the task run and the
#: attempt number, which is how the reaper finds one whose attempt is over.
LABEL_RUN: Final = "dev.orchestrion.run"
LABEL_TASK_RUN: Final = "dev.orchestrion.task-run"
LABEL_ATTEMPT: Final = "dev.orchestrion.attempt"


def _default_work_root() -> str:
    return os.path.join(tempfile.gettempdir(), "orchestrion-work")


class ContainerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a worker reaches its container engine (``ORCHESTRION_CONTAINER_HOST``, else
    ``DOCKER_HOST``, else Docker's default socket) and where it makes the per-attempt work
    folders it mounts (``ORCHESTRION_CONTAINER_WORK_DIR``: a path the engine can bind-mount,
    so on the engine's own machine)."""

    #: None: not configured (`DEFAULT_HOST` is tried when a container task runs).
    host: str | None = None
    work_root: str = msgspec.field(default_factory=_default_work_root)
    #: Seconds between SIGTERM and SIGKILL when a container is stopped (timeout, cancel).
    stop_grace: float = 5.0
    #: Seconds an API call (other than waiting for the container and reading its logs) may
    #: take before the attempt fails.
    api_timeout: float = 60.0

    @property
    def base_url(self) -> str:
        """The engine's API address."""
        return self.host or DEFAULT_HOST

    def configured(self) -> bool:
        """Whether this machine looks like it has an engine: one is named, or Docker's
        default socket exists. The reaper runs only then, so that workers of a machine
        without containers never try to reach one."""
        if self.host:
            return True
        return os.path.exists(DEFAULT_HOST.removeprefix("unix://"))
