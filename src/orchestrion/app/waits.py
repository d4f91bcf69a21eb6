"""`App.waits`: steps that wait without a worker. Approve or reject an approval, send a
signal to a run, list what waits, and hand events to the steps waiting on them.

Who may decide an approval is the step's own rule (``approval: {approvers: {role: ...}}``):
a principal needs that role in the workflow's namespace, checked here for every edge (the
routes only ask for the right to act on runs at all). A local CLI user acts on a database
it opened itself and is not a principal; every decision is audited all the same.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from orchestrion.app.core import Facet
from orchestrion.auth.principals import Principal, Role, role_in
from orchestrion.errors import ExpressionError, Forbidden, IllegalTransition, InvalidValue
from orchestrion.spec.expressions import compile_expression
from orchestrion.spec.model import NAME_PATTERN
from orchestrion.spec.policies.gate import GATE_TASK
from orchestrion.spec.waits import ApprovalAction, WaitAction
from orchestrion.store.wait_records import SignalReceipt, WaitRecord, WaitResolution

__all__ = ["Waits"]


class Waits(Facet):
    """Approvals, signals and the other waits of runs."""

    def pending(self, run_id: str | None = None, *, limit: int = 500) -> list[WaitRecord]:
        """The steps waiting now, oldest first (of one run, when given; at most `limit`)."""
        return self.store.waits.list_waits(run_id=run_id, limit=limit)

    def describe(self, wait: WaitRecord) -> dict[str, Any]:
        """What the UI and API show of a wait: its kind's settings (role, message, ...)."""
        action = self._action(wait)
        if isinstance(action, ApprovalAction):
            return {"role": action.role, "message": action.message}
        if isinstance(action, WaitAction):
            return {"every": action.every} if action.polled else {}
        return {}

    def approve(
        self, run_id: str, task: str, *, reason: str = "", principal: Principal | None = None
    ) -> WaitRecord:
        """Approve a waiting approval step: it succeeds with the decision."""
        return self._decide(run_id, task, True, reason, principal)

    def reject(
        self, run_id: str, task: str, *, reason: str = "", principal: Principal | None = None
    ) -> WaitRecord:
        """Reject a waiting approval step: it fails with the reason."""
        return self._decide(run_id, task, False, reason, principal)

    def _decide(
        self, run_id: str, task: str, approve: bool, reason: str, principal: Principal | None
    ) -> WaitRecord:
        verb = "approve" if approve else "reject"
        with self._core.audited(
            f"run.{verb}", f"run {run_id}", params={"task": task, "reason": reason}
        ):
            wait = self.store.waits.get_wait(run_id, task)
            action = self._action(wait)
            if not isinstance(action, ApprovalAction):
                raise IllegalTransition(
                    f"task {task!r} of run {wait.run_id} waits on a {wait.kind}, not an approval"
                )
            by = self._who(principal)
            if principal is not None:
                self._check_role(principal, wait, action)
            if not approve and wait.task == GATE_TASK:
                # A policy's gate refused: the run is canceled, not failed through the
                # gate, so that no trigger rule (all_done, one_failed) runs a task behind it.
                if not self.store.runs.cancel_run(wait.run_id, now=self.clock.now()):
                    raise IllegalTransition(f"run {wait.run_id} finished already")
                return wait
            data = {"decision": "approved" if approve else "rejected", "by": by, "reason": reason}
            if approve:
                resolution = WaitResolution(
                    outcome="succeed",
                    event="wait.approved",
                    result={"approved": True, "by": by, "reason": reason},
                    data=data,
                )
            else:
                why = f": {reason}" if reason else ""
                resolution = WaitResolution(
                    outcome="fail", event="wait.rejected", error=f"rejected by {by}{why}", data=data
                )
            if not self.store.waits.resolve(wait.task_run_id, resolution, now=self.clock.now()):
                raise IllegalTransition(f"task {task!r} of run {wait.run_id} was decided already")
            return wait

    def _namespace(self, wait: WaitRecord) -> str:
        return self.store.workflows.get_workflow(wait.workflow, wait.version).namespace

    def _check_role(self, principal: Principal, wait: WaitRecord, action: ApprovalAction) -> None:
        namespace = self._namespace(wait)
        needed = Role.parse(action.role)
        held = role_in(principal, namespace)
        if held is None or held < needed:
            has = "no role" if held is None else f"role {held.label}"
            raise Forbidden(
                f"{principal.kind.value} {principal.name!r} has {has} in namespace"
                f" {namespace!r}; deciding task {wait.task!r} needs role {needed.label}"
            )

    def signal(
        self, run_id: str, name: str, data: Any = None, *, principal: Principal | None = None
    ) -> SignalReceipt:
        """Send `data` (JSON) to the run as signal `name`: a step waiting on it takes it now,
        or the first one to wait on it later (signals are kept)."""
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            raise InvalidValue(f"bad signal name {name!r}: letters, digits, '_' and '-'")
        with self._core.audited("run.signal", f"run {run_id}", params={"signal": name}):
            return self.store.waits.send_signal(
                run_id, name, data, sent_by=self._who(principal), now=self.clock.now()
            )

    def deliver_event(
        self, event_type: str, payload: Any, *, namespaces: Collection[str] | None = None
    ) -> list[int]:
        """Resolve the steps waiting on an event of `event_type` whose filter matches
        `payload` (of workflows in `namespaces` only, when given: the sender's); the task
        runs resolved."""
        event = {"type": event_type, "data": payload}

        def match(task_run_id: int, run_id: str) -> WaitResolution | None:
            for wait in self.store.waits.list_waits(run_id=run_id):
                if wait.task_run_id != task_run_id:
                    continue
                action = self._action(wait)
                if not isinstance(action, WaitAction) or action.event != event_type:
                    return None
                if namespaces is not None and self._namespace(wait) not in namespaces:
                    return None
                if action.filter is not None:
                    try:
                        if not compile_expression(action.filter).evaluate({"event": event}):
                            return None
                    except ExpressionError:  # a filter that cannot read this event
                        return None
                return WaitResolution(
                    outcome="succeed", event="wait.event", result=event, data={"event": event_type}
                )
            return None

        return self.store.waits.deliver_event(event_type, match, now=self.clock.now())

    def _action(self, wait: WaitRecord) -> object:
        spec = self.store.workflows.get_workflow(wait.workflow, wait.version).spec
        return spec.task(wait.task).action

    def _who(self, principal: Principal | None) -> str:
        if principal is not None:
            return f"{principal.kind.value}:{principal.name}"
        return self._core.actor.name if self._core.actor is not None else "local"
