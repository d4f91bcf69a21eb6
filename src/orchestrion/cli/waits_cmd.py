"""``orchestrion approve``, ``reject``, ``signal`` and ``waits``: decide approval steps,
send signals to runs and list what waits, in the local database or (``--server``) through
a server's API, with the same output either way."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from orchestrion.api.wait_wire import WAIT
from orchestrion.cli.common import (
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote_call,
    server_option,
)
from orchestrion.spec.rules import load_json
from orchestrion.store.wait_records import WaitRecord

__all__ = ["approve", "reject", "signal", "waits"]


def _decide(
    verb: str, run_id: str, task: str, reason: str, db: str | None, server: str | None
) -> None:
    if server is not None:
        path = f"/api/v1/runs/{run_id}/tasks/{task}/{verb}"
        found = WAIT.decode(remote_call(server, "POST", path, json={"reason": reason}))
    else:
        with opened(db) as app:
            decide = app.waits.approve if verb == "approve" else app.waits.reject
            found = decide(run_id, task, reason=reason)
    done = "approved" if verb == "approve" else "rejected"
    console.print(f"{done} task {found.task} of run {found.run_id}", markup=False)


@click.command()
@click.argument("run_id")
@click.argument("task")
@click.option("--reason", "-r", default="", help="Why: kept with the decision and audited.")
@db_option
@server_option
def approve(run_id: str, task: str, reason: str, db: str | None, server: str | None) -> None:
    """Approve a waiting approval step: the run goes on."""
    _decide("approve", run_id, task, reason, db, server)


@click.command()
@click.argument("run_id")
@click.argument("task")
@click.option("--reason", "-r", default="", help="Why: the task's error, and audited.")
@db_option
@server_option
def reject(run_id: str, task: str, reason: str, db: str | None, server: str | None) -> None:
    """Reject a waiting approval step: it fails with the reason."""
    _decide("reject", run_id, task, reason, db, server)


@click.command()
@click.argument("run_id")
@click.argument("name")
@click.argument("data", required=False, default="null")
@db_option
@server_option
def signal(run_id: str, name: str, data: str, db: str | None, server: str | None) -> None:
    """Send signal NAME with JSON DATA to a run: the step waiting on it (now or later)
    takes DATA as its result."""
    try:
        value: Any = load_json(data, what="DATA")
    except ValueError as exc:
        errors.print(f"error: DATA must be JSON ({exc}); quote a string like '\"text\"'")
        sys.exit(2)
    if server is not None:
        body = {"name": name, "data": value}
        sent = remote_call(server, "POST", f"/api/v1/runs/{run_id}/signals", json=body)
        run, taker = sent["run_id"], sent["delivered_to"]
    else:
        with opened(db) as app:
            receipt = app.waits.signal(run_id, name, value)
            run, taker = receipt.run_id, receipt.delivered_to
    where = f"taken by task {taker}" if taker else "kept until a step waits on it"
    console.print(f"signal {name} sent to run {run}: {where}", markup=False)


@click.command()
@click.argument("run_id", required=False)
@db_option
@server_option
@output_option
def waits(run_id: str | None, db: str | None, server: str | None, output: str) -> None:
    """Steps waiting on an approval, a signal, an event or a sensor (of one run, if given)."""
    if server is not None:
        path = f"/api/v1/runs/{run_id}/waits" if run_id else "/api/v1/waits"
        raw = remote_call(server, "GET", path)
        found = [(WAIT.decode(w), w.get("details") or {}) for w in raw]
    else:
        with opened(db) as app:
            found = [(w, app.waits.describe(w)) for w in app.waits.pending(run_id)]
    if output == "json":
        click.echo(json.dumps([{**WAIT.encode(w), "details": d} for w, d in found], indent=1))
        return
    if not found:
        console.print("nothing waits", markup=False)
        return
    for wait, details in found:
        console.print(_line(wait, details), markup=False)


def _line(wait: WaitRecord, details: dict[str, Any]) -> str:
    what = wait.kind + (f" {wait.name}" if wait.name else "")
    if wait.kind == "approval":
        what += f" (role {details.get('role', '?')})"
    due = ""
    if wait.deadline is not None:
        due = f", times out in {max(0.0, wait.deadline - time.time()):.0f}s"
    return f"{wait.run_id}  {wait.workflow}.{wait.task}  waits on {what}{due}"
