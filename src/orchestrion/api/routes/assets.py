"""Data assets: the catalogue, one asset's history and lineage, and materializing one.

Asset keys hold ``/`` and ``:`` (``s3://bucket/sales``), so a key travels as the ``key``
query parameter; the namespace is in the path, where the route's rule authorises it.
Materializing starts runs of the producing workflows: ``run.trigger`` on the namespace.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request as StarletteRequest

from orchestrion.app import App
from orchestrion.auth.principals import Action, Resource, check_namespace
from orchestrion.errors import ParameterError
from orchestrion.store.record import as_dict
from orchestrion.web import targets
from orchestrion.web.params import BeforeId
from orchestrion.web.policy import Check, rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

Key = Annotated[str, Query(min_length=1, max_length=300, description="the asset key")]


async def _namespace(request: StarletteRequest, app: App, action: Action) -> list[Check]:
    namespace = request.path_params.get("namespace")
    if not isinstance(namespace, str):
        raise ParameterError("missing path parameter 'namespace'")
    check_namespace(namespace, wildcard=False)
    return [(action, Resource(namespace, "asset", request.query_params.get("key", "")))]


class MaterializeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(min_length=1, max_length=300)]
    partition: Annotated[str | None, Field(default=None, min_length=1, max_length=500)] = None
    upstream: bool = False


@router.get("")
@rule(Action.READ, targets.anywhere)
def list_assets(request: Request) -> list[dict[str, Any]]:
    """Every asset the caller may read: producers, consumers, newest event, freshness."""
    allowed = scope_of(request).namespaces()
    return [a.as_dict() for a in app_of(request).assets.list_assets(allowed)]


@router.get("/{namespace}/detail")
@rule(Action.READ, _namespace)
def show_asset(request: Request, namespace: str, key: Key) -> dict[str, Any]:
    """One asset."""
    return app_of(request).assets.show(key, namespace).as_dict()


@router.get("/{namespace}/history")
@rule(Action.READ, _namespace)
def asset_history(
    request: Request,
    namespace: str,
    key: Key,
    partition: Annotated[str | None, Query(max_length=500)] = None,
    before: BeforeId | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """An asset's events, newest first (page with ``before``, the last id seen)."""
    found = app_of(request).assets.history(
        key, namespace, partition=partition, before=before, limit=limit
    )
    return [as_dict(e) for e in found]


@router.get("/{namespace}/lineage")
@rule(Action.READ, _namespace)
def asset_lineage(
    request: Request,
    namespace: str,
    key: Key,
    depth: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """The asset with its upstream and downstream assets: nodes and edges."""
    graph = app_of(request).assets.lineage(key, namespace, depth=depth)
    return {
        "nodes": [n.as_dict() for n in graph.nodes],
        "edges": [{"upstream": a, "downstream": b} for a, b in graph.edges],
    }


@router.post("/{namespace}/materialize", status_code=201)
@rule(Action.TRIGGER, _namespace, "asset.materialize")
def materialize(request: Request, namespace: str, body: MaterializeIn) -> dict[str, Any]:
    """Start the workflows producing the asset (with ``upstream``, first what it needs)."""
    runs = app_of(request).assets.materialize(
        body.key, namespace, partition=body.partition, upstream=body.upstream
    )
    return {"runs": runs}
