"""Declarative projects and Git sync over the API (issue 19).

The server cannot read the client's disk, so a project comes as a bundle: the declaration
(``project``) and the workflow specs the client loaded (``workflows``), whose code the
client uploaded first (``PUT /api/v1/code/{digest}``, as ``deploy`` does). Planning and
applying need the admin role on the project's namespace (and server settings when the
project declares queue limits); every call is audited by the guard.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.auth.principals import Action
from orchestrion.errors import ParameterError
from orchestrion.spec.loading import LoadedWorkflow, spec_from_data
from orchestrion.spec.policies import parse_policy
from orchestrion.spec.project import LoadedProject, load_project_namespace, project_from_data
from orchestrion.store.record import as_dict
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["projects"])


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: dict[str, Any]
    workflows: Annotated[list[dict[str, Any]], Field(max_length=1000)] = []
    #: The documents of the project's policy files (read by the client).
    policies: Annotated[list[dict[str, Any]], Field(max_length=1000)] = []
    commit: Annotated[str | None, Field(pattern=r"^[0-9a-f]{7,64}$")] = None


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: Annotated[str, Field(min_length=1, max_length=2000)]
    branch: Annotated[str | None, Field(max_length=200)] = None
    tag: Annotated[str | None, Field(max_length=200)] = None
    project: Annotated[str, Field(min_length=1, max_length=1000)]
    secret: Annotated[str | None, Field(max_length=300)] = None


def _loaded(body: ProjectIn) -> LoadedProject:
    spec = project_from_data(body.project, source="request")
    workflows = []
    for index, data in enumerate(body.workflows):
        loaded = spec_from_data(data, source=f"request workflows.{index}")
        workflows.append(LoadedWorkflow(loaded))
    names = [
        parse_policy(d, source=f"request policies.{i}").name for i, d in enumerate(body.policies)
    ]
    twice = sorted({n for n in names if names.count(n) > 1})  # each parse: PolicyError, 422
    if twice:
        raise ParameterError(f"policies named twice: {', '.join(twice)}")
    return LoadedProject(
        spec, load_project_namespace(spec, workflows), "request", tuple(body.policies)
    )


@router.post("/projects/plan")
@rule(Action.APPLY_PROJECT, targets.project, "project.plan")
def plan(request: Request, body: ProjectIn) -> dict[str, Any]:
    """What applying the project would change (nothing is written)."""
    principal = principal_of(request)
    return app_of(request).projects.plan(_loaded(body), principal=principal).to_data()


@router.post("/projects/apply")
@rule(Action.APPLY_PROJECT, targets.project, "project.apply")
def apply(request: Request, body: ProjectIn) -> dict[str, Any]:
    """Apply the project: every change, or (on a failure, undone) none."""
    principal = principal_of(request)
    done = app_of(request).projects.apply(
        _loaded(body), actor=principal.name, principal=principal, commit=body.commit
    )
    return {**done.plan.to_data(), "outcome": done.outcome, "apply_id": done.apply_id}


@router.get("/projects")
@rule(Action.READ, targets.anywhere)
def applies(
    request: Request,
    namespace: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """The apply history, newest first (of one namespace)."""
    principal = principal_of(request)
    found = app_of(request).projects.applies(namespace, limit=limit)
    return [as_dict(a) for a in found if targets.visible(principal, a.namespace)]


@router.get("/sync/sources")
@rule(Action.READ, targets.server_wide)
def sources(request: Request) -> list[dict[str, Any]]:
    """The Git sources the sync duty follows (their secret by name only)."""
    return [as_dict(s) for s in app_of(request).projects.sources()]


@router.put("/sync/sources/{name}")
@rule(Action.SETTINGS, targets.server_wide, "sync.source.put")
def put_source(request: Request, name: str, body: SourceIn) -> dict[str, Any]:
    """Create or replace a sync source."""
    projects = app_of(request).projects
    created = projects.put_source(
        name,
        repo=body.repo,
        branch=body.branch,
        tag=body.tag,
        project_path=body.project,
        secret=body.secret,
    )
    return {**as_dict(projects.source(name)), "created": created}


@router.delete("/sync/sources/{name}", status_code=204)
@rule(Action.SETTINGS, targets.server_wide, "sync.source.delete")
def delete_source(request: Request, name: str) -> Response:
    """Delete a sync source (its results stay)."""
    app_of(request).projects.delete_source(name)
    return Response(status_code=204)


@router.get("/sync/status")
@rule(Action.READ, targets.server_wide)
def status(
    request: Request,
    source: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """What the looks at sources found, newest first: commit, outcome, error."""
    if source is not None and not source:
        raise ParameterError("source is a name")
    return [as_dict(r) for r in app_of(request).projects.sync_results(source, limit=limit)]
