"""Tables, progress lines and JSON for the CLI. Formatting only; no decisions."""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrion.store.record import as_dict, is_record
from orchestrion.store.records import AttemptRecord, EventRecord, RunRecord, TaskRunRecord

if TYPE_CHECKING:  # `orchestrion run` loads no API module (tests/unit/test_startup_imports.py)
    from orchestrion.api.wire import Wire

__all__ = [
    "Progress",
    "as_shown",
    "attempts_table",
    "dump_json",
    "runs_table",
    "stream_json",
    "summarise",
    "task_runs_table",
]

#: A mapped task with more items than this is summarised rather than listed item by item.
MAPPED_DETAIL = 20
#: How many failed items of a summarised mapped task are listed.
FAILURES_SHOWN = 10
#: How many of the slowest items of a summarised mapped task are listed.
SLOWEST_SHOWN = 5

STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "upstream_failed": "red",
    "canceled": "yellow",
    "running": "cyan",
    "queued": "blue",
    "retry_wait": "magenta",
    "waiting": "cyan",
    "skipped": "dim",
    "pending": "dim",
    "compensating": "magenta",
    "compensated": "magenta",
}


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def took(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = end - start
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def short(value: Any, limit: int = 60) -> str:
    stored = stored_text(value)
    if stored is not None:
        return stored
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stored_text(value: Any) -> str | None:
    """How a result kept in the object store reads: its size and where it is."""
    from orchestrion.store.objects import ObjectRef

    ref = ObjectRef.of(value)
    return None if ref is None else f"stored, {size_text(ref.size)} at {ref.uri}"


def size_text(size: int) -> str:
    """A byte count for people (``2.0 MB``)."""
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{size} B"


def runs_table(runs: list[RunRecord]) -> Table:
    """Runs as a table, one line each: id, workflow, state, trigger, creation time and duration."""
    table = Table(box=None, header_style="bold")
    for col in ("RUN", "WORKFLOW", "STATE", "TRIGGER", "CREATED", "DURATION"):
        table.add_column(col)
    for run in runs:
        table.add_row(
            run.id,
            run.workflow,
            state_text(run.state.value),
            run.trigger,
            when(run.created_at),
            took(run.started_at, run.finished_at),
        )
    return table


def task_name(tr: TaskRunRecord) -> str:
    return f"{tr.task_name}[{tr.map_index}]" if tr.map_index >= 0 else tr.task_name


def task_runs_table(task_runs: list[TaskRunRecord]) -> Table:
    """A run's task runs as a table, with each one's result or error cut short."""
    table = Table(box=None, header_style="bold")
    for col in ("TASK", "STATE", "ATTEMPTS", "STARTED", "DURATION", "RESULT / ERROR"):
        table.add_column(col, overflow="fold")
    for tr in task_runs:
        detail = tr.error if tr.error else ("" if tr.result is None else short(tr.result))
        if tr.cache_run_id is not None:  # reused, not computed: say where it came from
            detail = f"{detail}  (from cache: run {tr.cache_run_id})"
        table.add_row(
            task_name(tr),
            state_text(tr.state.value),
            str(tr.attempts),
            when(tr.started_at),
            took(tr.started_at, tr.finished_at),
            Text(detail),  # user data: never parsed as markup
        )
    return table


def summarise(
    task_runs: Sequence[TaskRunRecord], slowest: int = SLOWEST_SHOWN
) -> tuple[list[TaskRunRecord], list[str]]:
    """The task runs worth a table row, and a note per summarised mapped task.

    A mapped task of more than `MAPPED_DETAIL` items keeps its group row, its failed items
    (the first `FAILURES_SHOWN`) and its `slowest` slowest; the note counts its items by
    state. A 10,000-item run is then a screenful, not 10,003 rows."""
    items: dict[str, list[TaskRunRecord]] = {}
    for tr in task_runs:
        if tr.map_index >= 0:
            items.setdefault(tr.task_name, []).append(tr)
    big = {name: group for name, group in items.items() if len(group) > MAPPED_DETAIL}
    keep: set[int] = set()
    notes = []
    for name, group in big.items():
        failed = [tr for tr in group if tr.state.value == "failed"]
        timed = [tr for tr in group if tr.started_at is not None and tr.finished_at is not None]
        slow = heapq.nlargest(
            slowest, timed, key=lambda tr: (tr.finished_at or 0) - (tr.started_at or 0)
        )
        keep.update(tr.id for tr in failed[:FAILURES_SHOWN] + slow)
        counts = Counter(tr.state.value for tr in group)
        by_state = ", ".join(f"{n:,} {state}" for state, n in counts.most_common())
        shown = f"the {len(slow)} slowest"
        if failed:
            more = len(failed) - FAILURES_SHOWN
            shown = (
                f"{min(len(failed), FAILURES_SHOWN)} failed"
                + (f" ({more:,} more not shown)" if more > 0 else "")
                + f" and {shown}"
            )
        notes.append(f"{name}: {len(group):,} mapped items ({by_state}); rows shown: {shown}")
    rows = [tr for tr in task_runs if tr.map_index < 0 or tr.task_name not in big or tr.id in keep]
    return rows, notes


def attempts_table(attempts: list[AttemptRecord], names: dict[int, str]) -> Table:
    """A run's attempts as a table, naming each attempt's task by `names` (task run id -> name)."""
    table = Table(box=None, header_style="bold")
    for col in ("TASK", "#", "WORKER", "STARTED", "DURATION", "OUTCOME", "ERROR"):
        table.add_column(col, overflow="fold")
    for a in attempts:
        table.add_row(
            names.get(a.task_run_id, str(a.task_run_id)),
            str(a.number),
            a.worker,
            when(a.started_at),
            took(a.started_at, a.finished_at),
            state_text(a.outcome or "running"),
            Text(short(a.error or "", 80)),
        )
    return table


def dump_json(value: Any) -> str:
    """`value` as indented JSON, records (and dataclasses) included, for ``--output json``."""

    def default(obj: Any) -> Any:
        if is_record(obj):
            return as_dict(obj)
        return str(obj)

    if isinstance(value, list):
        value = [as_dict(v) if is_record(v) else v for v in value]
    elif is_record(value):
        value = as_dict(value)
    return json.dumps(value, default=default, indent=2)


def _plain(value: Any) -> Any:
    return as_dict(value) if is_record(value) else value


def _indented(value: Any, indent: int) -> str:
    text = json.dumps(_plain(value), default=str, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + " " * indent)  # JSON strings hold no raw newline


def as_shown(wire: Wire[Any]) -> Callable[[Any], dict[str, Any]]:
    """A record as ``-o json`` prints it: its fields (as `as_dict`) but those its API `wire`
    does not carry (leases, deadlines: the server's bookkeeping), so that a command prints
    the same locally and with ``--server``."""
    from orchestrion.api.wire import GIVEN

    dropped = {name for name, default in wire.hidden.items() if default is not GIVEN}

    def shown(record: Any) -> dict[str, Any]:
        return {k: v for k, v in as_dict(record).items() if k not in dropped}

    return shown


def stream_json(write: Callable[[str], Any], fields: Sequence[tuple[str, Any]]) -> None:
    """Write the JSON object of `fields` (key, value) piece by piece, as
    ``json.dumps(..., indent=2)`` would print it. A value that is an iterator is written one
    item at a time: a 100,000-item run's rows never become one string in memory (nor rich's
    parsed and re-highlighted copy of it)."""
    write("{")
    for i, (key, value) in enumerate(fields):
        write(("," if i else "") + "\n  " + json.dumps(key) + ": ")
        if not isinstance(value, Iterator):
            write(_indented(value, 2))
            continue
        first = True
        write("[")
        for item in value:
            write(("" if first else ",") + "\n    " + _indented(item, 4))
            first = False
        write("]" if first else "\n  ]")
    write("\n}\n")


class Progress:
    """Prints one line per task state change (retries included), read from the run's event
    history so that no transition between two polls is missed."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._last_event = 0
        self._names: dict[int, TaskRunRecord] = {}

    def __call__(self, run: RunRecord, task_runs: list[TaskRunRecord]) -> None:
        """Take the run's current task runs, so that `events` can name the task of each event."""
        self._names = {tr.id: tr for tr in task_runs}

    def events(self, events: list[EventRecord]) -> None:
        """Print a line for each task state change in `events`, with the attempt number of a retry,
        the error of a failure and the duration of a success."""
        for event in events:
            self._last_event = max(self._last_event, event.id)
            tr = self._names.get(event.task_run_id or -1)
            if tr is None or event.to_state in (None, "pending"):
                continue
            state = event.to_state or ""
            line = Text.assemble(
                (dt.datetime.fromtimestamp(event.at).strftime("%H:%M:%S "), "dim"),
                (f"{task_name(tr):<28} ", "bold"),
                state_text(state),
            )
            data = event.data or {}
            if state == "running" and int(data.get("attempt", 1)) > 1:
                line.append(f"  attempt {data['attempt']}", style="magenta")
            if data.get("error") and state in ("failed", "retry_wait", "upstream_failed"):
                line.append(f"  {short(str(data['error']), 100)}", style="red")
            if state == "succeeded" and tr.started_at and tr.finished_at:
                line.append(f"  {took(tr.started_at, tr.finished_at)}", style="dim")
            self.console.print(line, highlight=False)

    @property
    def last_event(self) -> int:
        """The id of the last event printed: the next poll asks for the events after it."""
        return self._last_event
