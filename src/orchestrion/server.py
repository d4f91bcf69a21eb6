"""`create_server(app)`: the REST API and the web UI on one ASGI application over one `App`.

The assembly sits above both faces on purpose: `orchestrion.api` and `orchestrion.ui` are
siblings that share `orchestrion.web` (the guard, the policy, the request's scope) and
never import each other, so the one place that knows both exist is this module, and the
CLI serves what it builds.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from orchestrion.api.errors import install_error_handlers
from orchestrion.api.routes import router as api_router
from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.spec.bundle import MAX_BUNDLE_BYTES
from orchestrion.ui import router as ui_router
from orchestrion.web import targets
from orchestrion.web.guard import Authenticate, guard
from orchestrion.web.headers import AlwaysHeaders
from orchestrion.web.limits import BodyLimit
from orchestrion.web.metrics import RequestMetrics
from orchestrion.web.policy import access_table, rule
from orchestrion.web.probes import ProbeAudit, ProbeLimiter

__all__ = ["MAX_BODY_BYTES", "PROBE_RECORDS_PER_MINUTE", "create_server"]

#: Bodies above this are refused with 413 before any handler reads them.
MAX_BODY_BYTES = 1_048_576
#: Audit records of refused requests (401, 405, 413) per client address and kind a minute.
PROBE_RECORDS_PER_MINUTE = 10


def create_server(
    app: App,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    probe_records_per_minute: int = PROBE_RECORDS_PER_MINUTE,
) -> FastAPI:
    """The server's ASGI application: every route guarded by its rule, or public.

    Requests refused before routing (401, 405, 413) are audited, at most
    `probe_records_per_minute` per client address and kind of refusal."""
    server = FastAPI(
        title="Orchestrion",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Every route passes the guard: its rule decides, or it is refused.
        dependencies=[Depends(guard)],
    )
    server.state.orchestrion = app
    _documentation_is_for_the_signed_in(server)
    _schemas_without_docstrings(server)
    install_error_handlers(server)
    server.include_router(api_router)
    server.include_router(ui_router)  # the web UI at /, after the API's routes
    public = access_table(server.routes).public
    probes = ProbeAudit(app, ProbeLimiter(probe_records_per_minute))

    async def too_large(scope: Scope, declared: str | None) -> None:
        reason = f"body over the {max_body_bytes}-byte limit"
        await probes.refused(scope, 413, reason, params={"content_length": declared})

    server.add_middleware(Authenticate, orchestrion=app, public=public, probes=probes)
    # Refuse a large body first (and audit the refusal, rate-limited like the others). A
    # version's code may be larger than any other body (JSON escapes source by a few percent).
    code_bytes = max(max_body_bytes, MAX_BUNDLE_BYTES * 5 // 4)
    server.add_middleware(
        BodyLimit,
        max_bytes=max_body_bytes,
        on_refuse=too_large,
        larger={"/api/v1/code/": code_bytes},
    )
    server.add_middleware(AlwaysHeaders)  # on every response, refusals included
    # Outermost: every request is counted and timed, refusals included (per server).
    server.state.request_metrics = CollectorRegistry(auto_describe=False)
    server.add_middleware(RequestMetrics, registry=server.state.request_metrics)
    return server


def _documentation_is_for_the_signed_in(server: FastAPI) -> None:
    """FastAPI's own routes (the OpenAPI document, the docs page) get their rule here: any
    principal may read them. (They are plain Starlette routes, which FastAPI's app-wide
    dependency, the guard, does not run on; `Authenticate` keeps anonymous callers out, as
    for every route not marked public. The mark puts them in the access table.)"""
    signed_in = rule(Action.READ, targets.signed_in)
    for route in server.routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and getattr(route, "path", None) in (
            server.openapi_url,
            server.docs_url,
        ):
            signed_in(endpoint)


def _schemas_without_docstrings(server: FastAPI) -> None:
    """Keep docstrings out of the OpenAPI document. pydantic makes a model's or an enum's
    docstring its schema's description, but those docstrings are written for readers of
    this code (they name modules and internals); the published document carries no schema
    descriptions, and it is pinned (``tests/integration/openapi_v1.json``). Describing the
    schemas to API clients would be a change of the document to make on purpose."""
    build = server.openapi

    def openapi() -> dict[str, Any]:
        if server.openapi_schema is None:
            for schema in build().get("components", {}).get("schemas", {}).values():
                schema.pop("description", None)
        assert server.openapi_schema is not None
        return server.openapi_schema

    server.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
