"""A duty held under a lease row, so that one process at a time does it.

Schedulers hold each of their duties (``scheduler.<duty>``) this way, and workers take part
in the maintenance duty under the same lease (`orchestrion.triggers.maintenance`): whoever
is alive sweeps, never two at once, and a killed holder's lease lapses after ``ttl``.
"""

from __future__ import annotations

import logging

from orchestrion.errors import OrchestrionError
from orchestrion.store.triggers import TriggerStore

__all__ = ["DutyLease", "duty_lease_name"]

log = logging.getLogger("orchestrion.scheduler")


def duty_lease_name(duty: str) -> str:
    """The lease row of a duty: ``scheduler.<duty>`` whichever kind of process holds it."""
    return f"scheduler.{duty}"


class DutyLease:
    """One holder's view of one duty's lease: `holds` takes or renews it, `release` ends it."""

    def __init__(self, triggers: TriggerStore, duty: str, holder_id: str, ttl: float) -> None:
        self.triggers = triggers
        self.duty = duty
        self.name = duty_lease_name(duty)
        self.holder_id = holder_id
        self.ttl = ttl
        #: (epoch, expiry) while held as far as this holder knows.
        self._held: tuple[int, float] | None = None

    @property
    def held(self) -> bool:
        """Whether the last `holds` took or kept the lease."""
        return self._held is not None

    def holds(self, now: float) -> bool:
        """Take the lease if free or expired, renew it past half its life; whether held."""
        held = self._held
        if held is not None and now < held[1] - self.ttl / 2:
            return True  # renewed recently enough: spare the write
        epoch = self.triggers.acquire_lease(self.name, self.holder_id, ttl=self.ttl, now=now)
        if epoch is None:
            self._held = None
            return False
        if held is None or held[0] != epoch:
            log.info(
                "scheduler.lease_acquired",
                extra={"duty": self.duty, "epoch": epoch, "holder": self.holder_id},
            )
        self._held = (epoch, now + self.ttl)
        return True

    def release(self) -> None:
        """Give the lease up, if held, so another holder may take it at once."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            self.triggers.release_lease(self.name, self.holder_id, held[0])
        except OrchestrionError:
            log.exception("scheduler.release_failed", extra={"duty": self.duty})
