"""The task result cache (``docs/caching.md``): list and clear entries, all of them
(filtered to the namespaces one may see or act on) or one workflow's."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from orchestrion.auth.principals import Action
from orchestrion.store.records import CacheEntry
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(tags=["cache"])

#: Clearing makes the tasks run again: an operator's action, like a rerun.
_CLEAR = Action.RERUN


class CacheEntryInfo(BaseModel):
    namespace: str
    workflow: str
    task: str
    key: str
    #: computing | ready
    state: str
    #: The run and task run that produced (or are computing) the entry.
    run_id: str
    task_run_id: int
    created_at: float
    expires_at: float | None

    @classmethod
    def of(cls, e: CacheEntry) -> CacheEntryInfo:
        return cls(
            namespace=e.namespace,
            workflow=e.workflow,
            task=e.task_name,
            key=e.cache_key,
            state=e.state,
            run_id=e.run_id,
            task_run_id=e.task_run_id,
            created_at=e.created_at,
            expires_at=e.expires_at,
        )


class Cleared(BaseModel):
    cleared: int


@router.get("/api/v1/cache", response_model=list[CacheEntryInfo])
@rule(Action.READ, targets.anywhere, "cache.list")
def list_cache(request: Request, limit: int = Query(500, ge=1, le=5000)) -> list[CacheEntryInfo]:
    """Entries of every workflow in the namespaces one may read, newest first."""
    names = scope_of(request).namespaces()
    found = app_of(request).cache.list_entries(namespaces=names, limit=limit)
    return [CacheEntryInfo.of(e) for e in found]


@router.delete("/api/v1/cache", response_model=Cleared)
@rule(_CLEAR, targets.anywhere, "cache.clear")
def clear_cache(request: Request) -> Cleared:
    """Delete the entries of every workflow in the namespaces one may operate on."""
    names = scope_of(request, _CLEAR).namespaces()
    return Cleared(cleared=app_of(request).cache.clear(namespaces=names))


@router.get("/api/v1/workflows/{name}/cache", response_model=list[CacheEntryInfo])
@rule(Action.READ, targets.workflow, "cache.list")
def list_workflow_cache(
    request: Request, name: str, limit: int = Query(500, ge=1, le=5000)
) -> list[CacheEntryInfo]:
    """One workflow's entries, newest first."""
    found = app_of(request).cache.list_entries(workflow=name, limit=limit)
    return [CacheEntryInfo.of(e) for e in found]


@router.delete("/api/v1/workflows/{name}/cache", response_model=Cleared)
@rule(_CLEAR, targets.workflow, "cache.clear")
def clear_workflow_cache(request: Request, name: str) -> Cleared:
    """Delete one workflow's entries: its cached tasks compute again on their next run."""
    return Cleared(cleared=app_of(request).cache.clear(workflow=name))
