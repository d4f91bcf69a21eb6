"""Overview, workflows, one workflow, the trigger form, pausing, and choosing the current
version (rollback)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.errors import ParameterError, PolicyDenied
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.params import resolve_params
from orchestrion.store.policy_records import Finding
from orchestrion.store.records import RunFilter
from orchestrion.ui import graph
from orchestrion.ui.pages import form_data, redirect, render, ui_router
from orchestrion.ui.params_form import fields, parse_params
from orchestrion.ui.views_runs import KINDS
from orchestrion.ui.views_waits import waits_of
from orchestrion.web import targets
from orchestrion.web.csrf import check_csrf
from orchestrion.web.errors import note_findings
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = ui_router()

#: Coloured marks of the newest runs shown per workflow.
_MARKS = 10


def _visible(request: Request) -> Callable[[str], bool] | None:
    """The workflows this reader may see (None: all, for a ``*`` binding)."""
    scope = scope_of(request)
    return None if scope.everything else scope.workflow


@router.get("/")
@rule(Action.READ, targets.anywhere)
def overview(request: Request) -> Response:
    app = app_of(request)
    after = app.runs.last_event_id()  # read first: the live stream resumes from here
    return render(
        request,
        "overview.html",
        nav="overview",
        title="Overview",
        ov=app.reads.overview(visible=_visible(request)),
        kinds=KINDS,
        after=after,
        waits=waits_of(app, visible=_visible(request)),
    )


@router.get("/fragments/overview")
@rule(Action.READ, targets.anywhere)
def overview_fragment(request: Request) -> Response:
    """The overview's live part, fetched again by `live.js` after events arrive."""
    app, visible = app_of(request), _visible(request)
    return render(
        request,
        "_overview.html",
        ov=app.reads.overview(visible=visible),
        waits=waits_of(app, visible=visible),
    )


@router.get("/workflows")
@rule(Action.READ, targets.anywhere)
def workflows(request: Request, q: str = "") -> Response:
    needle = q.strip().lower()
    rows = [
        s
        for s in app_of(request).reads.workflow_summaries(per=_MARKS, visible=_visible(request))
        if not needle
        or needle in s.record.name.lower()
        or needle in s.record.spec.description.lower()
    ]
    return render(request, "workflows.html", nav="workflows", title="Workflows", rows=rows, q=q)


@router.get("/workflows/{name}")
@rule(Action.READ, targets.workflow)
def workflow_page(
    request: Request, name: str, a: str = "", b: str = "", diff: str = ""
) -> Response:
    app = app_of(request)
    record = app.workflows.workflow_record(name)
    versions = app.workflows.versions(name)
    diff_lines: list[str] = []
    if ".." in diff and not (a or b):  # the older link form, ?diff=a..b
        a, b = diff.split("..", 1)
    if a and b:
        a_rec, b_rec = (
            app.workflows.workflow_record(name, a),
            app.workflows.workflow_record(name, b),
        )
        diff_lines = _diff(
            json.dumps(a_rec.spec.model_dump(mode="json"), indent=2, sort_keys=True),
            json.dumps(b_rec.spec.model_dump(mode="json"), indent=2, sort_keys=True),
            f"version {a_rec.version}",
            f"version {b_rec.version}",
        )
        a_code, b_code = _code_files(app, a_rec.spec.code), _code_files(app, b_rec.spec.code)
        for path in sorted(set(a_code) | set(b_code)):
            diff_lines += _diff(
                a_code.get(path, ""),
                b_code.get(path, ""),
                f"{a_rec.version}/{path}",
                f"{b_rec.version}/{path}",
            )
    return render(
        request,
        "workflow.html",
        nav="workflows",
        title=name,
        wf=record,
        spec=record.spec,
        paused=name in app.workflows.paused_workflows(),
        graph=graph.layout(record.spec),
        schedules=app.triggers.list_schedules(name),
        versions=versions,
        diff_a=a,
        diff_b=b,
        diff_lines=diff_lines,
        code=sorted(_code_files(app, record.spec.code).items()),
        runs=app.runs.list_runs(RunFilter(workflow=name, limit=25)),
        cached=any(task.cache is not None for task in record.spec.tasks),
        cache_entries=app.cache.list_entries(workflow=name, limit=50),
    )


def _diff(before: str, after: str, a_name: str, b_name: str) -> list[str]:
    return list(
        difflib.unified_diff(before.splitlines(), after.splitlines(), a_name, b_name, lineterm="")
    )


def _code_files(app: App, digest: str | None) -> dict[str, str]:
    """A version's files as text (none for a version without code)."""
    if digest is None:
        return {}
    files: dict[str, str] = app.workflows.code(digest).to_wire()["files"]
    return files


@router.post("/workflows/{name}/pause")
@rule(Action.PAUSE, targets.workflow)
async def toggle_pause(request: Request, name: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    app_of(request).workflows.set_paused(name, form.get("paused") == "true")
    back = form.get("next", "")
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/workflows")


@router.post("/workflows/{name}/current")
@rule(Action.DEPLOY, targets.workflow, "workflow.set_version")
async def make_current(request: Request, name: str) -> Response:
    """Make the posted version current (the versions list's rollback button); an unknown
    version is a 404 page."""
    form = await form_data(request)
    check_csrf(request, form)
    app_of(request).workflows.set_version(name, form.get("version", ""))
    return redirect(f"/workflows/{quote(name)}#versions")


@router.post("/workflows/{name}/cache/clear")
@rule(Action.RERUN, targets.workflow, "cache.clear")
async def clear_cache(request: Request, name: str) -> Response:
    """Delete the workflow's cached results (docs/caching.md): its cached tasks compute
    again on their next run. An operator's action, like a rerun."""
    form = await form_data(request)
    check_csrf(request, form)
    app_of(request).cache.clear(workflow=name)
    return redirect(f"/workflows/{quote(name)}#cache")


@router.get("/workflows/{name}/trigger")
@rule(Action.READ, targets.workflow)
def trigger_form(request: Request, name: str) -> Response:
    app = app_of(request)
    spec = app.workflows.workflow(name)
    return render(
        request,
        "trigger.html",
        nav="workflows",
        title=f"Trigger {name}",
        spec=spec,
        fields=fields(spec),
        error="",
        notes=_policy_notes(app, spec, request),
    )


def _policy_notes(app: App, spec: WorkflowSpec, request: Request) -> list[str]:
    """What the admission policies say now of a run with the default parameters (a
    warning, an approval it will need, a denial): shown before anyone presses the button.
    Nothing when the defaults do not make a run (the form will say why)."""
    try:
        params = resolve_params(spec, {})
    except ParameterError:
        return []
    decision = app.policies.check_trigger(
        spec, params=params, trigger="ui", principal=principal_of(request)
    )
    return [str(f) for f in decision.findings]


@router.post("/workflows/{name}/trigger")
@rule(Action.TRIGGER, targets.workflow)
async def trigger(request: Request, name: str) -> Response:
    form = await form_data(request)
    check_csrf(request, form)
    app = app_of(request)
    spec = app.workflows.workflow(name)
    findings: list[Finding] = []
    try:
        no_cache = form.get("no_cache") == "1"
        run = app.runs.trigger(
            name,
            parse_params(spec, form),
            trigger="ui",
            no_cache=no_cache,
            principal=principal_of(request),
            findings=findings,
        )
        note_findings(request.state, findings)
    except (ParameterError, PolicyDenied) as exc:
        # A policy's denial shows on the form, naming policy, rule, field and message.
        status = 403 if isinstance(exc, PolicyDenied) else 422
        return render(
            request,
            "trigger.html",
            status,
            nav="workflows",
            title=f"Trigger {name}",
            spec=spec,
            fields=fields(spec, form_values(form)),
            error=str(exc),
        )
    return redirect(f"/runs/{quote(run.id)}")


def form_values(form: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("param."): v for k, v in form.items() if k.startswith("param.")}
