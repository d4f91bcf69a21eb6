"""Events, workers, backfills, connections and broker consumers. The first three keep
themselves current: their live part is fetched again (`/fragments/...`) when the event
stream moves."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from orchestrion.auth.principals import Action
from orchestrion.store.records import BackfillRecord
from orchestrion.ui.pages import render, ui_router
from orchestrion.ui.views_runs import KINDS
from orchestrion.web import targets
from orchestrion.web.params import RowId
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = ui_router()

_PAGE = 200
#: Event kind prefixes offered by the events page's filter.
_KIND_FILTERS = [
    "run.", "task.", "attempt.", "workflow.", "schedule.", "trigger.", "backfill.", "retention.",
]  # fmt: skip


def _events(request: Request, kind: str, run: str, workflow: str, before: int) -> dict[str, Any]:
    rows = app_of(request).runs.find_events(
        kind=kind.strip(), run_id=run.strip(), workflow=workflow.strip(), before=before,
        limit=_PAGE + 1,
    )  # fmt: skip
    scope = scope_of(request)
    rows = [r for r in rows if scope.everything or scope.run(r.run_id)]
    query = {"kind": kind, "run": run, "workflow": workflow}
    older = ""
    if len(rows) > _PAGE:
        rows = rows[:_PAGE]
        older = urlencode({**query, "before": rows[-1].id})
    return {"events": rows, "older": older, "query": urlencode(query), "paged": before > 0}


@router.get("/events")
@rule(Action.READ, targets.anywhere)
def events(
    request: Request, kind: str = "", run: str = "", workflow: str = "", before: RowId = 0
) -> Response:
    after = app_of(request).runs.last_event_id()  # read first: the live stream resumes from here
    found = _events(request, kind, run, workflow, before)
    return render(
        request,
        "events.html",
        nav="events",
        title="Events",
        kind=kind,
        run=run,
        workflow=workflow,
        kinds=KINDS,
        kind_filters=_KIND_FILTERS,
        # Only the newest page follows the stream: an older page stays where the user is.
        live=before <= 0,
        after=after,
        **found,
    )


@router.get("/fragments/events")
@rule(Action.READ, targets.anywhere)
def events_fragment(
    request: Request, kind: str = "", run: str = "", workflow: str = "", before: RowId = 0
) -> Response:
    return render(request, "_events.html", **_events(request, kind, run, workflow, before))


def _workers(request: Request) -> dict[str, Any]:
    app = app_of(request)
    return {
        "workers": app.reads.list_workers(),
        "running": app.reads.running_by_worker(),
        "stale_after": app.settings.lease_seconds,
    }


@router.get("/workers")
@rule(Action.READ, targets.anywhere)
def workers(request: Request) -> Response:
    after = app_of(request).runs.last_event_id()  # read first: the live stream resumes from here
    return render(
        request,
        "workers.html",
        nav="workers",
        title="Workers",
        kinds=KINDS,
        after=after,
        **_workers(request),
    )


@router.get("/fragments/workers")
@rule(Action.READ, targets.anywhere)
def workers_fragment(request: Request) -> Response:
    return render(request, "_workers.html", **_workers(request))


@router.get("/backfills")
@rule(Action.READ, targets.anywhere)
def backfills(request: Request) -> Response:
    app = app_of(request)
    after = app.runs.last_event_id()  # read first: the live stream resumes from here
    return render(
        request,
        "backfills.html",
        nav="backfills",
        title="Backfills",
        kinds=KINDS,
        after=after,
        backfills=_backfills(request),
    )


@router.get("/fragments/backfills")
@rule(Action.READ, targets.anywhere)
def backfills_fragment(request: Request) -> Response:
    return render(request, "_backfills.html", backfills=_backfills(request))


def _backfills(request: Request) -> list[BackfillRecord]:
    scope = scope_of(request)
    return [b for b in app_of(request).triggers.list_backfills() if scope.workflow(b.workflow)]


@router.get("/connections")
@rule(Action.READ, targets.anywhere)
def connections(request: Request) -> Response:
    scope = scope_of(request)
    found = [
        c for c in app_of(request).connections.list_connections() if scope.namespace(c.namespace)
    ]
    return render(
        request, "connections.html", nav="connections", title="Connections", connections=found
    )


@router.get("/consumers")
@rule(Action.READ, targets.anywhere)
def consumers(request: Request) -> Response:
    scope = scope_of(request)
    found = [c for c in app_of(request).triggers.list_consumers() if scope.workflow(c.workflow)]
    return render(request, "consumers.html", nav="consumers", title="Consumers", consumers=found)
