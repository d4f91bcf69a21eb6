"""How many attempts a worker runs at once when nobody says (``--concurrency``).

Why 32 for the worker's threads and for clusters: an attempt there mostly waits — on a shell
command's child process, an HTTP call, a database, or a remote cluster — so a slot costs a
parked thread, not a CPU. More slots also mean larger batches per database round trip: each
finish-and-claim moves as many task runs as ended meanwhile, and measured on PostgreSQL
(``bench/pg_scale_bench.py``, 4 workers) 32 slots cost about half the CPU per task of 8. It
is in line with others' defaults (Airflow's ``parallelism`` 32, Hatchet 100 slots, Temporal
200 activities). The ``process`` executor forks a child per attempt for CPU-bound code, so
there more slots than CPUs only queue for the same cores and cost memory: one per CPU.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_CONCURRENCY", "default_concurrency"]

DEFAULT_CONCURRENCY = 32


def default_concurrency(executor: str) -> int:
    """Slots for a worker whose Python tasks run on `executor` (an ``--executor`` name)."""
    if executor.partition(":")[0] == "process":
        return max(1, os.cpu_count() or 1)
    return DEFAULT_CONCURRENCY
