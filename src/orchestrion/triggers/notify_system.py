"""Pure decisions about the system's own processes for notifications: which workers are
down (``worker.down``) and which broker consumers are failing (``consumer.down``).

A worker is down when the reaper marked it dead, or when it still says ``running`` but has
not sent a heartbeat for `down_after` seconds (a killed worker whose leases nobody reaped
yet); a worker that stopped on purpose (``stopped``) is not. Each worker is reported once
(its id is new per process). A consumer is down while its scheduler reports ``error``,
once per lease epoch of its trigger (a new holder that fails again is news).
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import ConsumerRecord, WorkerRecord
from orchestrion.triggers.notify_rules import Fact

__all__ = ["consumer_facts", "worker_facts"]


def worker_facts(workers: list[WorkerRecord], now: float, down_after: float) -> list[Fact]:
    """A ``worker.down`` fact per worker that is down at `now`, dated at its last sign of
    life (so a rule made later does not hear of it)."""
    out: list[Fact] = []
    for worker in workers:
        silent = worker.state == "running" and worker.heartbeat_at < now - down_after
        if worker.state == "dead" or silent:
            out.append(
                Fact(
                    event="worker.down",
                    subject=worker.id,
                    workflow="",
                    namespace="",
                    tags=(),
                    run_id=None,
                    at=worker.heartbeat_at,
                    detail=f"worker {worker.id} on {worker.host} (pid {worker.pid}), queues "
                    f"{', '.join(worker.queues)}: no heartbeat since its last at "
                    f"{worker.heartbeat_at:.0f}",
                )
            )
    return out


def consumer_facts(
    consumers: list[ConsumerRecord], spec_of: Callable[[str], WorkflowSpec | None]
) -> list[Fact]:
    """A ``consumer.down`` fact per broker consumer in ``error``, about its workflow."""
    out: list[Fact] = []
    for consumer in consumers:
        spec = spec_of(consumer.workflow) if consumer.state == "error" else None
        if spec is None:
            continue
        out.append(
            Fact(
                event="consumer.down",
                subject=f"{consumer.key}@{consumer.epoch}",
                workflow=spec.name,
                namespace=spec.namespace,
                tags=tuple(spec.tags),
                run_id=None,
                at=consumer.updated_at,
                error=consumer.error,
                detail=f"{consumer.kind} consumer of {consumer.destination} on "
                f"{consumer.connection}",
            )
        )
    return out
