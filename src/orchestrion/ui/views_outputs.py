"""The run page's artifacts: Markdown reports rendered with raw HTML escaped (markdown-it-py
with ``html`` off; its link check refuses ``javascript:`` and other unsafe schemes), tables,
links and file downloads; and the download of a run's stored results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from fastapi import Request
from markupsafe import Markup
from starlette.responses import Response, StreamingResponse

from orchestrion.app import App
from orchestrion.auth.principals import Action
from orchestrion.store.artifact_records import ArtifactRecord
from orchestrion.ui.pages import ui_router
from orchestrion.web import targets
from orchestrion.web.params import PathId
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["ArtifactView", "artifact_views", "router"]

router = ui_router()

#: A table shows at most this many rows and columns on the page.
_ROWS, _COLUMNS = 200, 30


@dataclass(frozen=True)
class ArtifactView:
    """One artifact as the run page shows it."""

    record: ArtifactRecord
    #: Rendered Markdown (safe: raw HTML in the source was escaped).
    html: Markup | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    more_rows: int = 0


def _markdown(text: str) -> Markup:
    from markdown_it import MarkdownIt

    # "commonmark" with html off: a <script> in the text arrives as the text "<script>".
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return Markup(md.render(text))


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _view(a: ArtifactRecord) -> ArtifactView:
    if a.kind == "markdown":
        return ArtifactView(a, html=_markdown(a.body or ""))
    if a.kind == "table":
        try:
            rows = json.loads(a.body or "[]")
        except json.JSONDecodeError:
            rows = []
        rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        columns = list(dict.fromkeys(k for r in rows[:_ROWS] for k in r))[:_COLUMNS]
        shown = tuple(tuple(_cell(r.get(c, "")) for c in columns) for r in rows[:_ROWS])
        return ArtifactView(
            a, columns=tuple(columns), rows=shown, more_rows=max(0, len(rows) - _ROWS)
        )
    return ArtifactView(a)


def artifact_views(app: App, run_id: str) -> list[ArtifactView]:
    """The run's artifacts, ready for the page."""
    return [_view(a) for a in app.outputs.artifacts(run_id)]


def _stream(body: IO[bytes]) -> Iterator[bytes]:
    try:
        while block := body.read(1024 * 1024):
            yield block
    finally:
        body.close()


@router.get("/runs/{run_id}/artifacts/{artifact_id}/download")
@rule(Action.READ, targets.run)
def download_artifact(request: Request, run_id: str, artifact_id: PathId) -> Response:
    found, body = app_of(request).outputs.artifact_content(run_id, artifact_id)
    assert found.ref is not None
    name = "".join(c for c in (found.title or "artifact") if c.isalnum() or c in "._- ")
    return StreamingResponse(
        _stream(body),
        # Never rendered inline: a file's bytes are the task's, not ours.
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(found.ref.size),
            "Content-Disposition": f'attachment; filename="{name or "artifact"}"',
        },
    )


@router.get("/runs/{run_id}/results/{task_run_id}/download")
@rule(Action.READ, targets.run)
def download_result(request: Request, run_id: str, task_run_id: PathId) -> Response:
    found, body = app_of(request).outputs.result_content(run_id, task_run_id)
    return StreamingResponse(
        _stream(body),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(found.ref.size),
            "Content-Disposition": f'attachment; filename="{found.task_name}-result.json"',
        },
    )
