"""Steps that wait without a worker: an approval (a person decides), and a wait for a
signal, an event, or a polled condition (a sensor).

Such a task never reaches a queue: when it becomes ready it moves from pending straight to
waiting (`TaskEvent.AWAIT`), and the store resolves it when a decision, a signal or a
matching event arrives, when a sensor's check comes true, or when its timeout falls due
(`orchestrion.store.sql.waits`). A thousand waiting runs hold no worker slot.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions import template_references
from orchestrion.spec.fields import Duration, FrozenModel, Int, Line, Name, Str, Text

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


class ApprovalAction(FrozenModel):
    """Wait for a person to approve or reject. Approved, the task succeeds with the decision
    (``{"approved": true, "by": ..., "reason": ...}``); rejected, it fails with the reason."""

    kind: Literal["approval"] = "approval"
    #: The lowest role, in the workflow's namespace, of who may decide.
    role: Literal["viewer", "operator", "editor", "admin"] = "operator"
    #: Shown to whoever decides.
    message: Text = ""
    timeout: Duration | None = Field(default=None, gt=0)
    #: What the timeout decides: reject (the task fails), approve, or fail.
    on_timeout: Literal["reject", "approve", "fail"] = "reject"


class HttpCondition(FrozenModel):
    """True when a GET of `url` answers with one of `status` (by default any 2xx)."""

    url: Str = Field(min_length=1, max_length=4096)
    status: tuple[Annotated[Int, Field(ge=100, le=599)], ...] = ()
    timeout: Duration = Field(default=10.0, gt=0, le=300)


class SqlCondition(FrozenModel):
    """True when `query`, run on the named database `connection` of the workflow's
    namespace, returns a row whose first column is truthy (not NULL, false, 0, or an empty
    string); the step's result is that first row as an object. No row is "not yet". The
    query is never templated: values reach it only as ``:name`` bind parameters from
    `params`, whose string leaves may be templates over ``params``."""

    connection: Name
    query: Str = Field(min_length=1, max_length=100_000)
    params: dict[Str, Any] = Field(default_factory=dict)
    #: The statement timeout of one check.
    timeout: Duration = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _params_read_params(self) -> SqlCondition:
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
        return self


class WaitAction(FrozenModel):
    """Wait for one thing: a `signal` sent to the run, an `event` (a type, optionally with a
    `filter` expression over ``event``), or a sensor: a `file` present or an `http`
    condition or a `sql` query, checked every `every` seconds by the scheduler."""

    kind: Literal["wait"] = "wait"
    signal: Name | None = None
    event: Line | None = None
    #: An expression over ``event`` (its ``type`` and ``data``): the event must match it.
    filter: Text | None = None
    file: Str | None = None
    http: HttpCondition | None = None
    sql: SqlCondition | None = None
    #: How often a sensor is checked.
    every: Duration = Field(default=30.0, ge=0.05, le=86_400)
    timeout: Duration | None = Field(default=None, gt=0)
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

    @model_validator(mode="after")
    def _exactly_one(self) -> WaitAction:
        given = [k for k in WAIT_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            which = ", ".join(given) if given else "none"
            raise ValueError(f"wait_for takes exactly one of {', '.join(WAIT_KINDS)} (got {which})")
        if self.filter is not None and self.event is None:
            raise ValueError("'filter' applies to an 'event' wait only")
        return self


def waiting_name(action: ApprovalAction | WaitAction) -> str | None:
    """What a delivered wait is matched by: a signal's name or an event's type."""
    if isinstance(action, WaitAction):
        return action.signal or action.event
    return None
