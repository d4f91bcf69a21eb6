"""The records of steps that wait without a worker: a waiting step as the API and UI list
it, and what the scheduler's waits duty is handed to check. Pure, like `records`."""

from __future__ import annotations

from typing import Any, Literal

from orchestrion.store.record import Record

__all__ = ["SignalReceipt", "WaitRecord", "WaitResolution"]


class WaitRecord(Record, frozen=True, kw_only=True):
    """A task run waiting on an approval, a signal, an event or a sensor."""

    task_run_id: int
    run_id: str
    workflow: str
    version: str
    task: str
    #: approval | signal | event | file | http | sql
    kind: str
    #: The signal's name or the event's type (None for the others).
    name: str | None
    #: When its timeout falls due (None: it waits as long as it takes).
    deadline: float | None
    #: A sensor's next check (None for the others).
    check_at: float | None
    #: How many times a sensor was checked.
    checks: int
    created_at: float


class WaitResolution(Record, frozen=True, kw_only=True):
    """How to end a wait: succeed with `result` (any JSON value), or fail with `error`.
    `event` names the history row written beside the state change (``wait.approved``,
    ``wait.signal``, ``wait.timeout``, ...) with `data`."""

    outcome: Literal["succeed", "fail"]
    event: str
    result: Any = None
    error: str | None = None
    data: dict[str, Any] | None = None


class SignalReceipt(Record, frozen=True, kw_only=True):
    """A signal kept for a run: its id, and the task it was delivered to (None: kept until
    a ``wait_for: {signal}`` step of that name waits)."""

    id: int
    run_id: str
    name: str
    delivered_to: str | None
