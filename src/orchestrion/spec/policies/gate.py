"""The approval gate a ``require_approval`` finding puts in front of a run.

A run that a policy holds is a run of the same workflow with one more task: an approval
step (`orchestrion.spec.waits.ApprovalAction`, the machinery that approvals already use:
the WAITING state, ``orchestrion approve|reject``, the role check, the UI's buttons) that
every root task depends on. Until it is approved no other task can become ready; when it
is rejected the run is canceled (`orchestrion.app.waits`), so that no trigger rule
(``all_done``, ``one_failed``) can run a task behind a refused gate. The gated spec is a
version of its own, recorded but never made current.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from orchestrion.errors import PolicyDenied
from orchestrion.spec.model import TaskSpec, WorkflowSpec
from orchestrion.spec.policies.evaluation import Finding
from orchestrion.spec.waits import ApprovalAction

__all__ = ["GATE_TASK", "gated_spec"]

#: The name of the gate task: a workflow that has a task of this name cannot be gated.
GATE_TASK: Final = "policy-approval"
_ORDER: Final = ("viewer", "operator", "editor", "admin")


def gated_spec(spec: WorkflowSpec, approvals: Sequence[Finding]) -> WorkflowSpec:
    """`spec` with an approval gate in front of its roots; the role that may approve is the
    highest any of `approvals` asks for, and its message lists them all."""
    if any(t.name == GATE_TASK for t in spec.tasks):
        raise PolicyDenied(
            f"workflow {spec.name} has a task named {GATE_TASK!r}: a policy that requires"
            " approval cannot hold its runs; rename the task",
            findings=tuple(approvals),
        )
    role = max((f.approvers or "operator" for f in approvals), key=_ORDER.index)
    message = "; ".join(str(f) for f in approvals)
    gate = TaskSpec(
        name=GATE_TASK,
        action=ApprovalAction.model_validate({"role": role, "message": message[:2000]}),
        description="held by an admission policy until approved",
    )
    tasks = [gate]
    for task in spec.tasks:
        if task.depends_on:
            tasks.append(task)
        else:
            tasks.append(task.model_copy(update={"depends_on": (GATE_TASK,)}))
    data = spec.model_dump(mode="json")
    data["tasks"] = [t.model_dump(mode="json") for t in tasks]
    return WorkflowSpec.model_validate(data)
