"""A policy document, parsed and checked: `parse_policy(data) -> Policy`.

A policy is data (YAML or a Python dict), never code: its conditions are expressions of
the sandboxed language (`orchestrion.spec.expressions`), compiled here once so that a rule
that does not compile is refused when the policy is written, not when a deploy meets it.
Every problem is a `PolicyError` naming the field (``rules[1].effect``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrion.errors import ExpressionError, PolicyError
from orchestrion.spec.expressions import Expression, compile_expression

__all__ = [
    "DEFAULT_ON",
    "EFFECTS",
    "ON",
    "AppliesTo",
    "Effect",
    "On",
    "Policy",
    "Rule",
    "parse_policy",
]

Effect = Literal["deny", "warn", "require_approval"]
On = Literal["deploy", "trigger", "task"]
#: What a rule's finding does: refuse, accept with a warning, or hold the run for approval.
EFFECTS: Final[tuple[Effect, ...]] = ("deny", "warn", "require_approval")
#: When a policy is evaluated: a workflow version is deployed, a run is triggered, or a
#: mapped task is admitted (its items known: `orchestrion.spec.policies.admission`).
ON: Final[tuple[On, ...]] = ("deploy", "trigger", "task")
#: The moments of a policy that does not say (`task` is asked for: it runs in the store's
#: transaction at every map expansion).
DEFAULT_ON: Final[tuple[On, ...]] = ("deploy", "trigger")
_ROLES: Final = ("viewer", "operator", "editor", "admin")
_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_GLOB_RE: Final = re.compile(r"^[A-Za-z0-9_.*?\[\]/-]{1,200}$")
_MAX_RULES: Final = 200
_KEYS: Final = frozenset({"policy", "description", "applies_to", "rules", "timezone"})
_APPLIES_KEYS: Final = frozenset({"namespaces", "workflows", "on"})
_RULE_KEYS: Final = frozenset(
    {"name", "for_each", "when", "require", "effect", "message", "field", "approvers"}
)


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """Where and when a policy is evaluated: namespace and workflow globs (``prod*``), and
    the moments (`ON`)."""

    namespaces: tuple[str, ...] = ("*",)
    workflows: tuple[str, ...] = ("*",)
    on: tuple[On, ...] = DEFAULT_ON


@dataclass(frozen=True, slots=True)
class Rule:
    """One check: where `when` holds (always, when absent), `require` must hold, else a
    finding with `effect`. With ``for_each: tasks`` it is checked once per task (``task``
    bound in both expressions)."""

    name: str
    require: Expression
    effect: Effect
    message: str
    field: str = ""
    for_each: Literal["tasks"] | None = None
    when: Expression | None = None
    #: For ``require_approval``: the lowest role, in the run's namespace, that may approve.
    approvers: str = "operator"


@dataclass(frozen=True, slots=True)
class Policy:
    """A named set of rules, with where it applies and the time zone of its ``now``."""

    name: str
    rules: tuple[Rule, ...]
    applies_to: AppliesTo = AppliesTo()
    description: str = ""
    timezone: str = "UTC"


def parse_policy(data: Any, *, source: str | None = None) -> Policy:
    """`data` (a parsed YAML document or a dict) as a `Policy`; `PolicyError` names the
    first problem's field."""

    def fail(path: str, message: str) -> PolicyError:
        return PolicyError(message, source=source, path=path or None)

    if not isinstance(data, Mapping):
        raise fail("", f"a policy is a mapping, not {type(data).__name__}")
    _unknown(data, _KEYS, "", fail)
    name = data.get("policy")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise fail("policy", "a policy needs a name: lower-case letters, digits, '_', '.', '-'")
    description = _text(data.get("description", ""), "description", fail)
    timezone = _text(data.get("timezone", "UTC"), "timezone", fail)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"unknown time zone {timezone!r}") from None
    applies = _applies(data.get("applies_to", {}), fail)
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, Sequence) or isinstance(raw_rules, str) or not raw_rules:
        raise fail("rules", "a policy needs a list of at least one rule")
    if len(raw_rules) > _MAX_RULES:
        raise fail("rules", f"at most {_MAX_RULES} rules")
    rules = tuple(_rule(r, f"rules[{i}]", fail) for i, r in enumerate(raw_rules))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise fail(f"rules[{i}].name", f"two rules are named {rule.name!r}")
        seen.add(rule.name)
        if rule.effect == "require_approval" and applies.on != ("trigger",):
            raise fail(
                f"rules[{i}].effect",
                "require_approval holds runs: its policy applies on [trigger] only",
            )
    return Policy(name, rules, applies, description, timezone)


def _unknown(data: Mapping[str, Any], known: frozenset[str], at: str, fail: Any) -> None:
    for key in data:
        if key not in known:
            where = f"{at}.{key}" if at else str(key)
            raise fail(where, f"unknown field {key!r} (known: {', '.join(sorted(known))})")


def _text(value: Any, path: str, fail: Any, *, limit: int = 2000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise fail(path, f"expected text of at most {limit} characters")
    return value


def _globs(value: Any, path: str, fail: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not items:
        raise fail(path, "expected a glob or a non-empty list of globs")
    for item in items:
        if not isinstance(item, str) or not _GLOB_RE.fullmatch(item):
            raise fail(path, f"bad glob {item!r}")
    return tuple(items)


def _applies(value: Any, fail: Any) -> AppliesTo:
    if not isinstance(value, Mapping):
        raise fail("applies_to", "expected a mapping (namespaces, workflows, on)")
    _unknown(value, _APPLIES_KEYS, "applies_to", fail)
    on_raw = value.get("on", list(DEFAULT_ON))
    on_items = [on_raw] if isinstance(on_raw, str) else on_raw
    if not isinstance(on_items, Sequence) or not on_items:
        raise fail("applies_to.on", "expected a list of: deploy, trigger, task")
    for item in on_items:
        if item not in ON:
            raise fail("applies_to.on", f"unknown moment {item!r} (known: deploy, trigger, task)")
    return AppliesTo(
        namespaces=_globs(value.get("namespaces", "*"), "applies_to.namespaces", fail),
        workflows=_globs(value.get("workflows", "*"), "applies_to.workflows", fail),
        on=tuple(cast("list[On]", on_items)),
    )


def _expression(value: Any, path: str, fail: Any) -> Expression:
    if not isinstance(value, str) or not value.strip():
        raise fail(path, "expected an expression (text)")
    try:
        return compile_expression(value)
    except ExpressionError as exc:
        raise fail(path, f"the expression does not compile: {exc}") from None


def _rule(value: Any, at: str, fail: Any) -> Rule:
    if not isinstance(value, Mapping):
        raise fail(at, "a rule is a mapping (name, require, effect, message)")
    _unknown(value, _RULE_KEYS, at, fail)
    name = value.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise fail(f"{at}.name", "a rule needs a name: lower-case letters, digits, '_.-'")
    if "require" not in value:
        raise fail(f"{at}.require", "a rule needs `require`: what must hold")
    effect = value.get("effect", "deny")
    if effect not in EFFECTS:
        raise fail(f"{at}.effect", f"unknown effect {effect!r} (known: {', '.join(EFFECTS)})")
    for_each = value.get("for_each")
    if for_each not in (None, "tasks"):
        raise fail(f"{at}.for_each", f"unknown for_each {for_each!r} (known: tasks)")
    approvers = value.get("approvers", "operator")
    if approvers not in _ROLES:
        raise fail(f"{at}.approvers", f"unknown role {approvers!r} (known: {', '.join(_ROLES)})")
    when = value.get("when")
    return Rule(
        name=name,
        require=_expression(value["require"], f"{at}.require", fail),
        effect=cast("Effect", effect),
        message=_text(value.get("message", f"rule {name} does not hold"), f"{at}.message", fail),
        field=_text(value.get("field", ""), f"{at}.field", fail, limit=500),
        for_each=cast("Literal['tasks'] | None", for_each),
        when=None if when is None else _expression(when, f"{at}.when", fail),
        approvers=approvers,
    )
