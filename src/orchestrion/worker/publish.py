"""Run a `publish` task: the worker opens the task's connection (its password from the
connection's secret, masked in all the task reports) and hands the rendered action to
`orchestrion.brokers.publish`, which waits for the broker's acknowledgement."""

from __future__ import annotations

import time
from typing import Any

from orchestrion.brokers.endpoint import ConnectionResolver, Endpoint
from orchestrion.brokers.publish import publish
from orchestrion.spec.model import PublishAction
from orchestrion.worker.context import TaskContext

__all__ = ["ConnectionResolver", "run_publish"]


def run_publish(
    action: PublishAction,
    ctx: TaskContext,
    endpoint: Endpoint,
    *,
    timeout: float | None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Publish the message; the result names where it went and the broker's id for it.
    The broker's timeout is the shortest of the action's, the task's and what is left
    until the attempt's `deadline` (a `time.monotonic` value)."""
    ctx.check_cancel()
    limit = action.timeout if timeout is None else min(action.timeout, timeout)
    if deadline is not None:
        limit = max(0.001, min(limit, deadline - time.monotonic()))
    ctx.log(f"publishing to {action.broker} {action.destination!r} via {endpoint.name}")
    receipt = publish(endpoint, action, timeout=limit)
    ctx.log(f"published: {receipt}")
    return receipt
