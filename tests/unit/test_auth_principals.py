"""The full authorisation matrix: role x action x (own, other, all) namespace binding."""

from __future__ import annotations

import itertools

import pytest

from orchestrion.auth.principals import (
    Action,
    Decision,
    Principal,
    PrincipalKind,
    Resource,
    Role,
    authorize,
    authorize_all,
    authorize_grant,
    require,
    role_in,
)
from orchestrion.errors import Forbidden

# Written out independently of REQUIRED_ROLE: what each role may do, by action name.
# run.decide: any role reaches an approval, whose own `approvers.role` decides (App.waits).
VIEWER = {"read", "run.decide"}
OPERATOR = VIEWER | {
    "run.trigger", "run.cancel", "run.retry", "run.rerun", "run.keep", "events.send",
    "run.signal",
}  # fmt: skip
EDITOR = OPERATOR | {
    "workflow.deploy",
    "workflow.delete",
    "workflow.pause",
    "schedule.change",
    "trigger.change",
    "schedule.backfill",
}
ADMIN = EDITOR | {
    "tokens.manage",
    "secrets.manage",
    "connections.manage",
    "notifications.manage",
    "audit.read",
    "users.manage",
    "settings.manage",
    "project.apply",
}
MAY = {"viewer": VIEWER, "operator": OPERATOR, "editor": EDITOR, "admin": ADMIN}
#: Objects outside any namespace: only a binding on "*" counts.
GLOBAL = {"users.manage", "settings.manage"}

HOME = "finance"
BINDINGS = {"own": {HOME: None}, "other": {"marketing": None}, "all": {"*": None}}


def expected(role: str, action: str, scope: str) -> bool:
    if action not in MAY[role]:
        return False
    if scope == "all":
        return True
    if scope == "own":
        return action not in GLOBAL
    return False


def principal(bindings: dict[str, Role], kind: PrincipalKind = PrincipalKind.USER) -> Principal:
    return Principal(kind=kind, id="u1", name="ana", bindings=bindings)


def test_action_catalogue_is_the_one_the_table_knows() -> None:
    assert {a.value for a in Action} == ADMIN


@pytest.mark.parametrize(
    ("role", "action", "scope"),
    list(itertools.product(MAY, sorted(ADMIN), BINDINGS)),
)
def test_matrix(role: str, action: str, scope: str) -> None:
    (namespace,) = BINDINGS[scope]
    who = principal({namespace: Role.parse(role)})
    decision = authorize(who, Action(action), Resource(HOME, "workflow", "nightly"))
    assert decision.allowed is expected(role, action, scope)
    assert bool(decision) is decision.allowed
    assert decision.reason


@pytest.mark.parametrize(("role", "action"), list(itertools.product(MAY, sorted(ADMIN))))
def test_resource_in_every_namespace_needs_a_star_binding(role: str, action: str) -> None:
    everywhere = Resource("*", "run")
    assert not authorize(principal({HOME: Role.ADMIN}), Action(action), everywhere)
    star = authorize(principal({"*": Role.parse(role)}), Action(action), everywhere)
    assert star.allowed is (action in MAY[role])


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_kind_grants_nothing_by_itself(kind: PrincipalKind) -> None:
    nobody = principal({}, kind)
    for action in Action:
        assert not authorize(nobody, action, Resource(HOME, "workflow"))


def test_highest_of_own_and_star_binding_wins() -> None:
    who = principal({"*": Role.VIEWER, HOME: Role.EDITOR})
    assert role_in(who, HOME) is Role.EDITOR
    assert role_in(who, "marketing") is Role.VIEWER
    assert role_in(who, "*") is Role.VIEWER
    assert authorize(who, Action.DEPLOY, Resource(HOME, "workflow"))
    assert not authorize(who, Action.DEPLOY, Resource("marketing", "workflow"))
    assert authorize(who, Action.READ, Resource("marketing", "workflow"))


def test_reason_names_the_role_needed() -> None:
    decision = authorize(principal({HOME: Role.VIEWER}), Action.CANCEL, Resource(HOME, "run", "r1"))
    assert not decision
    assert "viewer" in decision.reason and "operator" in decision.reason
    assert "finance" in decision.reason


def test_require_raises_forbidden() -> None:
    who = principal({HOME: Role.OPERATOR})
    require(who, Action.TRIGGER, Resource(HOME, "workflow"))
    with pytest.raises(Forbidden, match="editor"):
        require(who, Action.DEPLOY, Resource(HOME, "workflow"))


# ------------------------------------------------------------------ bulk and indirect


def test_bulk_cancel_needs_every_namespace() -> None:
    who = principal({HOME: Role.OPERATOR, "ops": Role.VIEWER})
    runs = [Resource(HOME, "run", "r1"), Resource(HOME, "run", "r2")]
    assert authorize_all(who, Action.CANCEL, runs)
    denied = authorize_all(who, Action.CANCEL, [*runs, Resource("ops", "run", "r3")])
    assert not denied
    assert "ops" in denied.reason


def test_trigger_that_starts_another_namespace_workflow_checks_it_too() -> None:
    who = principal({HOME: Role.OPERATOR})
    chain = [Resource(HOME, "workflow", "extract"), Resource("marketing", "workflow", "load")]
    assert not authorize_all(who, Action.TRIGGER, chain)
    both = principal({HOME: Role.OPERATOR, "marketing": Role.OPERATOR})
    assert authorize_all(both, Action.TRIGGER, chain)


def test_bulk_accepts_a_generator_and_an_empty_set() -> None:
    who = principal({HOME: Role.VIEWER})
    assert authorize_all(who, Action.READ, (Resource(HOME, "run", str(i)) for i in range(3)))
    assert authorize_all(who, Action.DEPLOY, [])


# ------------------------------------------------------------------ granting


@pytest.mark.parametrize(
    ("holder", "grant", "ok"),
    [
        ({HOME: Role.ADMIN}, {HOME: Role.OPERATOR}, True),
        ({HOME: Role.ADMIN}, {HOME: Role.ADMIN}, True),
        ({HOME: Role.ADMIN}, {"marketing": Role.VIEWER}, False),
        ({HOME: Role.ADMIN}, {"*": Role.VIEWER}, False),
        ({HOME: Role.EDITOR}, {HOME: Role.VIEWER}, False),
        ({"*": Role.ADMIN}, {"*": Role.ADMIN, HOME: Role.VIEWER}, True),
        ({"*": Role.EDITOR}, {HOME: Role.VIEWER}, False),
        ({HOME: Role.ADMIN, "ops": Role.OPERATOR}, {HOME: Role.VIEWER, "ops": Role.VIEWER}, False),
    ],
)
def test_grant_never_escalates(holder: dict[str, Role], grant: dict[str, Role], ok: bool) -> None:
    assert authorize_grant(principal(holder), grant).allowed is ok


# ------------------------------------------------------------------ values


def test_principal_is_frozen_and_its_bindings_cannot_change() -> None:
    source = {HOME: Role.VIEWER}
    who = principal(source)
    source[HOME] = Role.ADMIN
    assert who.bindings[HOME] is Role.VIEWER
    with pytest.raises(TypeError):
        who.bindings[HOME] = Role.ADMIN  # type: ignore[index]
    with pytest.raises(AttributeError):
        who.name = "eve"  # type: ignore[misc]
    assert hash(who) == hash(principal({}))


@pytest.mark.parametrize("bad", ["", "Finance", "a/b", "-x", "x" * 64, "a b", "é"])
def test_bad_namespaces_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Resource(bad, "workflow")
    with pytest.raises(ValueError, match="namespace"):
        principal({bad: Role.VIEWER})


def test_role_parse_and_order() -> None:
    assert Role.parse(" Operator ") is Role.OPERATOR
    assert Role.VIEWER < Role.OPERATOR < Role.EDITOR < Role.ADMIN
    with pytest.raises(ValueError, match="viewer, operator, editor, admin"):
        Role.parse("root")


def test_decision_is_falsy_when_denied() -> None:
    denied = Decision(False, "no")
    assert not denied
    with pytest.raises(Forbidden, match="no"):
        denied.raise_if_denied()
