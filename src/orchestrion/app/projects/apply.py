"""Plan and apply a project: check everything, then change, undoing on failure.

The resources a project declares live in several store roles, and each role's verb is
its own transaction (a workflow's registration, a connection's put, ...): there is no one
transaction for all of them without re-writing every verb. So an apply is a saga with
compensation, and nothing is left half-applied:

1. *Validate everything first*: the project file and every workflow file were loaded and
   validated by `orchestrion.spec.project`; here every kind checks its values and that
   every reference resolves (secrets, channels, users, workflows). Most failures stop
   here, before any write.
2. *Apply* each change through the App's verbs, in kind order (deletes in reverse order),
   noting its undo: a create is undone by a remove, an update or a delete by putting the
   value read before back.
3. *On a failure*, undo what was done in reverse order, then raise. An undo that fails
   too is logged and reported in the error (the resource is named), never swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrion.app.projects.diff import Change, Plan, diff
from orchestrion.app.projects.kind import Kind
from orchestrion.app.projects.kinds import ProjectCheck
from orchestrion.errors import OrchestrionError

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["ApplyFailed", "apply_plan", "make_plan"]

log = logging.getLogger("orchestrion.projects")


class ApplyFailed(OrchestrionError):
    """An apply failed part way and was undone (`undo_errors` lists any undo that failed)."""

    def __init__(self, message: str, undo_errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.undo_errors = list(undo_errors)


@dataclass(frozen=True, slots=True)
class _Step:
    kind: Kind
    change: Change


def make_plan(
    app: App,
    project: LoadedProject,
    kinds: Sequence[Kind],
    checks: Sequence[ProjectCheck] = (),
    by: Principal | None = None,
) -> Plan:
    """Every change the project makes, after the whole-project `checks` and every kind
    checked its values (an `OrchestrionError` names the first problem)."""
    spec = project.spec
    warnings = [note for check in checks for note in check(app, project, by)]
    changes: list[Change] = []
    deletes: list[Change] = []
    unmanaged: list[tuple[str, str]] = []
    for kind in kinds:
        desired = kind.desired(project)
        kind.check(app, project, desired)
        current = kind.read_current(app, spec.namespace)
        found, loose = diff(kind.name, desired, current, prune=spec.prune and kind.prunable)
        changes += [c for c in found if c.action != "delete"]
        deletes[:0] = [c for c in found if c.action == "delete"]  # reverse kind order
        if kind.reports_unmanaged:
            unmanaged += loose
    notes = tuple(warnings)
    return Plan(spec.project, spec.namespace, tuple(changes + deletes), tuple(unmanaged), notes)


def apply_plan(
    app: App,
    project: LoadedProject,
    plan: Plan,
    kinds: Sequence[Kind],
    *,
    by: Principal | None = None,
    after_each: Callable[[Change], None] | None = None,
) -> None:
    """Make the plan's changes; on a failure undo the ones made (newest first) and raise
    `ApplyFailed`. `after_each` is called after each change (tests inject failures)."""
    by_name = {k.name: k for k in kinds}
    done: list[_Step] = []
    try:
        for change in plan.changes:
            kind = by_name[change.kind]
            _forward(app, project, kind, change, by)
            done.append(_Step(kind, change))
            if after_each is not None:
                after_each(change)
    except Exception as exc:
        errors = _undo(app, project, done, by)
        failed = (
            f"{exc.__class__.__name__}: {exc}"
            if not isinstance(exc, OrchestrionError)
            else str(exc)
        )
        if errors:  # the namespace may be half-applied: say where, never "undone"
            message = (
                f"apply failed and its undo failed too for: {'; '.join(errors)}"
                f" (the other {len(done) - len(errors)} change(s) were reverted): {failed}"
            )
        else:
            message = f"apply failed and was undone ({len(done)} change(s) reverted): {failed}"
        raise ApplyFailed(message, errors) from exc


def _forward(
    app: App, project: LoadedProject, kind: Kind, change: Change, by: Principal | None
) -> None:
    if change.action == "delete":
        kind.remove(app, project.spec.namespace, change.key)
    else:
        kind.put(app, project, change.key, change.after, by)


def _undo(app: App, project: LoadedProject, done: list[_Step], by: Principal | None) -> list[str]:
    errors: list[str] = []
    for step in reversed(done):
        change = step.change
        try:
            if change.action == "create":
                step.kind.remove(app, project.spec.namespace, change.key)
            else:
                step.kind.put(app, project, change.key, change.before, by)
        except Exception as exc:  # keep undoing the rest; report every one that failed
            log.exception("project.undo_failed", extra={"kind": change.kind, "key": change.key})
            errors.append(f"{change.kind} {change.key}: {exc}")
    return errors
