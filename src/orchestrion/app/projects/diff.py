"""The pure part of a project: what changes between what is declared and what is
deployed. No I/O; each resource kind reads its current state and hands plain values in.

A resource is a key (a workflow's name, a connection's name, a user) and a JSON-like
value. Declared and absent is a create; both, different, an update (also when someone
changed the resource by hand since the last apply: drift is put back); deployed and not
declared is a delete with ``prune`` (for the kinds that may be pruned) and otherwise
*unmanaged*: reported, left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Change", "Plan", "diff"]

Action = Literal["create", "update", "delete"]
_SIGNS = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True, slots=True)
class Change:
    """One resource to create, update or delete; `before` is None for a create, `after`
    for a delete."""

    kind: str
    key: str
    action: Action
    before: Any = None
    after: Any = None

    def fields(self) -> list[str]:
        """The fields an update changes (of mapping values), sorted."""
        if not (isinstance(self.before, Mapping) and isinstance(self.after, Mapping)):
            return []
        keys = set(self.before) | set(self.after)
        return sorted(k for k in keys if self.before.get(k) != self.after.get(k))

    def line(self) -> str:
        """One line for people: ``~ workflow etl (version: 1a2b -> 3c4d)``."""
        text = f"{_SIGNS[self.action]} {self.kind} {self.key}"
        if self.action == "create":
            shown = _brief(self.after)
            text += f" ({shown})" if shown else ""
        elif self.action == "update":
            if isinstance(self.before, Mapping) and isinstance(self.after, Mapping):
                parts = [
                    f"{k}: {_short(self.before.get(k))} -> {_short(self.after.get(k))}"
                    for k in self.fields()
                ]
                text += f" ({'; '.join(parts)})"
            else:
                text += f" ({_short(self.before)} -> {_short(self.after)})"
        return text

    def to_data(self) -> dict[str, Any]:
        """The change as JSON data (the API's form)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "fields": self.fields(),
            "line": self.line(),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """Every change a project makes to its namespace, in apply order, and what the
    namespace holds that the project does not declare."""

    project: str
    namespace: str
    changes: tuple[Change, ...] = ()
    #: (kind, key) of resources left alone (not declared, no prune).
    unmanaged: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, int]:
        """How many creates, updates and deletes."""
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_data(self) -> dict[str, Any]:
        """The plan as JSON data."""
        return {
            "project": self.project,
            "namespace": self.namespace,
            "changes": [c.to_data() for c in self.changes],
            "unmanaged": [{"kind": k, "key": n} for k, n in self.unmanaged],
            "summary": self.summary(),
            "notes": list(self.notes),
        }


def diff(
    kind: str,
    desired: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    prune: bool,
) -> tuple[list[Change], list[tuple[str, str]]]:
    """The changes from `current` to `desired` for one kind, by key, and the keys left
    unmanaged (with `prune`, those are deletes instead)."""
    changes: list[Change] = []
    unmanaged: list[tuple[str, str]] = []
    for key in sorted(desired):
        if key not in current:
            changes.append(Change(kind, key, "create", None, desired[key]))
        elif current[key] != desired[key]:
            changes.append(Change(kind, key, "update", current[key], desired[key]))
    for key in sorted(set(current) - set(desired)):
        if prune:
            changes.append(Change(kind, key, "delete", current[key], None))
        else:
            unmanaged.append((kind, key))
    return changes, unmanaged


def render(plan: Plan, *, lines: Sequence[str] = ()) -> str:
    """The plan as text for a terminal."""
    out = [f"project {plan.project} -> namespace {plan.namespace}", *lines]
    out += [f"  {c.line()}" for c in plan.changes]
    out += [f"  ? {k} {n} (unmanaged: not in the project; left alone)" for k, n in plan.unmanaged]
    out += [f"  note: {n}" for n in plan.notes]
    s = plan.summary()
    if plan.changes:
        out.append(f"{s['create']} to create, {s['update']} to update, {s['delete']} to delete")
    else:
        out.append("no changes")
    return "\n".join(out)


def _brief(value: Any) -> str:
    """A created value in a few words: a scalar, or a mapping of one or two fields."""
    if isinstance(value, Mapping):
        if len(value) > 2:
            return ""
        return "; ".join(f"{k}: {_short(v)}" for k, v in value.items())
    return _short(value)


def _short(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
