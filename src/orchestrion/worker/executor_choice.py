"""Which executor ``--executor NAME`` selects.

Kept apart from `orchestrion.worker.executors` (the seam every executor implements) so that
the executors import the seam and this module imports the executors, never the reverse.
"""

from __future__ import annotations

from orchestrion.errors import OrchestrionError
from orchestrion.worker.executors import EXECUTOR_CHOICES, Executor

__all__ = ["executor_from_name"]


def executor_from_name(name: str) -> Executor | None:
    """The executor ``--executor NAME`` selects; None for ``thread`` (the worker's own
    threads, the default)."""
    if name.startswith("dask://"):  # the scheduler's host:port, over Dask's default TCP
        from orchestrion.worker.cluster_executors import DaskExecutor

        return DaskExecutor.connect("tcp://" + name.removeprefix("dask://"))
    if name.startswith("ray://"):  # a Ray Client server (``ray start --head`` runs one)
        from orchestrion.worker.cluster_executors import RayExecutor

        return RayExecutor.connect(name)
    kind, _, address = name.partition(":")
    if kind == "thread" and not address:
        return None
    if kind == "process" and not address:
        from orchestrion.worker.process_executor import ProcessExecutor

        return ProcessExecutor()
    if kind == "dask" and address:
        from orchestrion.worker.cluster_executors import DaskExecutor

        return DaskExecutor.connect(address)
    if kind == "ray":
        from orchestrion.worker.cluster_executors import RayExecutor

        return RayExecutor.connect(address or None)
    raise OrchestrionError(f"unknown executor {name!r}: expected {EXECUTOR_CHOICES}")
