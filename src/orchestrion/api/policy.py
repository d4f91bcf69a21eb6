"""Who may call which route: one table, read top to bottom, and nothing else decides.

Every route of the server (API and UI) is either in `PUBLIC` (health, login, static files,
signed webhooks) or has a `Rule` here: the `Action` it needs and the `Target` whose
namespaces that action is checked against. A route with neither is refused (fail closed),
and ``tests/integration/test_route_policy.py`` enumerates every route so that a new one
cannot be added without a decision.

A target turns a request into the resources it touches. Indirect effects count: deploying
a workflow that runs another as a sub-workflow needs ``run.trigger`` on the other's
namespace; sending an event needs ``events.send`` on every namespace whose workflows it
would start. Reads of lists check that the principal may read *some* namespace; the
handlers then show only what `visible` allows.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

from orchestrion.app import App
from orchestrion.auth.principals import (
    ALL_NAMESPACES,
    NAMESPACE_RE,
    Action,
    Principal,
    Resource,
    authorize,
)
from orchestrion.errors import NotFound, ParameterError
from orchestrion.spec.loading import spec_from_data
from orchestrion.spec.model import SubWorkflowAction
from orchestrion.triggers.events import type_matches

__all__ = [
    "PUBLIC",
    "RULES",
    "Check",
    "Rule",
    "visible",
]

#: (resource kind, namespace) pairs a request touches, each to be allowed for its action.
Check = tuple[Action, Resource]
Target = Callable[[Request, App, Action], Awaitable[list[Check]]]


@dataclass(frozen=True, slots=True)
class Rule:
    action: Action
    target: Target
    #: What the audit log calls it, when not the action's own name (e.g. ``run.mark``).
    audit_as: str | None = None

    @property
    def mutating(self) -> bool:
        return self.action is not Action.READ

    @property
    def audit_name(self) -> str:
        return self.audit_as or self.action.value


def visible(principal: Principal, namespace: str, action: Action = Action.READ) -> bool:
    """May the principal see (or act on) objects of this namespace? For list filtering."""
    return bool(authorize(principal, action, Resource(namespace, "object")))


# ------------------------------------------------------------------------------- targets


async def _anywhere(request: Request, app: App, action: Action) -> list[Check]:
    """Lists: the principal needs the action on at least one namespace (handlers filter)."""
    principal: Principal = request.state.principal
    for namespace in principal.bindings:
        if visible(principal, namespace, action):
            return []
    return [(action, Resource(ALL_NAMESPACES, "list"))]  # refused, with a clear reason


async def _signed_in(request: Request, app: App, action: Action) -> list[Check]:
    """Any principal (e.g. who am I, the OpenAPI document)."""
    return []


def _param(request: Request, name: str) -> str:
    value = request.path_params.get(name)
    if not isinstance(value, str):
        raise ParameterError(f"missing path parameter {name!r}")
    return value


async def _workflow(request: Request, app: App, action: Action) -> list[Check]:
    name = _param(request, "name")
    return [(action, Resource(app.workflows.namespace_of(name), "workflow", name))]


async def _run(request: Request, app: App, action: Action) -> list[Check]:
    run = app.runs.get_run(_param(request, "run_id"))
    namespace = _namespace_or_default(app, run.workflow)
    return [(action, Resource(namespace, "run", run.id))]


async def _backfill(request: Request, app: App, action: Action) -> list[Check]:
    backfill = app.triggers.get_backfill(_param(request, "backfill_id"))
    namespace = _namespace_or_default(app, backfill.workflow)
    return [(action, Resource(namespace, "backfill", backfill.id))]


async def _secret(request: Request, app: App, action: Action) -> list[Check]:
    namespace, name = _param(request, "namespace"), _param(request, "name")
    if not NAMESPACE_RE.fullmatch(namespace):
        raise ParameterError(f"invalid namespace {namespace[:70]!r}")
    return [(action, Resource(namespace, "secret", name))]


async def _body(request: Request) -> dict[str, object]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ParameterError("the request body is not JSON") from None
    return data if isinstance(data, dict) else {}


async def _body_workflow(request: Request, app: App, action: Action) -> list[Check]:
    """A backfill: the workflow named in the body."""
    name = (await _body(request)).get("workflow")
    if not isinstance(name, str):
        return [(action, Resource(ALL_NAMESPACES, "workflow"))]
    return [(action, Resource(app.workflows.namespace_of(name), "workflow", name))]


async def _deploy(request: Request, app: App, action: Action) -> list[Check]:
    """A spec in the body: deploy on its namespace (and on the namespace of the workflow it
    replaces), and trigger on every namespace whose workflows it would start."""
    data = await _body(request)
    try:
        spec = spec_from_data(data.get("spec", data), source="request")
    except Exception:  # the handler reports the spec's errors; here: the namespace it names
        raw = data.get("spec", data)
        namespace = raw.get("namespace", "default") if isinstance(raw, dict) else "default"
        return [(action, Resource(str(namespace), "workflow"))]
    checks: list[Check] = [(action, Resource(spec.namespace, "workflow", spec.name))]
    try:
        current = app.workflows.namespace_of(spec.name)
    except NotFound:
        current = spec.namespace
    checks.append((action, Resource(current, "workflow", spec.name)))
    children = {t.action.workflow for t in spec.tasks if isinstance(t.action, SubWorkflowAction)}
    known = app.workflows.namespaces_of(children)
    for child in sorted(children):
        checks.append(
            (Action.TRIGGER, Resource(known.get(child, spec.namespace), "workflow", child))
        )
    sources = {t.after.workflow for t in spec.triggers if t.after is not None}
    watched = app.workflows.namespaces_of(sources)
    for source in sorted(sources):
        checks.append(
            (Action.READ, Resource(watched.get(source, spec.namespace), "workflow", source))
        )
    return checks


async def _event(request: Request, app: App, action: Action) -> list[Check]:
    """An event: `events.send` on every namespace whose workflows it would start."""
    event_type = (await _body(request)).get("type")
    if not isinstance(event_type, str):
        return await _anywhere(request, app, action)
    namespaces = {
        r.namespace
        for r in app.workflows.list_workflows()
        for t in r.spec.triggers
        if t.event is not None and type_matches(t.event, event_type)
    }
    if not namespaces:
        return await _anywhere(request, app, action)
    return [(action, Resource(ns, "event", event_type)) for ns in sorted(namespaces)]


async def _global(request: Request, app: App, action: Action) -> list[Check]:
    """Objects outside any namespace (users, settings): a ``*`` binding is needed."""
    return [(action, Resource(ALL_NAMESPACES, "account"))]


async def _grant(request: Request, app: App, action: Action) -> list[Check]:
    """Making a token: admin on every namespace it binds (checked again, for escalation,
    by the handler with `authorize_grant`)."""
    bindings = (await _body(request)).get("bindings")
    namespaces = sorted(bindings) if isinstance(bindings, dict) and bindings else []
    if not namespaces:
        return await _anywhere(request, app, action)
    return [(action, Resource(str(ns), "token")) for ns in namespaces]


def _namespace_or_default(app: App, workflow: str) -> str:
    try:
        return app.workflows.namespace_of(workflow)
    except NotFound:  # a run of a workflow that is gone: only ``*`` holders see it
        return ALL_NAMESPACES


# --------------------------------------------------------------------------------- table

#: Routes that need no principal: (method, path template). Webhooks prove themselves by
#: signature; the login page is how one becomes a principal.
PUBLIC: Final = frozenset(
    {
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/ready"),
        ("POST", "/hooks/{name}"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/static/{path:path}"),
    }
)

R, A = Rule, Action

#: (method, path template) → the rule. Grouped as the routers are.
RULES: Final[dict[tuple[str, str], Rule]] = {
    # documentation
    ("GET", "/api/v1/openapi.json"): R(A.READ, _signed_in),
    ("GET", "/api/v1/docs"): R(A.READ, _signed_in),
    ("GET", "/api/v1/me"): R(A.READ, _signed_in),
    # workflows
    ("GET", "/api/v1/workflows"): R(A.READ, _anywhere),
    ("POST", "/api/v1/workflows"): R(A.DEPLOY, _deploy),
    ("GET", "/api/v1/workflows/{name}"): R(A.READ, _workflow),
    ("GET", "/api/v1/workflows/{name}/versions"): R(A.READ, _workflow),
    ("POST", "/api/v1/workflows/{name}/pause"): R(A.PAUSE, _workflow),
    ("POST", "/api/v1/workflows/{name}/unpause"): R(A.PAUSE, _workflow, "workflow.unpause"),
    ("POST", "/api/v1/workflows/{name}/runs"): R(A.TRIGGER, _workflow),
    # runs
    ("GET", "/api/v1/runs"): R(A.READ, _anywhere),
    ("GET", "/api/v1/runs/{run_id}"): R(A.READ, _run),
    ("POST", "/api/v1/runs/{run_id}/cancel"): R(A.CANCEL, _run),
    ("POST", "/api/v1/runs/{run_id}/retry"): R(A.RETRY, _run),
    ("POST", "/api/v1/runs/{run_id}/rerun"): R(A.RERUN, _run),
    ("POST", "/api/v1/runs/{run_id}/tasks/{task}/mark"): R(A.RETRY, _run, "run.mark"),
    ("GET", "/api/v1/runs/{run_id}/tasks"): R(A.READ, _run),
    ("GET", "/api/v1/runs/{run_id}/attempts"): R(A.READ, _run),
    ("GET", "/api/v1/runs/{run_id}/events"): R(A.READ, _run),
    ("GET", "/api/v1/runs/{run_id}/logs"): R(A.READ, _run),
    ("GET", "/api/v1/runs/{run_id}/logs/stream"): R(A.READ, _run),
    ("GET", "/api/v1/stream"): R(A.READ, _anywhere),
    # system
    ("GET", "/api/v1/workers"): R(A.READ, _anywhere),
    ("GET", "/api/v1/events"): R(A.READ, _anywhere),
    # triggers
    ("POST", "/api/v1/events"): R(A.SEND_EVENT, _event),
    ("GET", "/api/v1/schedules"): R(A.READ, _anywhere),
    ("GET", "/api/v1/backfills"): R(A.READ, _anywhere),
    ("POST", "/api/v1/backfills"): R(A.BACKFILL, _body_workflow),
    ("GET", "/api/v1/backfills/{backfill_id}"): R(A.READ, _backfill),
    ("POST", "/api/v1/backfills/{backfill_id}/cancel"): R(A.BACKFILL, _backfill, "backfill.cancel"),
    # secrets (values never leave; names are for admins of the namespace)
    ("GET", "/api/v1/secrets"): R(A.MANAGE_SECRETS, _anywhere, "secrets.list"),
    ("PUT", "/api/v1/secrets/{namespace}/{name}"): R(A.MANAGE_SECRETS, _secret, "secret.set"),
    ("DELETE", "/api/v1/secrets/{namespace}/{name}"): R(A.MANAGE_SECRETS, _secret, "secret.delete"),
    # queue limits (they bind every namespace's tasks: a server setting)
    ("GET", "/api/v1/queues"): R(A.READ, _anywhere),
    ("PUT", "/api/v1/queues/{queue}/limit"): R(A.SETTINGS, _global, "queue.limit"),
    ("DELETE", "/api/v1/queues/{queue}/limit"): R(A.SETTINGS, _global, "queue.unlimit"),
    # accounts
    ("GET", "/api/v1/users"): R(A.MANAGE_USERS, _global, "users.list"),
    ("POST", "/api/v1/users"): R(A.MANAGE_USERS, _global, "user.create"),
    ("PATCH", "/api/v1/users/{user}"): R(A.MANAGE_USERS, _global, "user.change"),
    ("GET", "/api/v1/tokens"): R(A.MANAGE_TOKENS, _anywhere, "tokens.list"),
    ("POST", "/api/v1/tokens"): R(A.MANAGE_TOKENS, _grant, "token.create"),
    ("POST", "/api/v1/tokens/{token_id}/revoke"): R(A.MANAGE_TOKENS, _anywhere, "token.revoke"),
    ("GET", "/api/v1/audit"): R(A.READ_AUDIT, _anywhere),
    # the web UI
    ("GET", "/"): R(A.READ, _anywhere),
    ("POST", "/logout"): R(A.READ, _signed_in, "session.logout"),
    ("GET", "/workflows"): R(A.READ, _anywhere),
    ("GET", "/workflows/{name}"): R(A.READ, _workflow),
    ("POST", "/workflows/{name}/pause"): R(A.PAUSE, _workflow),
    ("GET", "/workflows/{name}/trigger"): R(A.READ, _workflow),
    ("POST", "/workflows/{name}/trigger"): R(A.TRIGGER, _workflow),
    ("GET", "/runs"): R(A.READ, _anywhere),
    ("GET", "/runs/{run_id}"): R(A.READ, _run),
    ("GET", "/runs/{run_id}/fragments/panel"): R(A.READ, _run),
    ("GET", "/runs/{run_id}/fragments/timeline"): R(A.READ, _run),
    ("POST", "/runs/{run_id}/cancel"): R(A.CANCEL, _run),
    ("POST", "/runs/{run_id}/retry"): R(A.RETRY, _run),
    ("POST", "/runs/{run_id}/rerun"): R(A.RERUN, _run),
    ("POST", "/runs/{run_id}/tasks/{task}/mark"): R(A.RETRY, _run, "run.mark"),
    ("GET", "/fragments/overview"): R(A.READ, _anywhere),
    ("GET", "/fragments/workers"): R(A.READ, _anywhere),
    ("GET", "/fragments/backfills"): R(A.READ, _anywhere),
    ("GET", "/fragments/events"): R(A.READ, _anywhere),
    ("GET", "/events"): R(A.READ, _anywhere),
    ("GET", "/workers"): R(A.READ, _anywhere),
    ("GET", "/backfills"): R(A.READ, _anywhere),
    ("GET", "/audit"): R(A.READ_AUDIT, _anywhere),
}
