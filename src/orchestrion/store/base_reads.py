"""The web UI's batched reads of the `Store`, kept apart so that `store/base.py` reads as
the engine's verbs. `orchestrion.store.base.Store` inherits them; `SqlUiReads` implements
them once for both dialects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from orchestrion.store.records import AttemptRecord, EventRecord, RunMark, TaskRunRecord

__all__ = ["UiReadStore"]


class UiReadStore(Protocol):
    # ------------------------------------------------------------ web UI reads (issue 5)
    # Batched: one statement per page section, whatever the number of workflows listed.

    def last_runs(self, workflows: Sequence[str], *, per: int) -> dict[str, list[RunMark]]:
        """The newest `per` runs of each of `workflows`, newest first (every name a key)."""
        ...

    def run_state_counts(
        self, *, since: float, workflows: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Run state -> how many runs were created at or after `since` (of `workflows`
        only, when given)."""
        ...

    def task_items(self, run_id: str, task_name: str, *, limit: int) -> dict[int, Any]:
        """Map index -> element, for the first `limit` items of a mapped task."""
        ...

    def task_results(self, run_id: str, names: Iterable[str]) -> dict[str, Any]:
        """The results of the (unmapped or group) task runs called `names`, by name."""
        ...

    def find_events(
        self,
        *,
        kind: str = "",
        run_id: str = "",
        workflow: str = "",
        before: int = 0,
        limit: int = 200,
    ) -> list[EventRecord]:
        """History rows newest first, filtered by kind prefix, run and workflow, with ids
        below `before` (a cursor; 0 for the newest)."""
        ...

    def task_runs_named(self, run_id: str, task_name: str) -> list[TaskRunRecord]:
        """The task runs of one task of a run (a mapped task's group and items, by index)."""
        ...

    def attempts_of(self, task_run_ids: Sequence[int]) -> list[AttemptRecord]:
        """The attempts of these task runs, oldest first."""
        ...
