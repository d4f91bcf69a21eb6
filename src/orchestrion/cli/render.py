"""Tables, progress lines and JSON for the CLI. Formatting only; no decisions."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrion.store.records import AttemptRecord, EventRecord, RunRecord, TaskRunRecord

__all__ = ["Progress", "attempts_table", "dump_json", "runs_table", "task_runs_table"]

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
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        table.add_row(
            task_name(tr),
            state_text(tr.state.value),
            str(tr.attempts),
            when(tr.started_at),
            took(tr.started_at, tr.finished_at),
            Text(detail),  # user data: never parsed as markup
        )
    return table


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
    """`value` as indented JSON, records (dataclasses) included, for ``--output json``."""

    def default(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            return asdict(obj)
        return str(obj)

    if isinstance(value, list):
        value = [asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for v in value]
    elif is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return json.dumps(value, default=default, indent=2)


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
