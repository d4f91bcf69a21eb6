"""Steps that wait without a worker: an approval (a person decides), and a wait for a
signal, an event, or a polled condition (a sensor).

Such a task never reaches a queue: when it becomes ready it moves from pending straight to
waiting (`TaskEvent.AWAIT`), and the store resolves it when a decision, a signal or a
matching event arrives, when a sensor's check comes true, or when its timeout falls due
(`orchestrion.store.sql.waits`). A thousand waiting runs hold no worker slot.
"""

from typing import Annotated, Any, Final, Literal

from msgspec import Meta

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions import template_references
from orchestrion.spec.structs import (
    ActionModel,
    Duration,
    Int,
    Line,
    Name,
    Range,
    SpecModel,
    Str,
    Text,
)

__all__ = [
    "SENSOR_KINDS",
    "WAIT_KINDS",
    "ApprovalAction",
    "HttpCondition",
    "SqlCondition",
    "WaitAction",
    "waiting_name",
]

#: What a `WaitAction` waits for: exactly one of these fields is set.
WAIT_KINDS: Final = ("signal", "event", "file", "http", "sql")
#: The waits that the scheduler polls (`every`), as opposed to those something delivers.
SENSOR_KINDS: Final = ("file", "http", "sql")


class ApprovalAction(ActionModel, frozen=True, kw_only=True, tag="approval"):
    """Wait for a person to approve or reject. Approved, the task succeeds with the decision
    (``{"approved": true, "by": ..., "reason": ...}``); rejected, it fails with the reason."""

    #: The lowest role, in the workflow's namespace, of who may decide.
    role: Literal["viewer", "operator", "editor", "admin"] = "operator"
    #: Shown to whoever decides.
    message: Text = ""
    timeout: Annotated[Duration, Range(gt=0)] | None = None
    #: What the timeout decides: reject (the task fails), approve, or fail.
    on_timeout: Literal["reject", "approve", "fail"] = "reject"


class HttpCondition(SpecModel, frozen=True, kw_only=True):
    """True when a GET of `url` answers with one of `status` (by default any 2xx)."""

    url: Annotated[Str, Meta(min_length=1, max_length=4096)]
    status: tuple[Annotated[Int, Meta(ge=100, le=599)], ...] = ()
    timeout: Annotated[Duration, Range(gt=0, le=300)] = 10.0


class SqlCondition(SpecModel, frozen=True, kw_only=True):
    """True when `query`, run on the named database `connection` of the workflow's
    namespace, returns a row whose first column is truthy (not NULL, false, 0, or an empty
    string); the step's result is that first row as an object. No row is "not yet". The
    query is never templated: values reach it only as ``:name`` bind parameters from
    `params`, whose string leaves may be templates over ``params``."""

    connection: Name
    query: Annotated[Str, Meta(min_length=1, max_length=100_000)]
    params: dict[Str, Any] = {}
    #: The statement timeout of one check.
    timeout: Annotated[Duration, Range(gt=0, le=3600)] = 30.0

    def check(self) -> None:
        """A check renders `params` over the run's ``params`` only (no task has a result
        for a step that waits from the start): a template reading ``tasks`` is refused."""
        try:
            tasks = template_references(self.params)
        except ExpressionError as exc:
            raise ValueError(f"bad template in the sql sensor's params: {exc}") from None
        if tasks:
            raise ValueError(
                f"the sql sensor's params read only 'params', not tasks.{sorted(tasks)[0]}"
            )


class WaitAction(ActionModel, frozen=True, kw_only=True, tag="wait"):
    """Wait for one thing: a `signal` sent to the run, an `event` (a type, optionally with a
    `filter` expression over ``event``), or a sensor: a `file` present or an `http`
    condition or a `sql` query, checked every `every` seconds by the scheduler."""

    signal: Name | None = None
    event: Line | None = None
    #: An expression over ``event`` (its ``type`` and ``data``): the event must match it.
    filter: Text | None = None
    file: Str | None = None
    http: HttpCondition | None = None
    sql: SqlCondition | None = None
    #: How often a sensor is checked.
    every: Annotated[Duration, Range(ge=0.05, le=86_400)] = 30.0
    timeout: Annotated[Duration, Range(gt=0)] | None = None
    #: What the timeout does: fail the task, or let it succeed (its result is null).
    on_timeout: Literal["fail", "succeed"] = "fail"

    @property
    def waits_for(self) -> str:
        """The one kind of thing this step waits for (one of `WAIT_KINDS`)."""
        return next(k for k in WAIT_KINDS if getattr(self, k) is not None)

    @property
    def polled(self) -> bool:
        """True for a sensor: the scheduler checks it on a schedule."""
        return self.waits_for in SENSOR_KINDS

    def check(self) -> None:
        """Exactly one thing to wait for; a filter on an event wait only."""
        given = [k for k in WAIT_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            which = ", ".join(given) if given else "none"
            raise ValueError(f"wait_for takes exactly one of {', '.join(WAIT_KINDS)} (got {which})")
        if self.filter is not None and self.event is None:
            raise ValueError("'filter' applies to an 'event' wait only")


def waiting_name(action: ApprovalAction | WaitAction) -> str | None:
    """What a delivered wait is matched by: a signal's name or an event's type."""
    if isinstance(action, WaitAction):
        return action.signal or action.event
    return None
