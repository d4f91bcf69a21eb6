"""`App.policies`: admission policies, versioned in the store, and their enforcement.

The decision is the pure core's (`orchestrion.spec.policies.evaluation`); this facade gives
it the policies in force, the principal, the request and the App's clock, and acts on the
result: a denial raises `PolicyDenied` (403 at the API), warnings go back to the caller,
and a ``require_approval`` finding starts the run behind an approval gate
(`orchestrion.spec.policies.gate`). Deploys are checked by `App.workflows`, triggers by
`App.runs`, events by `App.triggers`, and the scheduler's fires through the same
`orchestrion.triggers.admission.Admission` (docs/policies.md, "What is checked").

Writing policies is an admin's job on ``*`` (the routes' `Action.SETTINGS`): a policy
applies across namespaces. Every write is audited (by the request at the API, by
`Core.audited` for a local CLI user) and recorded as a version.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrion.app.core import Facet
from orchestrion.errors import NotFound, PolicyDenied
from orchestrion.spec.policies import (
    Decision,
    Finding,
    Policy,
    PolicyRequest,
    evaluate,
    parse_policy,
    policy_documents,
)
from orchestrion.store.policy_records import PolicyRecord
from orchestrion.triggers.admission import Admission

if TYPE_CHECKING:
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.model import WorkflowSpec

__all__ = ["Policies", "principal_view"]

log = logging.getLogger("orchestrion.policies")


def principal_view(principal: Principal | None, actor: str | None) -> dict[str, Any] | None:
    """Who asks, as rules read it: ``principal.name``, ``.kind`` (user, token, cli) and
    ``.roles`` (namespace -> role). A local user without an actor is None."""
    if principal is not None:
        roles = {ns: role.label for ns, role in principal.bindings.items()}
        return {"name": principal.name, "kind": principal.kind.value, "roles": roles}
    if actor is not None:
        return {"name": actor, "kind": "cli", "roles": {"*": "admin"}}
    return None


class Policies(Facet):
    """Admission policies: list, read, write (versioned, audited), delete, and check."""

    # ------------------------------------------------------------------ reads

    def list(self) -> list[PolicyRecord]:
        """The policies in force, by name."""
        return self.store.policies.current_policies()

    def get(self, name: str) -> PolicyRecord:
        """The policy in force named `name`, or `NotFound`."""
        for record in self.store.policies.policy_history(name)[:1]:
            if not record.deleted:
                return record
        raise NotFound(f"no policy named {name!r}")

    def history(self, name: str) -> builtins.list[PolicyRecord]:
        """Every version of a policy, newest first (deletions included); `NotFound` when
        it never existed."""
        found = self.store.policies.policy_history(name)
        if not found:
            raise NotFound(f"no policy named {name!r}")
        return found

    # ------------------------------------------------------------------ writes

    def put(
        self, document: Mapping[str, Any], *, principal: Principal | None = None
    ) -> PolicyRecord:
        """Write a policy (checked first: `PolicyError` names the field): a new version
        when its content changed, else the record in force, unchanged."""
        policy = parse_policy(document)
        with self._core.audited("policy.put", f"policy {policy.name}"):
            return self.store.policies.put_policy(
                policy.name, dict(document), by=self._who(principal), now=self.clock.now()
            )

    def apply_text(
        self, text: str | bytes, *, source: str = "policy", principal: Principal | None = None
    ) -> builtins.list[PolicyRecord]:
        """Write every policy of a YAML text (one, or a list); all are checked before any
        is written."""
        documents = policy_documents(text, source=source)
        return [self.put(d, principal=principal) for d in documents]

    def delete(self, name: str, *, principal: Principal | None = None) -> None:
        """Take a policy out of force (its history stays); `NotFound` when none is."""
        with self._core.audited("policy.delete", f"policy {name}"):
            if not self.store.policies.delete_policy(
                name, by=self._who(principal), now=self.clock.now()
            ):
                raise NotFound(f"no policy named {name!r}")

    # ------------------------------------------------------------------ checks

    def in_force(self) -> builtins.list[Policy]:
        """The parsed policies in force (each was checked when it was written)."""
        return [parse_policy(r.document, source=f"policy {r.name}") for r in self.list()]

    def check_deploy(
        self,
        spec: WorkflowSpec,
        *,
        namespace: str,
        principal: Principal | None = None,
        replacing: Sequence[Policy] = (),
    ) -> Decision:
        """What the policies in force say about deploying `spec` (no writes). With
        `replacing`: what they would say once those are written (a project's plan checks
        its workflows against the policies the same apply writes first)."""
        request = PolicyRequest(on="deploy", namespace=namespace)
        return self._evaluate(spec, request, principal, replacing)

    def check_trigger(
        self,
        spec: WorkflowSpec,
        *,
        params: Mapping[str, Any],
        trigger: str,
        principal: Principal | None = None,
    ) -> Decision:
        """What the policies in force say about a run of `spec` with these (resolved)
        parameters (no writes)."""
        request = PolicyRequest(
            on="trigger", namespace=spec.namespace, trigger=trigger, params=params
        )
        return self._evaluate(spec, request, principal)

    def enforce_deploy(
        self,
        specs: Sequence[WorkflowSpec],
        *,
        principal: Principal | None = None,
        findings: builtins.list[Finding] | None = None,
    ) -> builtins.list[builtins.list[Finding]]:
        """Check every spec before any is registered: `PolicyDenied` on a denial; the
        other findings appended to `findings`, and returned per spec (in order)."""
        each: builtins.list[builtins.list[Finding]] = []
        for spec in specs:
            decision = self.check_deploy(spec, namespace=spec.namespace, principal=principal)
            if decision.denied:
                # On file like any refused action (a local user's; the API audits requests).
                obj = f"workflow {spec.namespace}/{spec.name}"
                with self._core.audited("workflow.deploy", obj, params={"version": spec.version}):
                    _refuse(decision)
            _keep(decision, findings, f"deploy {spec.namespace}/{spec.name}")
            each.append(decision.findings)
        return each

    def admit_run(
        self,
        spec: WorkflowSpec,
        params: Mapping[str, Any],
        *,
        trigger: str,
        principal: Principal | None = None,
        findings: builtins.list[Finding] | None = None,
    ) -> WorkflowSpec:
        """The spec a run of `spec` starts on: itself, or, when a policy requires an
        approval, its gated version (registered, never current). `PolicyDenied` on a
        denial; the other findings appended to `findings`."""
        actor = self._core.actor.name if self._core.actor is not None else None
        admitted, decision = self.admission().decide(
            spec, params, trigger=trigger, principal=principal_view(principal, actor)
        )
        _refuse(decision)
        if findings is not None:
            findings.extend(decision.findings)
        assert admitted is not None  # not denied
        return admitted

    def admission(self) -> Admission:
        """The policies as the scheduler and the event intake apply them."""
        return Admission(self.store.policies, self.store.workflows, self.clock.now)

    def _evaluate(
        self,
        spec: WorkflowSpec,
        request: PolicyRequest,
        principal: Principal | None,
        replacing: Sequence[Policy] = (),
    ) -> Decision:
        actor = self._core.actor.name if self._core.actor is not None else None
        named = {p.name: p for p in self.in_force()} | {p.name: p for p in replacing}
        return evaluate(
            list(named.values()),
            spec,
            request,
            principal=principal_view(principal, actor),
            now=self.clock.now(),
        )

    def _who(self, principal: Principal | None) -> str | None:
        if principal is not None:
            return f"{principal.kind.value}:{principal.name}"
        return self._core.actor.name if self._core.actor is not None else None


def _refuse(decision: Decision) -> None:
    if decision.denied:
        raise PolicyDenied(
            "; ".join(str(f) for f in decision.denials), findings=tuple(decision.findings)
        )


def _keep(decision: Decision, findings: list[Finding] | None, what: str) -> None:
    for finding in decision.findings:
        # Recorded in the log whatever the caller shows: a warning nobody read is on file.
        log.info("policy.finding", extra={"what": what, "finding": str(finding)})
    if findings is not None:
        findings.extend(decision.findings)
