"""``orchestrion queues``: per-queue concurrency limits (see `orchestrion.store.sql.slots`).

A limit counts task runs holding an unexpired lease, so lowering it never stops running
work: claims wait until the queue is under the new limit. Every command works on the local
database, or on a server's ``/api/v1/queues`` with ``--server``.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.cli.render import when
from orchestrion.store.record import as_dict

__all__ = ["queues"]


@click.group()
def queues() -> None:
    """Queue limits: how many task runs of a queue run at once across all workers."""


@queues.command("set-limit")
@click.argument("queue")
@click.argument("max_running", type=click.IntRange(min=1))
@db_option
@server_option
def set_limit(queue: str, max_running: int, db: str | None, server: str | None) -> None:
    """At most MAX_RUNNING task runs of QUEUE at once, across all workers."""
    if server is not None:
        with remote(server) as api:
            body = {"max_running": max_running}
            api.call("PUT", f"/api/v1/queues/{quote(queue, safe='')}/limit", json=body)
    else:
        with opened(db) as app:
            app.queues.set_queue_limit(queue, max_running)
    click.echo(f"queue {queue}: at most {max_running} running")


@queues.command("clear-limit")
@click.argument("queue")
@db_option
@server_option
def clear_limit(queue: str, db: str | None, server: str | None) -> None:
    """Remove QUEUE's limit."""
    if server is not None:
        with remote(server) as api:
            api.call("DELETE", f"/api/v1/queues/{quote(queue, safe='')}/limit")
    else:
        with opened(db) as app:
            app.queues.clear_queue_limit(queue)
    click.echo(f"queue {queue}: no limit")


@queues.command("list")
@db_option
@server_option
@output_option
def list_limits(db: str | None, server: str | None, output: str) -> None:
    """The queue limits, with how many task runs of each queue are running now."""
    if server is not None:
        with remote(server) as api:
            rows = list(api.call("GET", "/api/v1/queues"))
    else:
        with opened(db) as app:
            rows = [as_dict(q) for q in app.queues.queue_limits()]  # the API's view
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("QUEUE", "LIMIT", "RUNNING", "UPDATED"):
        table.add_column(column)
    for q in rows:
        table.add_row(
            escape(q["queue"]), str(q["max_running"]), str(q["running"]), when(q["updated_at"])
        )
    console.print(table)
