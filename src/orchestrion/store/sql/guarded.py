"""The primitives of a state-changing transaction, under `Advance`'s decisions: guarded
compare-and-sets on task runs and runs (the guard is the state machine of
`orchestrion.states`; each move buffers its event row, written by `flush` in the same
transaction), and the few reads that decisions need, cached for the transaction.

Dialects override the hooks (`for_update`, `lock_admission`, `task_row`, `flush`,
`cas_held`): PostgreSQL locks rows and pipelines writes; SQLite's single writer needs
neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from orchestrion.errors import IllegalTransition, StoreError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    RunEvent,
    RunState,
    TaskEvent,
    run_target,
    task_target,
)
from orchestrion.store.sql.jsontext import dumps, loads
from orchestrion.store.sql.named import Sql, also_set, marks
from orchestrion.store.sql.queries import Q

__all__ = ["Guarded", "SpecLoader", "Tx", "dumps", "loads"]


class Tx(Protocol):
    """The part of a DB-API connection `Advance` uses, with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any:
        """Run one statement; a cursor with ``fetchone``, ``fetchall`` and ``rowcount``."""
        ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any:
        """Run one statement once per parameter row."""
        ...


SpecLoader = Callable[[str, str], WorkflowSpec]


# The state machine's table as the hot path reads it: a row's state is its text, and an
# enum's `.value` and a `TaskState(text)` lookup cost more than the rest of a move.
_TASK_MOVES = frozenset((state.value, event) for state, event in TASK_TRANSITIONS)
_TASK_TARGET = {event: task_target(event).value for event in TaskEvent}
_TASK_KIND = {event: f"task.{event.value}" for event in TaskEvent}


@functools.cache
def _move(query: Sql, columns: tuple[str, ...]) -> str:
    """``Q.move_task_run`` or ``Q.move_run`` also setting `columns`: composed once per
    set of columns (a call site's), since every state change sends one."""
    return query.fill(sets=also_set(columns))


class Guarded:
    """One transaction's guarded writes and cached reads; `flush()` writes the buffered
    event rows."""

    def __init__(self, tx: Tx, spec_of: SpecLoader, now: float) -> None:
        self.tx = tx
        self.spec_of = spec_of
        self.now = now
        self.newly_ready = 0
        #: A run changed state in this transaction (wakes `orchestrion run`'s wait at once).
        self.run_changed = False
        #: Event (or log) rows were written: wakes history followers such as live streams.
        self.wrote_events = False
        self._events: list[tuple[Any, ...]] = []
        self._run_cache: dict[str, Any] = {}
        #: Run id -> task name -> result text, of the task runs this transaction succeeded.
        self._results: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ dialect hooks

    def for_update(self, *, skip_locked: bool = False) -> str:
        """Appended to a read whose rows this transaction goes on to change. Nothing where
        writers are serialised (SQLite); PostgreSQL overrides it to lock the rows."""
        return ""

    def lock_admission(self, workflow: str) -> None:
        """Serialise decisions about `workflow`'s max active runs with concurrent
        transactions (count, then start or queue). A no-op where writers are serialised."""

    # ------------------------------------------------------------------ primitives

    def event(
        self,
        run_id: str | None,
        task_run_id: int | None,
        kind: str,
        from_state: str | None = None,
        to_state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Buffer an event row (written by `flush`, in this transaction)."""
        self.wrote_events = True
        self._events.append(
            (
                run_id,
                task_run_id,
                self.now,
                kind,
                from_state,
                to_state,
                None if data is None else dumps(data),
            )
        )

    def flush(self) -> None:
        """Write the buffered event rows (the last thing a transaction does)."""
        if self._events:
            self.tx.executemany(Q.insert_events, self._events)
            self._events.clear()

    def cas_task(
        self, row: Any, event: TaskEvent, data: dict[str, Any] | None = None, **fields: Any
    ) -> bool:
        """Move task run `row` (as read in this transaction) by `event`; False if it moved."""
        sql, params = self.task_move(row, event, fields)
        if self.tx.execute(sql, params).rowcount != 1:
            return False
        self.task_moved(row, event, data)
        return True

    @staticmethod
    def task_move(
        row: Any, event: TaskEvent, fields: dict[str, Any]
    ) -> tuple[str, tuple[Any, ...]]:
        """The compare-and-set moving `row` by `event` (guarded by the state it was read in)."""
        current = row["state"]
        if (current, event) not in _TASK_MOVES:
            raise IllegalTransition(f"task run cannot {event.value} from {current}")
        return (
            _move(Q.move_task_run, tuple(fields)),
            (_TASK_TARGET[event], *fields.values(), row["id"], current),
        )

    def task_moved(self, row: Any, event: TaskEvent, data: dict[str, Any] | None) -> None:
        """The event row of a move of `row` by `event`."""
        self.event(
            row["run_id"], row["id"], _TASK_KIND[event], row["state"], _TASK_TARGET[event], data
        )

    def cas_held(
        self, row: Any, event: TaskEvent, data: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """`cas_task` on a row this transaction holds locked (it updated the row already):
        it cannot have moved since, so a dialect may send the update without waiting for
        it (`PgAdvance`); should it not move all the same, the transaction fails."""
        if not self.cas_task(row, event, data, **fields):
            raise StoreError(f"task run {row['id']} moved while locked ({event.value})")

    def cas_run(self, run: Any, event: RunEvent, **fields: Any) -> bool:
        """Move `run` (as read in this transaction) by `event`, also writing `fields`;
        False if it moved meanwhile. Writes the event row (with the error, if any)."""
        current = RunState(run["state"])
        if (current, event) not in RUN_TRANSITIONS:
            raise IllegalTransition(f"run cannot {event.value} from {current.value}")
        target = run_target(event)
        cur = self.tx.execute(
            _move(Q.move_run, tuple(fields)),
            (target.value, *fields.values(), run["id"], current.value),
        )
        if cur.rowcount != 1:
            return False
        self.run_changed = True
        data = {"error": fields["error"]} if fields.get("error") else None
        self.event(run["id"], None, f"run.{event.value}", current.value, target.value, data)
        return True

    def task_row(self, task_run_id: int) -> Any:
        """The task run as decisions read it (locked where the dialect locks), or None."""
        return self.tx.execute(Q.task_row, (task_run_id,)).fetchone()

    def run_row(self, run_id: str) -> Any:
        """The run, locked for this transaction where the dialect locks rows: read it
        through here before deciding to change it."""
        return self.tx.execute(Q.run_row + self.for_update(), (run_id,)).fetchone()

    def remember_run(self, run: Any) -> None:
        """A run row (the columns of ``Q.run_row``) just read or returned in this
        transaction: `spec_for_run` need not read it again."""
        self._run_cache[run["id"]] = run

    def spec_for_run(self, run_id: str) -> tuple[WorkflowSpec, Any]:
        """The spec of a run's workflow version, and the run row (read once per
        transaction, unlocked: what a decision needs of it never changes)."""
        run = self._run_cache.get(run_id)
        if run is None:
            run = self.tx.execute(Q.run_row, (run_id,)).fetchone()
            self._run_cache[run_id] = run
        return self.spec_of(run["workflow"], run["version"]), run

    def remember_result(self, run_id: str, task_name: str, result: str) -> None:
        """A top-level task run of `run_id` succeeded in this transaction with `result`
        (JSON text): `results_of` need not read it back."""
        self._results.setdefault(run_id, {})[task_name] = result

    def results_of(self, run_id: str, names: Iterable[str]) -> dict[str, Any]:
        """The results of some top-level tasks of a run, by task name (the ones that have
        a row; a result may be None)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        known = self._results.get(run_id)
        if known is not None and all(name in known for name in wanted):
            return {name: loads(known[name]) for name in wanted}  # the next task of a chain
        rows = self.tx.execute(
            Q.results_of.fill(names=marks(len(wanted))), (run_id, *wanted)
        ).fetchall()
        return {r["task_name"]: loads(r["result"]) for r in rows}
