"""``approval(...)`` and ``wait_for(...)``: steps that wait without a worker, declared from
inside a workflow function (see `orchestrion.spec.waits`)::

    @workflow
    def release(version: str):
        build = shell("build", ["make", "dist"])
        ok = approval("ship", role="editor", timeout="24h", message="Ship it?",
                      after=[build])
        go = wait_for("go-signal", signal="go", after=[ok])
        deploy(go)

Their result is the decision (an approval) or what arrived (a signal's data, an event, a
sensor's answer), passed on like any task's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

from orchestrion.spec.model import Action, TriggerRule
from orchestrion.spec.python.actions import _finish, _start
from orchestrion.spec.python.build import Ref, TaskRef
from orchestrion.spec.waits import ApprovalAction, WaitAction

__all__ = ["WaitOptions", "approval", "wait_for"]


class WaitOptions(TypedDict, total=False):
    """The options a waiting step takes (it holds no worker: no queue, retries or limits)."""

    trigger_rule: TriggerRule | str
    when: Any
    description: str
    #: Ordering-only dependencies: wait only after these tasks finished.
    after: Sequence[Ref]


_KEYS: frozenset[str] = WaitOptions.__optional_keys__


def approval(
    name: str,
    *,
    role: Literal["viewer", "operator", "editor", "admin"] = "operator",
    message: str = "",
    timeout: float | str | None = None,
    on_timeout: Literal["reject", "approve", "fail"] = "reject",
    **options: Unpack[WaitOptions],
) -> TaskRef:
    """A step that waits for someone with `role` in the workflow's namespace to approve or
    reject; `timeout` decides by `on_timeout` when nobody did."""
    state, col = _start(name, "approval", options, _KEYS)

    def build() -> Action:
        return ApprovalAction.model_validate(
            {"role": role, "message": message, "timeout": timeout, "on_timeout": on_timeout}
        )

    return _finish(state, col, build, dict(options))


def wait_for(
    name: str,
    *,
    signal: str | None = None,
    event: str | None = None,
    filter: str | None = None,
    file: str | None = None,
    http: str | Mapping[str, Any] | None = None,
    sql: Mapping[str, Any] | None = None,
    every: float | str = 30.0,
    timeout: float | str | None = None,
    on_timeout: Literal["fail", "succeed"] = "fail",
    **options: Unpack[WaitOptions],
) -> TaskRef:
    """A step that waits for a `signal` sent to the run, an `event` (matching `filter`), or
    a sensor (`file` present, `http` condition, `sql` query with ``connection``, ``query``
    and ``params``) checked every `every`."""
    state, col = _start(name, "wait_for", options, _KEYS)

    def build() -> Action:
        cond = {"url": http} if isinstance(http, str) else http
        return WaitAction.model_validate(
            {
                "signal": signal,
                "event": event,
                "filter": filter,
                "file": file,
                "http": cond,
                "sql": sql,
                "every": every,
                "timeout": timeout,
                "on_timeout": on_timeout,
            }
        )

    return _finish(state, col, build, dict(options))
