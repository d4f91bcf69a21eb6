"""Data assets in the UI: the catalogue, and one asset's page (its events with the runs
that produced them, and its lineage drawn like a workflow's graph). The same App methods
as the API's and the CLI's."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from orchestrion.auth.principals import Action, Resource, check_namespace
from orchestrion.errors import ParameterError
from orchestrion.ui.graph import Graph, layout_dag
from orchestrion.ui.pages import render, ui_router
from orchestrion.web import targets
from orchestrion.web.policy import Check, rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = ui_router()

#: An asset's state as the graph's node colours (a workflow graph's task states).
_COLOURS = {"fresh": "succeeded", "stale": "failed", "unknown": "queued", "missing": "none"}


async def _asset_namespace(request: Request, app: object, action: Action) -> list[Check]:
    namespace = request.query_params.get("namespace", "default")
    check_namespace(namespace, wildcard=False)
    return [(action, Resource(namespace, "asset", request.query_params.get("key", "")))]


@router.get("/assets")
@rule(Action.READ, targets.anywhere)
def assets_page(request: Request) -> Response:
    found = app_of(request).assets.list_assets(scope_of(request).namespaces())
    return render(request, "assets.html", nav="assets", title="Assets", assets=found)


@router.get("/asset")
@rule(Action.READ, _asset_namespace)
def asset_page(request: Request) -> Response:
    key = request.query_params.get("key", "")
    namespace = request.query_params.get("namespace", "default")
    if not key or len(key) > 300:
        raise ParameterError("the asset page needs ?key= (at most 300 characters)")
    app = app_of(request)
    info = app.assets.show(key, namespace)
    lineage = app.assets.lineage(key, namespace)
    events = app.assets.history(key, namespace, limit=100)
    return render(
        request,
        "asset.html",
        nav="assets",
        title=f"Asset {key}",
        item=info,
        events=events,
        graph=_graph(lineage.edges, {n.key: n.state for n in lineage.nodes}, key),
    )


def _graph(edges: list[tuple[str, str]], states: dict[str, str], key: str) -> Graph:
    """The lineage as a layered drawing; an edge that would close a cycle is left out."""
    depends: dict[str, list[str]] = {name: [] for name in states}
    depends.setdefault(key, [])
    for up, down in edges:
        depends.setdefault(up, [])
        depends.setdefault(down, [])
        if not _reaches(depends, up, down):
            depends[down].append(up)
    colours = {name: _COLOURS.get(state, "none") for name, state in states.items()}
    return layout_dag({k: tuple(v) for k, v in depends.items()}, colours)


def _reaches(depends: dict[str, list[str]], start: str, goal: str) -> bool:
    """Whether `goal` is already upstream of (or is) `start`."""
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(depends.get(node, ()))
    return False
