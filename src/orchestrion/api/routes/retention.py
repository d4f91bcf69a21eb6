"""Retention (issue 16, part 4): per-namespace policies, pruning on demand, and the "keep"
mark on runs. Policies and pruning are server-wide settings (a ``*`` admin binding);
marking a run to keep is an operator's action on the run's namespace."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.schemas import RecordModel, RetentionInfo, Run, list_of
from orchestrion.auth.principals import Action
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = APIRouter(tags=["retention"])

#: 100 years, in days or seconds: larger values are typing mistakes.
_MOST_DAYS = 36_500
_MOST_SECONDS = _MOST_DAYS * 86_400.0


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs_days: float | None = Field(None, gt=0, le=_MOST_DAYS)
    logs_days: float | None = Field(None, gt=0, le=_MOST_DAYS)
    keep_last: int | None = Field(None, ge=0, le=1_000_000)
    audit_days: float | None = Field(None, gt=0, le=_MOST_DAYS)
    audit_export_dir: str | None = Field(None, min_length=1, max_length=1000)


class PolicyWritten(BaseModel):
    namespace: str
    created: bool


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Runs that ended more than this many seconds ago go.
    older_than: float = Field(gt=0, le=_MOST_SECONDS)
    keep_last: int = Field(0, ge=0, le=1_000_000)
    namespace: str | None = Field(None, min_length=1, max_length=63)
    workflow: str | None = Field(None, min_length=1, max_length=200)
    dry_run: bool = False


class PruneCountsBody(BaseModel):
    runs: int
    task_runs: int
    attempts: int
    events: int
    logs: int
    fires: int
    inbox: int
    audit: int
    cache: int = 0
    waits: int = 0


class PruneAnswer(BaseModel):
    dry_run: bool
    before: float
    keep_last: int
    namespace: str | None
    workflows: list[str]
    counts: PruneCountsBody


class KeepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: bool


@router.get("/api/v1/retention", response_model=list_of(RetentionInfo))
@rule(Action.READ, targets.server_wide, "retention.list")
def list_policies(request: Request) -> list[RecordModel]:
    return [RetentionInfo.of(p) for p in app_of(request).retention.list_policies()]


@router.get("/api/v1/retention/{namespace}", response_model=RetentionInfo)
@rule(Action.READ, targets.server_wide, "retention.show")
def get_policy(request: Request, namespace: str) -> RecordModel:
    return RetentionInfo.of(app_of(request).retention.get_policy(namespace))


@router.put(
    "/api/v1/retention/{namespace}",
    response_model=PolicyWritten,
    responses={201: {"model": PolicyWritten, "description": "Created"}},
)
@rule(Action.SETTINGS, targets.server_wide, "retention.set")
def put_policy(
    request: Request, namespace: str, body: PolicyBody, response: Response
) -> PolicyWritten:
    """Create or replace a namespace's policy (``*``: every namespace without one)."""
    created = app_of(request).retention.set_policy(namespace, **body.model_dump())
    response.status_code = 201 if created else 200
    return PolicyWritten(namespace=namespace, created=created)


@router.delete("/api/v1/retention/{namespace}", status_code=204)
@rule(Action.SETTINGS, targets.server_wide, "retention.clear")
def delete_policy(request: Request, namespace: str) -> Response:
    app_of(request).retention.clear_policy(namespace)
    return Response(status_code=204)


@router.post("/api/v1/retention/prune", response_model=PruneAnswer)
@rule(Action.SETTINGS, targets.server_wide, "runs.prune")
def prune(request: Request, body: PruneRequest) -> PruneAnswer:
    """Prune finished, unkept runs now, in batches (``dry_run``: only count them)."""
    done = app_of(request).retention.prune(
        older_than=body.older_than,
        keep_last=body.keep_last,
        namespace=body.namespace,
        workflow=body.workflow,
        dry_run=body.dry_run,
    )
    return PruneAnswer(
        dry_run=done.dry_run,
        before=done.before,
        keep_last=done.keep_last,
        namespace=done.namespace,
        workflows=list(done.workflows),
        counts=PruneCountsBody(**done.counts.as_dict()),
    )


@router.put("/api/v1/runs/{run_id}/keep", response_model=Run)
@rule(Action.KEEP, targets.run, "run.keep")
def keep_run(request: Request, run_id: str, body: KeepRequest) -> RecordModel:
    """Mark a run to keep (retention never prunes it, nor its family) or not."""
    app = app_of(request)
    app.retention.keep_run(run_id, body.keep)
    return Run.of(app.runs.get_run(run_id))
