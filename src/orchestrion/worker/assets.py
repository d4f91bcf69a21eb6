"""The assets a succeeded attempt produced: its task's ``produces``, partitions rendered.

Only a task that declares assets comes here (`loop.Worker._execute` checks first), so
every other task pays nothing. A Python task's dict result may carry metadata for its
events (`orchestrion.asset_metadata`); the key is taken out of the stored result.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrion.errors import ExpressionError
from orchestrion.spec.assets import METADATA_KEY
from orchestrion.spec.expressions import render, to_text
from orchestrion.spec.model import TaskSpec
from orchestrion.store.record import replace
from orchestrion.store.records import Claim, Outcome, Produced

__all__ = ["with_assets"]

#: The most metadata, as JSON text, one event keeps (a row count, not a data set).
MAX_METADATA_BYTES = 16_384


def with_assets(outcome: Outcome | None, task: TaskSpec, claim: Claim) -> Outcome | None:
    """`outcome` with the assets it produced, if it is a success of the task or of an
    item; a partition that fails to render fails the attempt (the asset would otherwise
    be recorded under a wrong name)."""
    if outcome is None or outcome.status != "succeeded" or claim.kind not in ("task", "item"):
        return outcome
    result = outcome.result
    metadata: dict[str, Any] | None = None
    if isinstance(result, dict) and METADATA_KEY in result:
        result = dict(result)
        found = result.pop(METADATA_KEY)
        metadata = dict(found) if isinstance(found, dict) else {"value": found}
        if not result:
            result = None
        if len(json.dumps(metadata, default=str)) > MAX_METADATA_BYTES:
            metadata = {"error": f"asset metadata over {MAX_METADATA_BYTES} bytes: dropped"}
    scope = {"params": claim.params, "item": claim.item}
    produced: list[Produced] = []
    try:
        for ref in task.produces:
            partition = None
            if ref.partition is not None:
                partition = to_text(render(ref.partition, scope))
            produced.append(Produced(ref.key, partition, metadata))
    except ExpressionError as exc:
        return Outcome(
            task_run_id=outcome.task_run_id,
            epoch=outcome.epoch,
            status="failed",
            error=f"cannot render an asset's partition: {exc}",
            error_types=(f"{type(exc).__module__}.{type(exc).__qualname__}",),
        )
    return replace(outcome, result=result, assets=tuple(produced))
