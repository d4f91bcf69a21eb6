"""Who is asking, what they want to do, and the one pure decision: may they?

Roles are ordered, each including everything below it:

* ``viewer`` reads workflows, runs, logs, schedules and triggers;
* ``operator`` also triggers, cancels, retries and reruns runs and sends events;
* ``editor`` also deploys, changes and pauses workflows, schedules and triggers, and backfills;
* ``admin`` also manages tokens and secrets and reads the audit log.

A role is bound per *namespace* (a group of workflows, e.g. a team); the namespace ``*`` binds
it on every namespace. A principal's role on a namespace is the highest of its binding there
and its ``*`` binding: bindings only grant, nothing denies.

Two actions are *global*, because their objects belong to no namespace and holding them lets
a principal reach every namespace: managing user accounts (a password reset is a takeover)
and server settings. Only a role bound on ``*`` counts for them. Likewise a resource whose
namespace is ``*`` (e.g. "list runs in every namespace") needs a ``*`` binding.

`authorize` is pure (P3): no store, no clock, no exceptions for a "no". Edges call it (or
`require`, which raises `Forbidden`) before every action; bulk and indirect actions (a bulk
cancel, a run trigger that starts a workflow in another namespace) use `authorize_all`, which
allows only when every resource is allowed. `authorize_grant` stops a principal handing out
more than it holds (tokens, role bindings).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from orchestrion.errors import Forbidden, InvalidValue

__all__ = [
    "ALL_NAMESPACES",
    "GLOBAL_ACTIONS",
    "NAMESPACE_PATTERN",
    "NAMESPACE_RE",
    "REQUIRED_ROLE",
    "Action",
    "Decision",
    "Principal",
    "PrincipalKind",
    "Resource",
    "Role",
    "authorize",
    "authorize_all",
    "authorize_grant",
    "check_namespace",
    "require",
    "role_in",
]

#: The namespace that stands for every namespace, in bindings and resources.
ALL_NAMESPACES: Final = "*"
#: What a namespace name may look like (no ``/``: secrets bind ``namespace/name``; no
#: ``..``-only name can be made either, since it must start with a letter or digit). The
#: one definition: the spec's `Namespace` field, token and user bindings, the secret routes
#: and every `Resource` check a namespace against it.
NAMESPACE_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
NAMESPACE_RE: Final = re.compile(NAMESPACE_PATTERN[1:-1])


class Role(enum.IntEnum):
    """Ordered roles: a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    EDITOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """The role as written in bindings, commands and the API (``operator``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"operator"`` (any case) to `Role.OPERATOR`; ValueError names the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r}: use one of {choices}") from None


class PrincipalKind(enum.Enum):
    """What a principal signed in with: a user's password (a UI session) or an API token.
    The scheduler and webhooks act without a principal (audited as ``system``)."""

    USER = "user"
    TOKEN = "token"


class Action(enum.Enum):
    """Every action of the API, CLI and UI that needs a permission."""

    # viewer
    READ = "read"
    #: Approve or reject an approval step: the route lets any role through, and the step's
    #: own ``approvers.role`` decides (`App.waits`).
    DECIDE = "run.decide"
    # operator
    TRIGGER = "run.trigger"
    CANCEL = "run.cancel"
    RETRY = "run.retry"
    RERUN = "run.rerun"
    #: Mark a run to keep (or not) under retention.
    KEEP = "run.keep"
    SEND_EVENT = "events.send"
    #: Send a signal to a run (a ``wait_for: {signal}`` step takes it).
    SIGNAL = "run.signal"
    # editor
    DEPLOY = "workflow.deploy"
    DELETE_WORKFLOW = "workflow.delete"
    PAUSE = "workflow.pause"
    SCHEDULE = "schedule.change"
    CHANGE_TRIGGER = "trigger.change"
    BACKFILL = "schedule.backfill"
    # admin
    MANAGE_TOKENS = "tokens.manage"
    MANAGE_SECRETS = "secrets.manage"
    MANAGE_CONNECTIONS = "connections.manage"
    MANAGE_NOTIFICATIONS = "notifications.manage"
    READ_AUDIT = "audit.read"
    MANAGE_USERS = "users.manage"
    SETTINGS = "settings.manage"
    #: Plan or apply a declarative project (issue 19) on a namespace.
    APPLY_PROJECT = "project.apply"


#: The lowest role that may do each action.
REQUIRED_ROLE: Final[Mapping[Action, Role]] = MappingProxyType(
    {
        Action.READ: Role.VIEWER,
        Action.DECIDE: Role.VIEWER,
        Action.TRIGGER: Role.OPERATOR,
        Action.CANCEL: Role.OPERATOR,
        Action.RETRY: Role.OPERATOR,
        Action.RERUN: Role.OPERATOR,
        Action.KEEP: Role.OPERATOR,
        Action.SEND_EVENT: Role.OPERATOR,
        Action.SIGNAL: Role.OPERATOR,
        Action.DEPLOY: Role.EDITOR,
        Action.DELETE_WORKFLOW: Role.EDITOR,
        Action.PAUSE: Role.EDITOR,
        Action.SCHEDULE: Role.EDITOR,
        Action.CHANGE_TRIGGER: Role.EDITOR,
        Action.BACKFILL: Role.EDITOR,
        Action.MANAGE_TOKENS: Role.ADMIN,
        Action.MANAGE_SECRETS: Role.ADMIN,
        Action.MANAGE_CONNECTIONS: Role.ADMIN,
        Action.MANAGE_NOTIFICATIONS: Role.ADMIN,
        Action.READ_AUDIT: Role.ADMIN,
        Action.MANAGE_USERS: Role.ADMIN,
        Action.SETTINGS: Role.ADMIN,
        Action.APPLY_PROJECT: Role.ADMIN,
    }
)

#: Actions on objects outside any namespace: only a ``*`` binding counts.
GLOBAL_ACTIONS: Final = frozenset({Action.MANAGE_USERS, Action.SETTINGS})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller. ``bindings`` maps a namespace (or ``*``) to a role."""

    kind: PrincipalKind
    id: str
    name: str
    bindings: Mapping[str, Role] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for namespace in self.bindings:
            check_namespace(namespace)
        # A read-only copy: a principal cannot gain a role after it was authenticated.
        msgspec.structs.force_setattr(self, "bindings", MappingProxyType(dict(self.bindings)))

    def __hash__(self) -> int:
        return hash((self.kind, self.id))


class Resource(msgspec.Struct, frozen=True):
    """The object of an action: ``Resource("finance", "workflow", "nightly")``."""

    namespace: str
    kind: str
    name: str = ""

    def __post_init__(self) -> None:
        check_namespace(self.namespace)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.name else self.kind


class Decision(msgspec.Struct, frozen=True):
    """The answer, with a reason fit for an audit record or a 403 message.

    Truthy exactly when allowed, so ``if authorize(...):`` means what it says.
    """

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed

    def raise_if_denied(self) -> None:
        """Raise `Forbidden` carrying the reason when the decision is a no."""
        if not self.allowed:
            raise Forbidden(self.reason)


def role_in(principal: Principal, namespace: str) -> Role | None:
    """The principal's role on ``namespace``: the higher of its own and its ``*`` binding.

    For ``namespace == "*"`` only the ``*`` binding counts.
    """
    roles = [principal.bindings.get(ALL_NAMESPACES)]
    if namespace != ALL_NAMESPACES:
        roles.append(principal.bindings.get(namespace))
    held = [role for role in roles if role is not None]
    return max(held) if held else None


def authorize(principal: Principal, action: Action, resource: Resource) -> Decision:
    """May ``principal`` do ``action`` on ``resource``? Pure; never raises for a "no"."""
    needed = REQUIRED_ROLE[action]
    scope = ALL_NAMESPACES if action in GLOBAL_ACTIONS else resource.namespace
    role = role_in(principal, scope)
    who = f"{principal.kind.value} {principal.name!r}"
    where = "all namespaces" if scope == ALL_NAMESPACES else f"namespace {scope!r}"
    if role is None:
        return Decision(False, f"{who} has no role on {where}; {action.value} needs {needed.label}")
    if role < needed:
        return Decision(
            False,
            f"{who} is {role.label} on {where}; {action.value} on {resource} needs {needed.label}",
        )
    return Decision(True, f"{who} is {role.label} on {where}: may {action.value} on {resource}")


def authorize_all(principal: Principal, action: Action, resources: Iterable[Resource]) -> Decision:
    """Allow a bulk or indirect action only when every resource is allowed.

    The first refusal is returned as is; an empty set is allowed (there is nothing to do).
    """
    count = 0
    for resource in resources:
        decision = authorize(principal, action, resource)
        if not decision.allowed:
            return decision
        count += 1
    return Decision(True, f"may {action.value} on all {count} resources")


def authorize_grant(principal: Principal, bindings: Mapping[str, Role]) -> Decision:
    """May ``principal`` hand out ``bindings`` (to a token or a user)? No escalation.

    Granting on a namespace needs ``tokens.manage`` there (admin) and a role at least as
    high as the one granted; granting on ``*`` needs admin on ``*``.
    """
    for namespace, role in bindings.items():
        decision = authorize(principal, Action.MANAGE_TOKENS, Resource(namespace, "binding"))
        if not decision.allowed:
            return decision
        held = role_in(principal, namespace)
        if held is None or held < role:  # pragma: no cover - admin holds every role
            return Decision(False, f"cannot grant {role.label} on {namespace!r}")
    return Decision(True, "may grant " + _describe(bindings))


def require(principal: Principal, action: Action, resource: Resource) -> None:
    """`authorize`, raising `Forbidden` on a refusal (for edges)."""
    authorize(principal, action, resource).raise_if_denied()


def _describe(bindings: Mapping[str, Role]) -> str:
    return ", ".join(f"{role.label} on {ns!r}" for ns, role in sorted(bindings.items())) or "none"


def check_namespace(namespace: object, *, wildcard: bool = True) -> str:
    """`namespace` if it is a namespace name (or ``*`` with `wildcard`); else `InvalidValue`
    (a 422 at the API, a field error in a spec) naming it and the rule."""
    if isinstance(namespace, str) and (
        NAMESPACE_RE.fullmatch(namespace) or (wildcard and namespace == ALL_NAMESPACES)
    ):
        return namespace
    shown = namespace[:70] if isinstance(namespace, str) else namespace
    raise InvalidValue(
        f"invalid namespace {shown!r}: use 1 to 63 lowercase letters, digits, '.', '_'"
        " or '-', starting with a letter or digit"
        + (" (or '*' for all namespaces)" if wildcard else "")
    )
