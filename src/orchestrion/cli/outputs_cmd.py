"""``orchestrion runs artifacts`` and ``runs result``: what a run published and its stored
results, from the local database or (``--server``) a server's API, the same either way."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.store.artifact_records import ArtifactRecord
from orchestrion.store.objects import ObjectRef

__all__ = ["runs_artifacts", "runs_result"]


def _decode(item: dict[str, Any]) -> ArtifactRecord:
    found = item.get("object")
    ref = None if found is None else ObjectRef(**found)
    return ArtifactRecord(
        kind=item["kind"],
        title=item["title"],
        body=item["body"],
        ref=ref,
        id=item["id"],
        run_id=item["run_id"],
        task_run_id=item["task_run_id"],
        task_name=item["task"],
        attempt=item["attempt"],
        created_at=item["created_at"],
    )


def _listed(db: str | None, server: str | None, run_id: str) -> list[ArtifactRecord]:
    if server is None:
        with opened(db) as app:
            return app.outputs.artifacts(run_id)
    with remote(server) as api:
        return [_decode(a) for a in api.call("GET", f"/api/v1/runs/{run_id}/artifacts")]


@click.command("artifacts")
@click.argument("run_id")
@db_option
@server_option
@output_option
def runs_artifacts(run_id: str, db: str | None, server: str | None, output: str) -> None:
    """The artifacts a run's tasks published: reports, tables, links and files."""
    from orchestrion.cli.render import size_text

    found = _listed(db, server, run_id)
    if output == "json":
        rows = [
            {
                "id": a.id,
                "task": a.task_name,
                "attempt": a.attempt,
                "kind": a.kind,
                "title": a.title,
                "body": a.body,
                "object": None
                if a.ref is None
                else {"uri": a.ref.uri, "size": a.ref.size, "sha256": a.ref.sha256},
            }
            for a in found
        ]
        click.echo(json.dumps(rows, indent=1))
        return
    table = Table(box=None, header_style="bold")
    for col in ("ID", "TASK", "ATTEMPT", "KIND", "TITLE", "CONTENT"):
        table.add_column(col, overflow="fold")
    for a in found:
        if a.ref is not None:
            content = f"{size_text(a.ref.size)} at {a.ref.uri}"
        else:
            body = " ".join((a.body or "").split())
            content = body if len(body) <= 60 else body[:59] + "…"
        table.add_row(
            str(a.id), a.task_name, str(a.attempt), a.kind, Text(a.title or ""), Text(content)
        )
    console.print(table)


@click.command("result")
@click.argument("run_id")
@click.argument("task_run_id", type=int)
@db_option
@server_option
def runs_result(run_id: str, task_run_id: int, db: str | None, server: str | None) -> None:
    """Write a task run's stored result (its JSON) to standard output, streamed."""
    out = sys.stdout.buffer
    if server is None:
        with opened(db) as app:
            _, body = app.outputs.result_content(run_id, task_run_id)
            with body:
                shutil.copyfileobj(body, out, 1024 * 1024)
        return
    with remote(server) as api:
        api.call("GET", f"/api/v1/runs/{run_id}/results/{task_run_id}")  # errors as usual
        path = f"/api/v1/runs/{run_id}/results/{task_run_id}/content"
        with api.stream("GET", path) as response:
            for block in response.iter_bytes(1024 * 1024):
                out.write(block)
