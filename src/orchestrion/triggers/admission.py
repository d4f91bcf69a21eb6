"""Admission policies for the runs that triggers start: one decision for a run about to
be created, used by `App.runs.trigger` (a person's trigger), the scheduler's cron fires
and run triggers, and the event intake.

`decide` reads the policies in force, evaluates them (the pure core,
`orchestrion.spec.policies.evaluation`) and, when one requires an approval, registers the
run's gated version (`orchestrion.spec.policies.gate`; recorded, never current). What
to do with a denial is the caller's: a person gets `PolicyDenied`, a fire is recorded as
failed with the reason, an event's run becomes one of its errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from orchestrion.errors import PolicyDenied
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.policies import Decision, PolicyRequest, evaluate, parse_policy
from orchestrion.spec.policies.gate import gated_spec
from orchestrion.store.policies import PolicyStore
from orchestrion.store.record import replace
from orchestrion.store.workflows import WorkflowStore
from orchestrion.triggers.events import Matches

__all__ = ["SCHEDULER", "Admission"]

log = logging.getLogger("orchestrion.policies")

#: Who starts the runs of schedules and events, as rules read `principal`.
SCHEDULER: Final[Mapping[str, Any]] = {"name": "scheduler", "kind": "scheduler", "roles": {}}


class Admission:
    """The policies in force, applied to runs about to start."""

    def __init__(
        self, policies: PolicyStore, workflows: WorkflowStore, now: Callable[[], float]
    ) -> None:
        self._policies = policies
        self._workflows = workflows
        self._now = now

    def decide(
        self,
        spec: WorkflowSpec,
        params: Mapping[str, Any],
        *,
        trigger: str,
        principal: Mapping[str, Any] | None = SCHEDULER,
    ) -> tuple[WorkflowSpec | None, Decision]:
        """The spec the run starts on (itself, or its gated version when a policy requires
        an approval; None when a policy denies it) and the decision."""
        now = self._now()
        records = self._policies.current_policies()
        if not records:  # the common case costs one small read
            return spec, Decision()
        policies = [parse_policy(r.document, source=f"policy {r.name}") for r in records]
        request = PolicyRequest(
            on="trigger", namespace=spec.namespace, trigger=trigger, params=params
        )
        decision = evaluate(policies, spec, request, principal=principal, now=now)
        for finding in decision.findings:
            # On file whatever the caller shows: a warning nobody read is in the log.
            what = f"trigger {spec.namespace}/{spec.name} ({trigger})"
            log.info("policy.finding", extra={"what": what, "finding": str(finding)})
        if decision.denied:
            return None, decision
        if not decision.approvals:
            return spec, decision
        gated = gated_spec(spec, decision.approvals)
        source = self._workflows.get_workflow(spec.name, spec.version).source
        self._workflows.register_workflow(gated, source=source, now=now, make_current=False)
        return gated, decision

    def admit(
        self, spec: WorkflowSpec, params: Mapping[str, Any], *, trigger: str
    ) -> tuple[WorkflowSpec, str | None]:
        """For a run started on nobody's behalf (a fire, an event): the spec it starts on,
        and why it may not start (None: it may)."""
        try:
            admitted, decision = self.decide(spec, params, trigger=trigger)
        except PolicyDenied as exc:  # a held run that cannot be gated
            return spec, str(exc)
        if admitted is None:
            return spec, "; ".join(str(f) for f in decision.denials)
        return admitted, None

    def matches(self, matches: Matches) -> Matches:
        """`matches` with each run the policies deny moved to the errors, and each run
        they hold started on its gated version."""
        runs, errors = [], list(matches.errors)
        for run in matches.runs:
            admitted, why = self.admit(run.spec, run.params, trigger=run.trigger)
            if why is not None:
                errors.append(f"{run.spec.name}: {why}")
            else:
                runs.append(replace(run, spec=admitted))
        return Matches(tuple(runs), tuple(errors))
