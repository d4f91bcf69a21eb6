"""The evaluation core: ``evaluate(policies, spec, request, principal, now) -> Decision``.

A pure function: no store, no clock, no I/O. The same call decides a deploy on the
server, a trigger, and ``orchestrion policy test`` on a laptop, so what a dry run prints
is what the server will do.

A rule whose expression fails on this input (a key the spec lacks, a wrong type) is a
finding with its own effect and the reason: a check that cannot be made does not pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from orchestrion.errors import ExpressionError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.policies.model import Effect, On, Policy, Rule
from orchestrion.spec.policies.views import now_view, spec_view

__all__ = ["Decision", "Finding", "PolicyRequest", "applies", "evaluate"]

_HOLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that did not hold: which policy and rule, what it does, the field it is
    about (``tasks.load.retries``) and its message."""

    policy: str
    rule: str
    effect: Effect
    field: str
    message: str
    #: For ``require_approval``: the lowest role that may approve.
    approvers: str | None = None

    def __str__(self) -> str:
        verb = {"deny": "denied", "warn": "warns", "require_approval": "needs approval"}
        where = f"{self.field} " if self.field else ""
        return f"policy {self.policy} {verb[self.effect]}: {where}{self.message} [rule {self.rule}]"


@dataclass(frozen=True, slots=True)
class Decision:
    """Every finding of one evaluation."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def denied(self) -> bool:
        """Whether any finding denies."""
        return any(f.effect == "deny" for f in self.findings)

    @property
    def denials(self) -> list[Finding]:
        """The findings that deny."""
        return [f for f in self.findings if f.effect == "deny"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings that warn."""
        return [f for f in self.findings if f.effect == "warn"]

    @property
    def approvals(self) -> list[Finding]:
        """The findings that hold a run until someone approves it."""
        return [f for f in self.findings if f.effect == "require_approval"]


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """What is being asked: a deploy or a trigger, in which namespace, by which trigger
    (``manual``, ``api``, ``schedule``...), with which parameters (a trigger's, resolved)."""

    on: On
    namespace: str
    trigger: str | None = None
    params: Mapping[str, Any] | None = None
    source: str | None = None
    #: At ``on: task``: the task being admitted, and its items when it is mapped.
    task: str | None = None
    map_width: int | None = None


def applies(policy: Policy, *, on: On, namespace: str, workflow: str) -> bool:
    """Whether `policy` is evaluated for this moment, namespace and workflow."""
    scope = policy.applies_to
    return (
        on in scope.on
        and any(fnmatchcase(namespace, g) for g in scope.namespaces)
        and any(fnmatchcase(workflow, g) for g in scope.workflows)
    )


def evaluate(
    policies: Iterable[Policy],
    spec: WorkflowSpec,
    request: PolicyRequest,
    *,
    principal: Mapping[str, Any] | None,
    now: float,
) -> Decision:
    """Every finding of the `policies` that apply to `request` on `spec` (`principal`: who
    asks, as ``{"name", "kind", "roles"}``, or None for a local user)."""
    view = spec_view(spec, request.params)
    asked: dict[str, Any] = {
        "on": request.on,
        "namespace": request.namespace,
        "workflow": spec.name,
        "trigger": request.trigger,
        "params": dict(request.params) if request.params is not None else None,
        "source": request.source,
        "task": request.task,
    }
    base: dict[str, Any] = {
        "spec": view,
        "principal": dict(principal) if principal is not None else None,
        "request": asked,
        "namespace": request.namespace,
    }
    tasks: list[dict[str, Any]] = view["tasks"]
    if request.task is not None:  # a task's admission: that task only, its width known
        tasks = [{**t, "map_width": request.map_width} for t in tasks if t["name"] == request.task]
        base["task"] = tasks[0] if tasks else None
    findings: list[Finding] = []
    for policy in policies:
        if not applies(policy, on=request.on, namespace=request.namespace, workflow=spec.name):
            continue
        scope = {**base, "now": now_view(now, policy.timezone)}
        for rule in policy.rules:
            if rule.for_each == "tasks":
                for task in tasks:
                    findings.extend(_check(policy, rule, {**scope, "task": task}))
            else:
                findings.extend(_check(policy, rule, scope))
    findings.sort(key=lambda f: ("deny", "require_approval", "warn").index(f.effect))
    return Decision(findings)


def _check(policy: Policy, rule: Rule, scope: Mapping[str, Any]) -> list[Finding]:
    try:
        if rule.when is not None and not rule.when.evaluate(scope):
            return []
        if rule.require.evaluate(scope):
            return []
        message = _fill(rule.message, scope)
    except ExpressionError as exc:
        message = f"could not be checked: {exc}"
    approvers = rule.approvers if rule.effect == "require_approval" else None
    return [
        Finding(policy.name, rule.name, rule.effect, _fill(rule.field, scope), message, approvers)
    ]


def _fill(text: str, scope: Mapping[str, Any]) -> str:
    """``tasks.{task.name}.retries`` with each ``{dotted.name}`` read from `scope` (left as
    written when it names nothing)."""

    def one(match: re.Match[str]) -> str:
        value: Any = scope
        for part in match[1].split("."):
            if not isinstance(value, Mapping) or part not in value:
                return match[0]
            value = value[part]
        return str(value)

    return _HOLE.sub(one, text)
