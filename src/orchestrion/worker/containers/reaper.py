"""Remove the containers of attempts that are over: what a killed worker left running.

A worker removes its containers itself whenever an attempt ends, even by timeout or
cancellation. One killed outright (SIGKILL, a lost machine) cannot: its container runs on
in the engine. Its lease then expires, the housekeeping loop reaps it (the attempt is
recorded ``lost`` and retried), and from then on the store says that attempt is over. The
reaper lists the engine's containers carrying the attempt labels (`settings.LABEL_*`),
asks the store for those attempts, and removes every container whose attempt has an
outcome. A container whose attempt the store does not know is left alone: it belongs to
another installation sharing the engine (run ids are random, so they never match).

Every worker process on a machine with an engine runs one (`ContainerReaper`), so the
engine a container ran on is the one cleaned, whichever worker of that machine is alive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from orchestrion.errors import TaskError
from orchestrion.store.records import AttemptRecord
from orchestrion.worker.containers.settings import (
    LABEL_ATTEMPT,
    LABEL_RUN,
    LABEL_TASK_RUN,
    ContainerSettings,
)

__all__ = ["AttemptsOf", "ContainerReaper", "reap_orphans"]

log = logging.getLogger("orchestrion.worker")

#: ``task run ids -> their attempts`` (`ReadStore.attempts_of`).
AttemptsOf = Callable[[Sequence[int]], list[AttemptRecord]]


def reap_orphans(attempts_of: AttemptsOf, settings: ContainerSettings) -> list[str]:
    """One pass: remove the labelled containers whose attempt is over; their names."""
    from orchestrion.worker.containers.engine import open_engine

    removed: list[str] = []
    with open_engine(settings) as client:
        # The plain listing (no inspect per container, which fails for one removed meanwhile).
        found = client.api.containers(all=True, filters={"label": LABEL_TASK_RUN})
        keyed = [(c, key) for c in found if (key := _key(c.get("Labels"))) is not None]
        if not keyed:
            return removed
        ids = sorted({key[1] for _, key in keyed})
        over = {
            (a.run_id, a.task_run_id, a.number): a.outcome is not None for a in attempts_of(ids)
        }
        for container, key in keyed:
            if not over.get(key):  # running, or unknown here (another installation's)
                continue
            name = _name(container)
            try:
                # Killed first: some engines' forced removal waits out a stop timeout
                # (10 s) for a process that ignores SIGTERM.
                with contextlib.suppress(Exception):
                    client.api.kill(container["Id"])
                client.api.remove_container(container["Id"], force=True)
            except Exception as exc:  # removed meanwhile by its worker, or refused
                log.debug("container.reap_skipped", extra={"error": str(exc)})
                continue
            removed.append(name)
            log.warning(
                "container.reaped", extra={"container": name, "run_id": key[0], "task_run": key[1]}
            )
    return removed


def _name(container: dict[str, Any]) -> str:
    names = container.get("Names") or [container.get("Id", "?")]
    return str(names[0]).lstrip("/")


def _key(labels: dict[str, str] | None) -> tuple[str, int, int] | None:
    labels = labels or {}
    try:
        return labels[LABEL_RUN], int(labels[LABEL_TASK_RUN]), int(labels[LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None


class ContainerReaper:
    """Runs `reap_orphans` every `every` seconds in a daemon thread until stopped. An
    engine that does not answer is noted once and looked at again next time."""

    def __init__(
        self, attempts_of: AttemptsOf, settings: ContainerSettings, every: float = 30.0
    ) -> None:
        self._attempts_of = attempts_of
        self._settings = settings
        self._every = every
        self._stop = threading.Event()
        self._quiet = False  # the engine's absence was logged already
        self._thread = threading.Thread(target=self._loop, name="container-reaper", daemon=True)

    def start(self) -> None:
        """Start looking, at once and then every `every` seconds."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pass in progress (waiting at most 5 s for it)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while True:
            self.pass_once()
            if self._stop.wait(self._every):
                return

    def pass_once(self) -> list[str]:
        """One pass, never raising: the names of the containers removed."""
        try:
            removed = reap_orphans(self._attempts_of, self._settings)
            self._quiet = False
            return removed
        except TaskError as exc:  # no engine here (yet): say so once
            if not self._quiet:
                log.info("container.reaper_idle", extra={"reason": str(exc)})
                self._quiet = True
        except Exception:  # a daemon loop: log and keep going
            log.exception("container.reap_failed")
        return []
