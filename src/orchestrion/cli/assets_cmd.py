"""``orchestrion assets``: data assets' catalogue, history, lineage and materializing.

Every command works on the local database, or on a server's ``/api/v1/assets`` with
``--server``; both give the same JSON with ``--output json``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.cli.render import when
from orchestrion.store.record import as_dict

__all__ = ["assets"]

_namespace_option = click.option(
    "--namespace", "-n", default="default", show_default=True, help="The asset's namespace."
)


def _path(namespace: str, verb: str) -> str:
    return f"/api/v1/assets/{quote(namespace, safe='')}/{verb}"


@click.group()
def assets() -> None:
    """Data assets: what tasks produce and consume, their events and lineage."""


@assets.command("list")
@db_option
@server_option
@output_option
def list_assets(db: str | None, server: str | None, output: str) -> None:
    """Every asset: its producers, newest event and freshness."""
    if server is not None:
        with remote(server) as api:
            rows: list[dict[str, Any]] = list(api.call("GET", "/api/v1/assets"))
    else:
        with opened(db) as app:
            rows = [a.as_dict() for a in app.assets.list_assets()]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("NAMESPACE", "ASSET", "STATE", "EVENTS", "LAST", "PRODUCERS"):
        table.add_column(column)
    for a in rows:
        table.add_row(
            escape(a["namespace"]), escape(a["key"]), a["state"], str(a["events"]),
            when(a["last_at"]) if a["last_at"] else "-", escape(", ".join(a["producers"])),
        )  # fmt: skip
    console.print(table)


@assets.command("show")
@click.argument("key")
@_namespace_option
@db_option
@server_option
@output_option
def show(key: str, namespace: str, db: str | None, server: str | None, output: str) -> None:
    """One asset: producers, consumers, upstream and downstream assets, freshness."""
    if server is not None:
        with remote(server) as api:
            row = dict(api.call("GET", _path(namespace, "detail"), params={"key": key}))
    else:
        with opened(db) as app:
            row = app.assets.show(key, namespace).as_dict()
    if output == "json":
        click.echo(json.dumps(row, indent=2))
        return
    for name in ("namespace", "key", "state", "max_age", "events", "last_event_id"):
        click.echo(f"{name:14} {row[name]}")
    click.echo(f"{'last_at':14} {when(row['last_at']) if row['last_at'] else '-'}")
    for name in ("producers", "consumers", "triggers", "upstream", "downstream"):
        click.echo(f"{name:14} {', '.join(row[name]) or '-'}")


@assets.command("history")
@click.argument("key")
@_namespace_option
@click.option("--partition", help="Only this partition's events.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@db_option
@server_option
@output_option
def history(
    key: str,
    namespace: str,
    partition: str | None,
    limit: int,
    db: str | None,
    server: str | None,
    output: str,
) -> None:
    """An asset's events, newest first, with the run that produced each."""
    if server is not None:
        params: dict[str, Any] = {"key": key, "limit": limit}
        if partition is not None:
            params["partition"] = partition
        with remote(server) as api:
            rows: list[dict[str, Any]] = list(
                api.call("GET", _path(namespace, "history"), params=params)
            )
    else:
        with opened(db) as app:
            found = app.assets.history(key, namespace, partition=partition, limit=limit)
            rows = [as_dict(e) for e in found]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("ID", "PARTITION", "WHEN", "RUN", "TASK", "ATTEMPT", "METADATA"):
        table.add_column(column)
    for e in rows:
        meta = json.dumps(e["metadata"]) if e["metadata"] is not None else "-"
        table.add_row(
            str(e["id"]), escape(e["partition"] or "-"), when(e["created_at"]),
            escape(e["run_id"]), escape(f"{e['workflow']}/{e['task_name']}"),
            str(e["attempt"]), escape(meta),
        )  # fmt: skip
    console.print(table)


@assets.command("materialize")
@click.argument("key")
@_namespace_option
@click.option("--partition", help="The partition to make (passed as the producer's parameter).")
@click.option("--upstream", is_flag=True, help="Also start what it needs, furthest first.")
@db_option
@server_option
def materialize(
    key: str,
    namespace: str,
    partition: str | None,
    upstream: bool,
    db: str | None,
    server: str | None,
) -> None:
    """Start the workflow(s) producing KEY."""
    if server is not None:
        body = {"key": key, "partition": partition, "upstream": upstream}
        with remote(server) as api:
            runs = list(api.call("POST", _path(namespace, "materialize"), json=body)["runs"])
    else:
        with opened(db) as app:
            runs = app.assets.materialize(key, namespace, partition=partition, upstream=upstream)
    for run_id in runs:
        click.echo(f"started run {run_id}")
