"""What a request touches: a rule's target turns it into the resources to authorise.

Indirect effects count: deploying a workflow that runs another as a sub-workflow needs
``run.trigger`` on the other's namespace. Sending an event needs ``events.send`` on some
namespace, and only that sender's namespaces' triggers see it (the route passes them on), so
that no namespace's triggers can make another's sends fail. Reads of lists check that the
principal may read *some* namespace; the handlers then show only what `web.scope` allows.

A target that raises `NotFound` lets the request through to its handler, which answers
404 (nothing exists to authorise against).
"""

from __future__ import annotations

from starlette.requests import Request

from orchestrion.app import App
from orchestrion.auth.principals import (
    ALL_NAMESPACES,
    NAMESPACE_RE,
    Action,
    Principal,
    Resource,
    authorize,
    check_namespace,
)
from orchestrion.errors import InvalidValue, NotFound, OrchestrionError, ParameterError
from orchestrion.spec.loading import spec_from_data
from orchestrion.spec.model import SubWorkflowAction
from orchestrion.spec.rules import load_json
from orchestrion.web.policy import Check
from orchestrion.web.request import principal_of

__all__ = [
    "anywhere",
    "backfill",
    "body_workflow",
    "connection",
    "deploy",
    "grant",
    "notification",
    "run",
    "secret",
    "server_wide",
    "signed_in",
    "visible",
    "workflow",
]


def visible(principal: Principal, namespace: str, action: Action = Action.READ) -> bool:
    """May the principal see (or act on) objects of this namespace? For list filtering."""
    return bool(authorize(principal, action, Resource(namespace, "object")))


async def anywhere(request: Request, app: App, action: Action) -> list[Check]:
    """Lists: the principal needs the action on at least one namespace (handlers filter)."""
    principal = principal_of(request)
    for namespace in principal.bindings:
        if visible(principal, namespace, action):
            return []
    return [(action, Resource(ALL_NAMESPACES, "list"))]  # refused, with a clear reason


async def signed_in(request: Request, app: App, action: Action) -> list[Check]:
    """Any principal (e.g. who am I, the OpenAPI document)."""
    return []


def _param(request: Request, name: str) -> str:
    value = request.path_params.get(name)
    if not isinstance(value, str):
        raise ParameterError(f"missing path parameter {name!r}")
    return value


async def workflow(request: Request, app: App, action: Action) -> list[Check]:
    """The workflow named by the path's ``{name}``."""
    name = _param(request, "name")
    return [(action, Resource(app.workflows.namespace_of(name), "workflow", name))]


async def run(request: Request, app: App, action: Action) -> list[Check]:
    """The run of the path's ``{run_id}``, in its workflow's namespace."""
    found = app.runs.get_run(_param(request, "run_id"))
    namespace = _namespace_or_default(app, found.workflow)
    return [(action, Resource(namespace, "run", found.id))]


async def backfill(request: Request, app: App, action: Action) -> list[Check]:
    """The backfill of the path's ``{backfill_id}``, in its workflow's namespace."""
    found = app.triggers.get_backfill(_param(request, "backfill_id"))
    namespace = _namespace_or_default(app, found.workflow)
    return [(action, Resource(namespace, "backfill", found.id))]


async def connection(request: Request, app: App, action: Action) -> list[Check]:
    """The connection of the path's ``{namespace}/{name}``."""
    namespace, name = _param(request, "namespace"), _param(request, "name")
    if not NAMESPACE_RE.fullmatch(namespace):
        raise ParameterError(f"invalid namespace {namespace[:70]!r}")
    return [(action, Resource(namespace, "connection", name))]


async def notification(request: Request, app: App, action: Action) -> list[Check]:
    """The notification channel or rule of the path's ``{namespace}/{name}``."""
    namespace, name = _param(request, "namespace"), _param(request, "name")
    if not NAMESPACE_RE.fullmatch(namespace):
        raise ParameterError(f"invalid namespace {namespace[:70]!r}")
    return [(action, Resource(namespace, "notification", name))]


async def secret(request: Request, app: App, action: Action) -> list[Check]:
    """The secret of the path's ``{namespace}/{name}``."""
    namespace, name = _param(request, "namespace"), _param(request, "name")
    check_namespace(namespace, wildcard=False)
    return [(action, Resource(namespace, "secret", name))]


async def _body(request: Request) -> dict[str, object]:
    try:
        data = load_json(await request.body() or b"{}", what="the request body")
    except InvalidValue:
        raise  # a ParameterError naming the problem
    except ValueError:
        raise ParameterError("the request body is not JSON") from None
    return data if isinstance(data, dict) else {}


async def body_workflow(request: Request, app: App, action: Action) -> list[Check]:
    """A backfill: the workflow named in the body."""
    name = (await _body(request)).get("workflow")
    if not isinstance(name, str):
        return [(action, Resource(ALL_NAMESPACES, "workflow"))]
    return [(action, Resource(app.workflows.namespace_of(name), "workflow", name))]


async def deploy(request: Request, app: App, action: Action) -> list[Check]:
    """A spec in the body: deploy on its namespace (and on the namespace of the workflow it
    replaces), and trigger on every namespace whose workflows it would start."""
    data = await _body(request)
    try:
        spec = spec_from_data(data.get("spec", data), source="request")
    except Exception as exc:  # the handler reports the spec's errors; here: its namespace
        raw = data.get("spec", data)
        namespace = raw.get("namespace", "default") if isinstance(raw, dict) else "default"
        if not isinstance(namespace, str) or not NAMESPACE_RE.fullmatch(namespace):
            # Nothing to authorise on: the spec's own error (422) names the namespace.
            if isinstance(exc, OrchestrionError):
                raise
            check_namespace(namespace, wildcard=False)
        return [(action, Resource(namespace, "workflow"))]
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


async def project(request: Request, app: App, action: Action) -> list[Check]:
    """A project in the body: the action on its namespace, and server settings when it
    declares queue limits or policies (both are cluster-wide)."""
    body = await _body(request)
    data = body.get("project")
    if not isinstance(data, dict) or not isinstance(data.get("namespace"), str):
        raise ParameterError("the body needs a project with a namespace")
    namespace = str(data["namespace"])
    check_namespace(namespace, wildcard=False)
    checks: list[Check] = [(action, Resource(namespace, "project"))]
    # The policy documents travel beside the declaration (`policies` of the body): either
    # one asks for the cluster-wide right, whatever the other says.
    if data.get("queues") or data.get("policies") or body.get("policies"):
        checks.append((Action.SETTINGS, Resource(ALL_NAMESPACES, "account")))
    return checks


async def server_wide(request: Request, app: App, action: Action) -> list[Check]:
    """Objects outside any namespace (users, settings): a ``*`` binding is needed."""
    return [(action, Resource(ALL_NAMESPACES, "account"))]


async def grant(request: Request, app: App, action: Action) -> list[Check]:
    """Making a token: admin on every namespace it binds (checked again, for escalation,
    by the handler with `authorize_grant`)."""
    bindings = (await _body(request)).get("bindings")
    namespaces = sorted(bindings) if isinstance(bindings, dict) and bindings else []
    if not namespaces:
        return await anywhere(request, app, action)
    return [(action, Resource(str(ns), "token")) for ns in namespaces]


def _namespace_or_default(app: App, workflow: str) -> str:
    try:
        return app.workflows.namespace_of(workflow)
    except NotFound:  # a run of a workflow that is gone: only ``*`` holders see it
        return ALL_NAMESPACES
