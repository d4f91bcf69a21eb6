"""Events, workers and backfills."""

from __future__ import annotations

import time

from fastapi import Request
from starlette.responses import Response

from orchestrion.ui.web import app_of, render, ui_router

__all__ = ["router"]

router = ui_router()

_PAGE = 200


@router.get("/events")
def events(request: Request, after: int = -1) -> Response:
    app = app_of(request)
    last = app.last_event_id()
    start = max(0, last - _PAGE) if after < 0 else max(0, after)
    rows = app.all_events(after_id=start, limit=_PAGE)
    return render(
        request,
        "events.html",
        nav="events",
        title="Events",
        events=list(reversed(rows)),
        older=max(0, start - _PAGE) if start > 0 else None,
        newer=rows[-1].id if rows and rows[-1].id < last else None,
    )


@router.get("/workers")
def workers(request: Request) -> Response:
    app = app_of(request)
    return render(
        request,
        "workers.html",
        nav="workers",
        title="Workers",
        workers=app.list_workers(),
        running=app.running_by_worker(),
        now=time.time(),
    )


@router.get("/backfills")
def backfills(request: Request) -> Response:
    return render(
        request,
        "backfills.html",
        nav="backfills",
        title="Backfills",
        backfills=app_of(request).list_backfills(),
    )
