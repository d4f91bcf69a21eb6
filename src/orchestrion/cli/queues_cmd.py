"""``orchestrion queues``: per-queue concurrency limits (see `orchestrion.store.sql.slots`).

A limit counts task runs holding an unexpired lease, so lowering it never stops running
work: claims wait until the queue is under the new limit.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option
from orchestrion.cli.render import when

__all__ = ["queues"]


@click.group()
def queues() -> None:
    """Queue limits: how many task runs of a queue run at once across all workers."""


@queues.command("set-limit")
@click.argument("queue")
@click.argument("max_running", type=click.IntRange(min=1))
@db_option
def set_limit(queue: str, max_running: int, db: str | None) -> None:
    """At most MAX_RUNNING task runs of QUEUE at once, across all workers."""
    with opened(db) as app:
        app.queues.set_queue_limit(queue, max_running)
    click.echo(f"queue {queue}: at most {max_running} running")


@queues.command("clear-limit")
@click.argument("queue")
@db_option
def clear_limit(queue: str, db: str | None) -> None:
    """Remove QUEUE's limit."""
    with opened(db) as app:
        app.queues.clear_queue_limit(queue)
    click.echo(f"queue {queue}: no limit")


@queues.command("list")
@db_option
@output_option
def list_limits(db: str | None, output: str) -> None:
    """The queue limits, with how many task runs of each queue are running now."""
    with opened(db) as app:
        limits = app.queues.queue_limits()
    if output == "json":
        rows = [
            {
                "queue": q.queue,
                "max_running": q.max_running,
                "running": q.running,
                "updated_at": q.updated_at,
            }
            for q in limits
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("QUEUE", "LIMIT", "RUNNING", "UPDATED"):
        table.add_column(column)
    for q in limits:
        table.add_row(q.queue, str(q.max_running), str(q.running), when(q.updated_at))
    console.print(table)
