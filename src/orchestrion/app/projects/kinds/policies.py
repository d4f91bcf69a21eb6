"""Admission policies. A policy is cluster-wide, not a namespace's (its ``applies_to``
names the namespaces it governs): a project writes the policies it declares and never
prunes (or reports) the others, which may be another project's. Writing one needs admin
on ``*``, as queue limits do (`orchestrion.web.targets.project`).

Applied before the workflows (`kinds.KINDS`), so a commit's new policies are in force
when its workflows are registered; the plan checks the workflows against them first
(`check_policies`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrion.errors import PolicyDenied
from orchestrion.spec.policies import parse_policy

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["POLICIES", "check_policies"]


class _Policies:
    name = "policy"
    prunable = False
    reports_unmanaged = False

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return {str(d["policy"]): dict(d) for d in project.policies}

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {r.name: dict(r.document) for r in app.policies.list()}

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        for name, document in desired.items():
            parse_policy(document, source=f"policy {name}")

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        app.policies.put(value, principal=by)

    def remove(self, app: App, namespace: str, key: str) -> None:
        app.policies.delete(key)


POLICIES = _Policies()


def check_policies(app: App, project: LoadedProject, by: Principal | None) -> Sequence[str]:
    """Each of the project's workflows against the policies in force once the project's
    own are written: `PolicyDenied` on the first denial (nothing is written); the other
    findings as the plan's notes."""
    declared = [parse_policy(d, source=f"policy {d['policy']}") for d in project.policies]
    notes: list[str] = []
    for item in project.workflows:
        spec = item.spec
        decision = app.policies.check_deploy(
            spec, namespace=spec.namespace, principal=by, replacing=declared
        )
        if decision.denied:
            denials = "; ".join(str(f) for f in decision.denials)
            raise PolicyDenied(
                f"workflow {spec.name}: {denials}", findings=tuple(decision.findings)
            )
        notes += [f"workflow {spec.name}: {finding}" for finding in decision.findings]
    return notes
