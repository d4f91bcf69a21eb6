"""``orchestrion retention`` (set, show, clear, apply) and ``orchestrion runs prune``,
``runs keep`` and ``runs unkeep``: retention policies and pruning, in the local database or
(``--server``) through a server's API, with the same output either way.

\b
orchestrion retention set '*' --runs-days 30 --logs-days 7 --keep-last 10
orchestrion runs prune --older-than 30d --dry-run
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import (
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote_call,
    server_option,
)
from orchestrion.cli.render import when
from orchestrion.spec.durations import parse_duration
from orchestrion.store.record import as_dict

__all__ = ["retention", "runs_keep", "runs_prune", "runs_unkeep"]

_RULES = ("runs_days", "logs_days", "keep_last", "audit_days", "audit_export_dir")


@click.group()
def retention() -> None:
    """Retention policies per namespace ('*': every namespace without its own): how long
    runs, logs and audit records are kept. The scheduler applies them."""


@retention.command("set")
@click.argument("namespace")
@click.option("--runs-days", type=float, default=None, help="Prune finished runs older than this.")
@click.option("--logs-days", type=float, default=None, help="Prune log lines older than this.")
@click.option("--keep-last", type=int, default=None, help="Keep the newest N runs per workflow.")
@click.option("--audit-days", type=float, default=None, help="Export, then delete, audit records.")
@click.option("--audit-export-dir", default=None, help="Where audit exports go (an absolute path).")
@db_option
@server_option
def retention_set(
    namespace: str,
    runs_days: float | None,
    logs_days: float | None,
    keep_last: int | None,
    audit_days: float | None,
    audit_export_dir: str | None,
    db: str | None,
    server: str | None,
) -> None:
    """Create or replace NAMESPACE's policy (rules not given are off)."""
    body: dict[str, Any] = {
        "runs_days": runs_days,
        "logs_days": logs_days,
        "keep_last": keep_last,
        "audit_days": audit_days,
        "audit_export_dir": audit_export_dir,
    }
    if server:
        created = bool(
            remote_call(server, "PUT", f"/api/v1/retention/{namespace}", json=body)["created"]
        )
    else:
        with opened(db) as app:
            created = app.retention.set_policy(namespace, **body)
    click.echo(f"{'created' if created else 'updated'} the retention policy of {namespace}")


@retention.command("show")
@click.argument("namespace", required=False)
@db_option
@server_option
@output_option
def retention_show(namespace: str | None, db: str | None, server: str | None, output: str) -> None:
    """Every policy, or NAMESPACE's."""
    if server:
        path = "/api/v1/retention" + (f"/{namespace}" if namespace else "")
        found = remote_call(server, "GET", path)
        rows: list[dict[str, Any]] = [found] if namespace else found
    else:
        with opened(db) as app:
            got = (
                [app.retention.get_policy(namespace)]
                if namespace
                else app.retention.list_policies()
            )
            rows = [as_dict(p) for p in got]
    if output == "json":
        click.echo(json.dumps(rows if not namespace else rows[0], indent=2))
        return
    table = Table(box=None)
    for column in (
        "NAMESPACE",
        "RUNS DAYS",
        "LOGS DAYS",
        "KEEP LAST",
        "AUDIT DAYS",
        "EXPORT TO",
        "UPDATED",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["namespace"]),
            *(escape("-" if r[k] is None else str(r[k])) for k in _RULES),
            when(r["updated_at"]),
        )
    console.print(table)


@retention.command("clear")
@click.argument("namespace")
@db_option
@server_option
def retention_clear(namespace: str, db: str | None, server: str | None) -> None:
    """Delete NAMESPACE's policy (its runs are then kept, or fall under '*')."""
    if server:
        remote_call(server, "DELETE", f"/api/v1/retention/{namespace}")
    else:
        with opened(db) as app:
            app.retention.clear_policy(namespace)
    click.echo(f"cleared the retention policy of {namespace}")


@retention.command("apply")
@db_option
@output_option
def retention_apply(db: str | None, output: str) -> None:
    """Apply every policy now, to the end (the scheduler does it in steps by itself)."""
    with opened(db) as app:
        counts = app.retention.apply_policies().as_dict()
    _print_counts(counts, output, dry_run=False)


@click.command("prune")
@click.option("--older-than", required=True, help="Prune runs that ended longer ago (30d, 12h).")
@click.option(
    "--keep-last", type=click.IntRange(0), default=0, help="Keep the newest N per workflow."
)
@click.option("--namespace", "-n", default=None, help="Only this namespace's workflows.")
@click.option("--workflow", "-w", default=None, help="Only this workflow.")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@db_option
@server_option
@output_option
def runs_prune(
    older_than: str,
    keep_last: int,
    namespace: str | None,
    workflow: str | None,
    dry_run: bool,
    db: str | None,
    server: str | None,
    output: str,
) -> None:
    """Delete finished runs that ended before --older-than, with their task runs, attempts,
    events and logs, in small batches. Kept runs, unfinished runs, child runs of runs that
    stay, and the newest --keep-last of each workflow are never touched."""
    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        errors.print(f"[red]error:[/] --older-than: {escape(str(exc))}")
        sys.exit(2)
    body = {
        "older_than": seconds,
        "keep_last": keep_last,
        "namespace": namespace,
        "workflow": workflow,
        "dry_run": dry_run,
    }
    if server:
        done: dict[str, Any] = remote_call(server, "POST", "/api/v1/retention/prune", json=body)
        counts = done["counts"]
    else:
        with opened(db) as app:
            counts = app.retention.prune(
                older_than=seconds,
                keep_last=keep_last,
                namespace=namespace,
                workflow=workflow,
                dry_run=dry_run,
            ).counts.as_dict()
    _print_counts(counts, output, dry_run=dry_run)


def _print_counts(counts: dict[str, int], output: str, *, dry_run: bool) -> None:
    if output == "json":
        click.echo(json.dumps({"dry_run": dry_run, "counts": counts}, indent=2))
        return
    verb = "would prune" if dry_run else "pruned"
    rest = ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in counts.items() if k != "runs" and n)
    click.echo(f"{verb} {counts['runs']:,} runs" + (f" ({rest})" if rest else ""))


def _keep(run_id: str, keep: bool, db: str | None, server: str | None) -> None:
    if server:
        run = remote_call(server, "PUT", f"/api/v1/runs/{run_id}/keep", json={"keep": keep})
        shown = run["id"]
    else:
        with opened(db) as app:
            app.retention.keep_run(run_id, keep)
            shown = app.runs.get_run(run_id).id
    click.echo(f"run {shown} {'kept' if keep else 'no longer kept'}")


@click.command("keep")
@click.argument("run_id")
@db_option
@server_option
def runs_keep(run_id: str, db: str | None, server: str | None) -> None:
    """Mark a run to keep: retention never prunes it, nor its parent or child runs."""
    _keep(run_id, True, db, server)


@click.command("unkeep")
@click.argument("run_id")
@db_option
@server_option
def runs_unkeep(run_id: str, db: str | None, server: str | None) -> None:
    """Let retention prune a run again once it is old enough."""
    _keep(run_id, False, db, server)
