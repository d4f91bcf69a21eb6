"""Live updates: a server-sent-events stream of run and task events.

Resumable: each message carries its event id; a client reconnecting with `Last-Event-ID`
(or `?after=`) gets everything after it. An idle stream costs no database queries: it
waits for a push (this process's commits, or a wake-up from a worker process) and sends a
comment line every 15 s to keep proxies from closing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from orchestrion.api.schemas import Event, LogLine
from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.errors import Forbidden, ParameterError
from orchestrion.spec.fields import ID_MAX
from orchestrion.web import targets
from orchestrion.web.params import AfterId
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import Scope, scope_of

__all__ = ["router"]

router = APIRouter(tags=["stream"])


class EventStream(StreamingResponse):
    """A server-sent-events response: so published (``text/event-stream``), not as JSON."""

    media_type = "text/event-stream"


# The router's error responses name a model, which FastAPI publishes under the route's own
# media type; a stream's refusals are JSON, like every route's, so they are spelled out.
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_REFUSALS: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "Refused: the error says why", "content": _ERROR},
    503: {"description": "The database is unavailable", "content": _ERROR},
}

_KEEPALIVE_SECONDS = 15.0
_EVENT_ID = re.compile(r"[0-9]{1,19}")
_WAIT_SECONDS = 0.5


@router.get("/api/v1/stream", response_class=EventStream, responses=_REFUSALS)
@rule(Action.READ, targets.anywhere)
async def stream(
    request: Request,
    run_id: str | None = None,
    after: AfterId | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStream:
    """Events as `text/event-stream`: of one run (from its start) or of everything (from
    now), after `Last-Event-ID` / `after` when given."""
    app = app_of(request)
    start = _start(after, last_event_id)
    scope = scope_of(request)
    if run_id is not None:
        run_id = (await run_in_threadpool(app.runs.get_run, run_id)).id
        if not await run_in_threadpool(scope.run, run_id):
            raise Forbidden(f"may not read run {run_id}")
    if start is None:
        start = 0 if run_id is not None else await run_in_threadpool(app.runs.last_event_id)
    return EventStream(
        _events(request, app, scope, run_id, start),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _start(after: int | None, last_event_id: str | None) -> int | None:
    """Where a stream starts; checked here, before the response starts, because an error
    inside a started stream can only end it (a 200 and a traceback in the log)."""
    if last_event_id is not None:
        # ASCII digits only (str.isdigit also takes '²'), within a row id's range.
        if not _EVENT_ID.fullmatch(last_event_id) or int(last_event_id) > ID_MAX:
            raise ParameterError(f"Last-Event-ID must be an event id, got {last_event_id[:40]!r}")
        return int(last_event_id)
    return after


async def _events(
    request: Request, app: App, scope: Scope, run_id: str | None, last: int
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    # Read the change counter before each query: a commit that lands between the query and
    # the wait moves the counter, so the wait returns at once instead of missing it.
    seen = await run_in_threadpool(app.runs.wait_for_events, -1, 0.0)
    fresh, idle = True, 0.0
    while not await request.is_disconnected():
        if fresh:
            batch = await run_in_threadpool(app.runs.events_after, run_id, last)
            for event in batch:
                last = event.id
                if not scope.everything and not await run_in_threadpool(scope.run, event.run_id):
                    continue
                data = Event.of(event).model_dump_json()
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"
            if len(batch) == 500:
                continue  # more are waiting; send them before sleeping
        # Short in-memory waits, so a closed connection or a shutdown is noticed quickly.
        now_seen = await run_in_threadpool(app.runs.wait_for_events, seen, _WAIT_SECONDS)
        fresh, seen = now_seen != seen, now_seen
        idle = 0.0 if fresh else idle + _WAIT_SECONDS
        if idle >= _KEEPALIVE_SECONDS:
            idle = 0.0
            yield f": keepalive {json.dumps(last)}\n\n"


@router.get("/api/v1/runs/{run_id}/logs/stream", response_class=EventStream, responses=_REFUSALS)
@rule(Action.READ, targets.run)
async def stream_logs(
    request: Request,
    run_id: str,
    task: str | None = None,
    after: AfterId | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStream:
    """A run's log lines as they are written (`event: log`), from the start or after
    `Last-Event-ID` / `after`; ends with `event: end` once the run finished and its last
    lines were sent."""
    app = app_of(request)
    run_id = (await run_in_threadpool(app.runs.get_run, run_id)).id
    start = _start(after, last_event_id) or 0
    return EventStream(
        _logs(request, app, run_id, task, start),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _logs(
    request: Request, app: App, run_id: str, task: str | None, last: int
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    seen = await run_in_threadpool(app.runs.wait_for_events, -1, 0.0)
    fresh, idle = True, 0.0
    while not await request.is_disconnected():
        if fresh:
            finished = (await run_in_threadpool(app.runs.get_run, run_id)).state.finished
            batch = await run_in_threadpool(app.runs.logs, run_id, task, last, 1000)
            for line in batch:
                last = line.id
                yield f"id: {line.id}\nevent: log\ndata: {LogLine.of(line).model_dump_json()}\n\n"
            if len(batch) == 1000:
                continue
            if finished:  # read after the state: lines written before it finished are sent
                yield "event: end\ndata: {}\n\n"
                return
        now_seen = await run_in_threadpool(app.runs.wait_for_events, seen, _WAIT_SECONDS)
        fresh, seen = now_seen != seen, now_seen
        idle = 0.0 if fresh else idle + _WAIT_SECONDS
        if idle >= _KEEPALIVE_SECONDS:
            idle = 0.0
            yield f": keepalive {json.dumps(last)}\n\n"
