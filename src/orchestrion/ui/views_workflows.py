"""Overview, workflows, one workflow, the trigger form, and pausing."""

from __future__ import annotations

import difflib
import json
import time
from collections import Counter
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from orchestrion.errors import ParameterError
from orchestrion.states import RunState
from orchestrion.store.base import RunFilter
from orchestrion.ui import graph
from orchestrion.ui.params_form import fields, parse_params
from orchestrion.ui.web import app_of, check_csrf, form_data, redirect, render, ui_router

__all__ = ["router"]

router = ui_router()

_DAY = 86_400.0


@router.get("/")
def overview(request: Request) -> Response:
    app = app_of(request)
    now = time.time()
    recent = [r for r in app.list_runs(RunFilter(limit=2000)) if r.created_at >= now - _DAY]
    by_state = Counter(r.state.value for r in recent)
    running = app.list_runs(RunFilter(state=RunState.RUNNING, limit=20))
    failures = app.list_runs(RunFilter(state=RunState.FAILED, limit=8))
    load = app.running_by_worker()
    workers = app.list_workers()
    upcoming = sorted(
        (s for s in app.list_schedules() if s.next_fire is not None and not s.paused),
        key=lambda s: s.next_fire or 0.0,
    )[:10]
    return render(
        request,
        "overview.html",
        nav="overview",
        title="Overview",
        by_state=sorted(by_state.items()),
        total=len(recent),
        running=running,
        failures=failures,
        workers=workers,
        load={w: len(t) for w, t in load.items()},
        upcoming=upcoming,
    )


@router.get("/workflows")
def workflows(request: Request, q: str = "") -> Response:
    app = app_of(request)
    paused = app.paused_workflows()
    schedules: dict[str, list[object]] = {}
    for info in app.list_schedules():
        schedules.setdefault(info.workflow, []).append(info)
    needle = q.strip().lower()
    rows = []
    for rec in app.list_workflows():
        if needle and needle not in rec.name.lower() and needle not in rec.spec.description.lower():
            continue
        last = app.list_runs(RunFilter(workflow=rec.name, limit=10))
        rows.append((rec, rec.name in paused, schedules.get(rec.name, []), last))
    return render(request, "workflows.html", nav="workflows", title="Workflows", rows=rows, q=q)


@router.get("/workflows/{name}")
def workflow_page(request: Request, name: str, diff: str = "") -> Response:
    app = app_of(request)
    record = app.workflow_record(name)
    versions = app.workflow_versions(name)
    diff_lines: list[str] = []
    if ".." in diff:
        old, new = diff.split("..", 1)
        a, b = app.workflow_record(name, old), app.workflow_record(name, new)
        diff_lines = list(
            difflib.unified_diff(
                json.dumps(a.spec.model_dump(mode="json"), indent=2, sort_keys=True).splitlines(),
                json.dumps(b.spec.model_dump(mode="json"), indent=2, sort_keys=True).splitlines(),
                f"version {a.version}",
                f"version {b.version}",
                lineterm="",
            )
        )
    return render(
        request,
        "workflow.html",
        nav="workflows",
        title=name,
        wf=record,
        spec=record.spec,
        paused=name in app.paused_workflows(),
        graph=graph.layout(record.spec),
        schedules=[s for s in app.list_schedules() if s.workflow == name],
        versions=versions,
        diff=diff,
        diff_lines=diff_lines,
        runs=app.list_runs(RunFilter(workflow=name, limit=25)),
    )


@router.post("/workflows/{name}/pause")
async def toggle_pause(request: Request, name: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    app_of(request).set_paused(name, form.get("paused") == "true")
    back = form.get("next", "")
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/workflows")


@router.get("/workflows/{name}/trigger")
def trigger_form(request: Request, name: str) -> Response:
    spec = app_of(request).workflow(name)
    return render(
        request,
        "trigger.html",
        nav="workflows",
        title=f"Trigger {name}",
        spec=spec,
        fields=fields(spec),
        error="",
    )


@router.post("/workflows/{name}/trigger")
async def trigger(request: Request, name: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    app = app_of(request)
    spec = app.workflow(name)
    try:
        run = app.trigger(name, parse_params(spec, form), trigger="ui")
    except ParameterError as exc:
        return render(
            request,
            "trigger.html",
            422,
            nav="workflows",
            title=f"Trigger {name}",
            spec=spec,
            fields=fields(spec, form_values(form)),
            error=str(exc),
        )
    return redirect(f"/runs/{quote(run.id)}")


def form_values(form: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("param."): v for k, v in form.items() if k.startswith("param.")}
