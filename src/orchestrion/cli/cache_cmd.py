"""``orchestrion cache`` (list, clear): the task result cache (``docs/caching.md``), in the
local database or (``--server``) through a server's API, with the same output either way.

\b
orchestrion cache list --workflow etl
orchestrion cache clear --workflow etl
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import (
    console,
    db_option,
    opened,
    output_option,
    remote_call,
    server_option,
)
from orchestrion.cli.render import when
from orchestrion.store.record import as_dict

__all__ = ["cache"]

_WORKFLOW = click.option("--workflow", "-w", default=None, help="Only this workflow's entries.")


def _path(workflow: str | None) -> str:
    if workflow is None:
        return "/api/v1/cache"
    return f"/api/v1/workflows/{quote(workflow, safe='')}/cache"


@click.group()
def cache() -> None:
    """Cached task results: entries by workflow, task and key (tasks with `cache`)."""


@cache.command("list")
@_WORKFLOW
@db_option
@server_option
@output_option
def cache_list(workflow: str | None, db: str | None, server: str | None, output: str) -> None:
    """The entries, newest first."""
    if server:
        rows: list[dict[str, Any]] = remote_call(server, "GET", _path(workflow))
    else:
        with opened(db) as app:
            rows = [
                {
                    **{k: v for k, v in as_dict(e).items() if k not in ("task_name", "cache_key")},
                    "task": e.task_name,
                    "key": e.cache_key,
                }
                for e in app.cache.list_entries(workflow=workflow)
            ]
    if output == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table(box=None)
    for column in ("WORKFLOW", "TASK", "KEY", "STATE", "SOURCE RUN", "CREATED", "EXPIRES"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["workflow"]),
            escape(r["task"]),
            escape(r["key"][:12]),
            r["state"],
            escape(r["run_id"]),
            when(r["created_at"]),
            "never" if r["expires_at"] is None else when(r["expires_at"]),
        )
    console.print(table)


@cache.command("clear")
@_WORKFLOW
@db_option
@server_option
def cache_clear(workflow: str | None, db: str | None, server: str | None) -> None:
    """Delete the entries (of one workflow, or of all): their tasks compute again."""
    if server:
        gone = int(remote_call(server, "DELETE", _path(workflow))["cleared"])
    else:
        with opened(db) as app:
            gone = app.cache.clear(workflow=workflow)
    click.echo(f"cleared {gone} cache entr{'y' if gone == 1 else 'ies'}")
