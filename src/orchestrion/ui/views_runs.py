"""Runs: the list, one run (graph, timeline, task panel) and the actions on it."""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.errors import ParameterError
from orchestrion.states import RunEvent, RunState, TaskEvent
from orchestrion.store.records import AttemptRecord, RunFilter, RunRecord, TaskRunRecord
from orchestrion.ui import graph
from orchestrion.ui.pages import form_data, redirect, render, ui_router
from orchestrion.ui.views_outputs import artifact_views
from orchestrion.ui.views_waits import waits_of
from orchestrion.web import targets
from orchestrion.web.csrf import check_csrf
from orchestrion.web.params import ItemIndex
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["KINDS", "router"]

router = ui_router()

_STATES = [s.value for s in RunState]
#: Every event kind a stream may carry (EventSource needs one listener per kind).
KINDS = [
    *(f"task.{e.value}" for e in TaskEvent),
    *(f"run.{e.value}" for e in RunEvent),
    "run.created",
    "run.compensation_planned",
    "run.compensation_retried",
    "task.mapped",
    "attempt.superseded",
    "run.signal",
    "wait.approval_pending",
    "wait.approved",
    "wait.rejected",
    "wait.signal",
    "wait.event",
    "wait.sensor",
    "wait.check_failed",
    "wait.timeout",
    # Not tied to a run: followed by the summary pages (overview, workers, events, ...).
    "workflow.registered",
    "workflow.paused",
    "workflow.unpaused",
    "schedule.fired",
    "schedule.queued",
    "schedule.skipped",
    "schedule.failed",
    "trigger.event",
    "backfill.created",
    "backfill.completed",
    "backfill.canceled",
]


@router.get("/runs")
@rule(Action.READ, targets.anywhere)
def runs(
    request: Request, workflow: str = "", state: str = "", before: str = "", limit: int = 50
) -> Response:
    app = app_of(request)
    limit = max(1, min(limit, 500))
    scope = scope_of(request)
    filt = RunFilter(
        workflow=workflow or None,
        state=RunState(state) if state in _STATES else None,
        limit=limit + 1,
        before=before or None,
        workflows=scope.visible_workflows(),
    )
    page = app.runs.list_runs(filt)
    more = len(page) > limit
    page = page[:limit]
    next_before = page[-1].id if more and page else ""
    return render(
        request,
        "runs.html",
        nav="runs",
        title="Runs",
        runs=page,
        workflow=workflow,
        state=state,
        states=_STATES,
        workflows=sorted(
            w.name for w in app.workflows.list_workflows() if scope.namespace(w.namespace)
        ),
        next_before=next_before,
    )


def _timeline(
    run: RunRecord, task_runs: list[TaskRunRecord], attempts: list[AttemptRecord]
) -> dict[str, object]:
    names = {
        t.id: t.task_name + (f"[{t.map_index}]" if t.map_index >= 0 else "") for t in task_runs
    }
    start = min((a.started_at for a in attempts), default=run.created_at)
    end = max((a.finished_at or a.started_at for a in attempts), default=start)
    if not run.state.finished:
        end = max(end, max((a.started_at for a in attempts), default=start) + 1.0)
    span = max(end - start, 0.001)
    rows = [
        (
            names.get(a.task_run_id, str(a.task_run_id)),
            a,
            100.0 * (a.started_at - start) / span,
            max(0.4, 100.0 * ((a.finished_at or end) - a.started_at) / span),
        )
        for a in attempts[:400]
    ]
    return {"rows": rows, "span": span, "start": start, "hidden": max(0, len(attempts) - 400)}


#: Items of a mapped task listed in the panel (each with its state, updated live).
_ITEMS = 500


def _panel(app: App, run: RunRecord, task: str, item: int) -> dict[str, object]:
    if not task:
        return {"task": ""}
    detail = app.reads.task_detail(run.id, task, item)
    return {
        "task": task,
        "item": item,
        "task_runs": detail.task_runs,
        "item_runs": detail.items[:_ITEMS],
        "more_items": max(0, len(detail.items) - _ITEMS),
        "item_counts": Counter(t.state.value for t in detail.items),
        "attempts": detail.attempts[-50:],
        "inputs": detail.inputs,
        "element": detail.element,
        "namespace": app.workflows.namespace_of(run.workflow),
    }


@router.get("/runs/{run_id}")
@rule(Action.READ, targets.run)
def run_page(request: Request, run_id: str, task: str = "", item: ItemIndex = -1) -> Response:
    app = app_of(request)
    # The live stream resumes after this: whatever happens later is replayed, and nothing
    # older is (on a long run, replaying its whole history would cost seconds).
    after = app.runs.last_event_id()
    run = app.runs.get_run(run_id)
    spec = app.workflows.workflow(run.workflow, run.version)
    # Read once: the graph, the timeline and the panel share them.
    task_runs, attempts = app.runs.task_runs(run.id), app.runs.attempts(run.id)
    return render(
        request,
        "run.html",
        nav="runs",
        title=f"Run {run.id}",
        run=run,
        spec=spec,
        graph=graph.layout(spec, task_runs),
        undo=[t for t in task_runs if t.kind == "undo"],
        timeline=_timeline(run, task_runs, attempts),
        panel=_panel(app, run, task, item),
        tasks=[t.name for t in spec.tasks],
        kinds=KINDS,
        after=after,
        artifacts=artifact_views(app, run.id),
        waits=waits_of(app, run.id),
    )


@router.get("/runs/{run_id}/fragments/panel")
@rule(Action.READ, targets.run)
def panel_fragment(request: Request, run_id: str, task: str = "", item: ItemIndex = -1) -> Response:
    app = app_of(request)
    run = app.runs.get_run(run_id)
    return render(request, "_panel.html", run=run, panel=_panel(app, run, task, item))


@router.get("/runs/{run_id}/fragments/timeline")
@rule(Action.READ, targets.run)
def timeline_fragment(request: Request, run_id: str) -> Response:
    app = app_of(request)
    run = app.runs.get_run(run_id)
    timeline = _timeline(run, app.runs.task_runs(run.id), app.runs.attempts(run.id))
    return render(request, "_timeline.html", run=run, timeline=timeline)


@router.post("/runs/{run_id}/cancel")
@rule(Action.CANCEL, targets.run)
async def cancel(request: Request, run_id: str) -> Response:
    check_csrf(request, await form_data(request))
    app_of(request).runs.cancel_or_raise(run_id)
    return redirect(f"/runs/{quote(run_id)}")


@router.post("/runs/{run_id}/retry")
@rule(Action.RETRY, targets.run)
async def retry(request: Request, run_id: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    app_of(request).runs.retry_or_raise(run_id)
    task = form.get("task", "")
    return redirect(f"/runs/{quote(run_id)}" + (f"?task={quote(task)}" if task else ""))


@router.post("/runs/{run_id}/rerun")
@rule(Action.RERUN, targets.run)
async def rerun(request: Request, run_id: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    new = app_of(request).runs.rerun_from(run_id, form.get("from_task", ""))
    return redirect(f"/runs/{quote(new.id)}")


@router.post("/runs/{run_id}/tasks/{task}/mark")
@rule(Action.RETRY, targets.run, "run.mark")
async def mark(request: Request, run_id: str, task: str) -> Response:
    """A user's override of a task's outcome (the same App method as the API's)."""
    form = await form_data(request)
    check_csrf(request, form)
    outcome = form.get("outcome", "")
    if outcome not in ("succeeded", "failed"):
        raise ParameterError(f"outcome must be succeeded or failed, not {outcome[:40]!r}")
    app_of(request).runs.mark_task(run_id, task, succeeded=outcome == "succeeded")
    return redirect(f"/runs/{quote(run_id)}?task={quote(task)}")
