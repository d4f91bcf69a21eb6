"""Who may call which route: declared at the route, read back as one table.

Every route of the server (API and UI) is marked where its path is written: `public`
(health, login, static files, signed webhooks), or `rule(action, target)`: the `Action`
it needs and the `Target` (in `web.targets`) whose namespaces that action is checked
against::

    @router.post("/{run_id}/cancel", response_model=Run)
    @rule(Action.CANCEL, targets.run)
    def cancel(request: Request, run_id: str) -> RecordModel: ...

The guard reads the matched route's mark; a route with none is refused (fail closed).
`access_table` reads every mark off the routes, for reading and for
``tests/integration/test_route_policy.py``, which enumerates every route so that a new
one cannot be added without a decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import BaseRoute

from orchestrion.app import App
from orchestrion.auth.principals import Action, Resource

__all__ = [
    "PUBLIC_ROUTE",
    "Access",
    "AccessTable",
    "Check",
    "Rule",
    "Target",
    "access_of",
    "access_table",
    "public",
    "rule",
]

#: (resource kind, namespace) pairs a request touches, each to be allowed for its action.
Check = tuple[Action, Resource]
Target = Callable[[Request, App, Action], Awaitable[list[Check]]]

#: The mark of a route that needs no principal.
PUBLIC_ROUTE: Final = "public"

#: The attribute of an endpoint function that holds its mark.
_MARK: Final = "__orchestrion_access__"

E = TypeVar("E", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: `action` on every resource its `target` finds in the request."""

    action: Action
    target: Target
    #: What the audit log calls it, when not the action's own name (e.g. ``run.mark``).
    audit_as: str | None = None
    #: A route whose body carries a credential (a password): the audit record keeps the
    #: values of these fields only, of the others just their names and that a value was
    #: given. None keeps the whole body (masked); secret routes keep no value at all.
    audit_fields: frozenset[str] | None = None

    @property
    def mutating(self) -> bool:
        """True for a rule on anything but reading: such requests are audited, allowed or not."""
        return self.action is not Action.READ

    @property
    def kept_fields(self) -> frozenset[str] | None:
        """The body fields whose values an audit record may hold; None: all of them. A
        route managing secrets keeps none, whatever it declared: its body is a value."""
        if self.action is Action.MANAGE_SECRETS:
            return frozenset()
        return self.audit_fields

    @property
    def audit_name(self) -> str:
        """The action as the audit log names it: `audit_as`, else the action's own name."""
        return self.audit_as or self.action.value


#: A route's mark: its rule, or open to anyone.
Access = Rule | Literal["public"]


def _mark(endpoint: E, access: Access) -> E:
    # On the function, not the route object: FastAPI keeps the endpoint through
    # `include_router`, and the guard finds it on the matched route.
    setattr(endpoint, _MARK, access)
    return endpoint


def rule(
    action: Action,
    target: Target,
    audit_as: str | None = None,
    *,
    audit_fields: Iterable[str] | None = None,
) -> Callable[[E], E]:
    """Declare, at the route, the action a caller needs on what `target` says it touches
    (and, for a route whose body carries a credential, which fields the audit may keep)."""
    kept = None if audit_fields is None else frozenset(audit_fields)
    access = Rule(action, target, audit_as, kept)

    def mark(endpoint: E) -> E:
        return _mark(endpoint, access)

    return mark


def public(endpoint: E) -> E:
    """Declare a route open to callers without credentials (they prove themselves otherwise,
    like a webhook's signature, or it is how one signs in)."""
    return _mark(endpoint, PUBLIC_ROUTE)


def access_of(endpoint: object) -> Access | None:
    """A route's mark, read off its endpoint; None: undecided, so refused."""
    found = getattr(endpoint, _MARK, None)
    return found if isinstance(found, Rule) or found == PUBLIC_ROUTE else None


@dataclass(frozen=True, slots=True)
class AccessTable:
    """Every decided route, as (method, path template) keys."""

    public: frozenset[tuple[str, str]]
    rules: Mapping[tuple[str, str], Rule]


def access_table(routes: Iterable[BaseRoute]) -> AccessTable:
    """The table of these routes (through included routers). HEAD is left out: it is
    GET's, with GET's mark. Undecided routes are in neither part."""
    public_keys: set[tuple[str, str]] = set()
    rules: dict[tuple[str, str], Rule] = {}
    for route in iter_route_contexts(list(routes)):
        access = access_of(route.endpoint)
        if access is None or not isinstance(route.path, str):
            continue
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            if access == PUBLIC_ROUTE:
                public_keys.add((method, route.path))
            else:
                rules[(method, route.path)] = access
    return AccessTable(public=frozenset(public_keys), rules=rules)
