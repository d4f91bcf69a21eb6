"""``orchestrion policy``: admission policies (docs/policies.md).

``list``, ``show``, ``history``, ``apply`` and ``delete`` work on the local database, or on
a server's ``/api/v1/policies`` with ``--server`` (admin on ``*`` to change them).
``test`` needs neither: it evaluates policy files against workflow files here, with the
same pure function the server uses, and exits 1 when any finding denies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import (
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote,
    server_option,
)
from orchestrion.cli.render import when
from orchestrion.errors import OrchestrionError

__all__ = ["findings_lines", "policy"]


def _seg(name: str) -> str:
    return quote(name, safe="")


def _record(record: Any) -> dict[str, Any]:
    """A local `PolicyRecord` as the API sends it."""
    return dict(record.to_wire())


def findings_lines(findings: list[dict[str, Any]]) -> list[str]:
    """One line per finding, for the commands that deploy or trigger."""
    return [f"{f['effect']}: {f['text']}" for f in findings]


@click.group()
def policy() -> None:
    """Admission policies: rules checked at deploy and trigger."""


@policy.command("list")
@db_option
@server_option
@output_option
def list_policies(db: str | None, server: str | None, output: str) -> None:
    """The policies in force, with their version and rules."""
    if server is not None:
        with remote(server) as api:
            rows = list(api.call("GET", "/api/v1/policies"))
    else:
        with opened(db) as app:
            rows = [_record(r) for r in app.policies.list()]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("POLICY", "VERSION", "RULES", "APPLIES TO", "UPDATED"):
        table.add_column(column)
    for row in rows:
        doc = row["document"]
        rules = ", ".join(f"{r.get('name')} ({r.get('effect', 'deny')})" for r in doc["rules"])
        scope = doc.get("applies_to", {})
        where = f"{scope.get('namespaces', '*')} on {scope.get('on', ['deploy', 'trigger'])}"
        table.add_row(
            escape(row["name"]), str(row["version"]), escape(rules), escape(where),
            when(row["created_at"]),
        )  # fmt: skip
    console.print(table)


@policy.command("show")
@click.argument("name")
@db_option
@server_option
@output_option
def show(name: str, db: str | None, server: str | None, output: str) -> None:
    """A policy's version in force, as YAML."""
    if server is not None:
        with remote(server) as api:
            row = dict(api.call("GET", f"/api/v1/policies/{_seg(name)}"))
    else:
        with opened(db) as app:
            row = _record(app.policies.get(name))
    if output == "json":
        click.echo(json.dumps(row, indent=2))
        return
    who = f" by {row['created_by']}" if row["created_by"] else ""
    click.echo(f"# {row['name']} version {row['version']}, {when(row['created_at'])}{who}")
    click.echo(row["yaml"], nl=False)


@policy.command("history")
@click.argument("name")
@db_option
@server_option
@output_option
def history(name: str, db: str | None, server: str | None, output: str) -> None:
    """Every version of a policy, newest first."""
    if server is not None:
        with remote(server) as api:
            rows = list(api.call("GET", f"/api/v1/policies/{_seg(name)}/history"))
    else:
        with opened(db) as app:
            rows = [_record(r) for r in app.policies.history(name)]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("VERSION", "WHEN", "BY", "CHANGE", "DIGEST"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["version"]), when(row["created_at"]), escape(row["created_by"] or "-"),
            "deleted" if row["deleted"] else "written", row["digest"][:12],
        )  # fmt: skip
    console.print(table)


@policy.command("apply")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@db_option
@server_option
def apply(path: Path, db: str | None, server: str | None) -> None:
    """Write the policies of a YAML file (or of every YAML file of a folder): a new
    version for each that changed. All are checked before any is written."""
    from orchestrion.spec.policies import policy_documents

    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if path.is_dir()
        else [path]
    )
    try:
        documents = [d for f in files for d in policy_documents(f.read_bytes(), source=str(f))]
    except OrchestrionError as exc:
        errors.print(f"[red]invalid[/] {escape(str(exc))}")
        sys.exit(2)
    if server is not None:
        with remote(server) as api:
            rows = [dict(api.call("POST", "/api/v1/policies", json=d)) for d in documents]
    else:
        with opened(db) as app:
            rows = [_record(app.policies.put(d)) for d in documents]
    for row in rows:
        click.echo(f"policy {row['name']} version {row['version']}")


@policy.command("delete")
@click.argument("name")
@db_option
@server_option
def delete(name: str, db: str | None, server: str | None) -> None:
    """Take a policy out of force (its history is kept)."""
    if server is not None:
        with remote(server) as api:
            api.call("DELETE", f"/api/v1/policies/{_seg(name)}")
    else:
        with opened(db) as app:
            app.policies.delete(name)
    click.echo(f"policy {name} deleted")


@policy.command("test")
@click.argument("policies", type=click.Path(exists=True, path_type=Path))
@click.argument("workflows", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--on", "moment", type=click.Choice(["deploy", "trigger"]), default="deploy",
    show_default=True, help="Evaluate as a deploy, or as a trigger (default parameters).",
)  # fmt: skip
@click.option(
    "--at", "at", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%z"]), default=None,
    help="Evaluate as of this time (UTC unless an offset is given); default: now.",
)  # fmt: skip
@output_option
def test(policies: Path, workflows: tuple[str, ...], moment: str, at: Any, output: str) -> None:
    """Dry-run POLICIES (a file or a folder) against WORKFLOWS files, here: no server and
    no database. Prints each finding; exit code 1 when any denies, 2 on bad input."""
    import time
    from datetime import UTC

    now = time.time() if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()

    from orchestrion.spec.loading import load_workflows
    from orchestrion.spec.params import resolve_params
    from orchestrion.spec.policies import PolicyRequest, evaluate, load_policies

    found: list[dict[str, Any]] = []
    try:
        loaded = load_policies(policies)
        for path in workflows:
            for item in load_workflows(path):
                spec = item.spec
                params = resolve_params(spec, {}) if moment == "trigger" else None
                request = PolicyRequest(
                    on=moment,  # type: ignore[arg-type]
                    namespace=spec.namespace,
                    trigger="manual" if moment == "trigger" else None,
                    params=params,
                    source=path,
                )
                decision = evaluate(loaded, spec, request, principal=None, now=now)
                for f in decision.findings:
                    found.append(
                        {"workflow": spec.name, "namespace": spec.namespace, "file": path,
                         "policy": f.policy, "rule": f.rule, "effect": f.effect,
                         "field": f.field, "message": f.message, "text": str(f)}
                    )  # fmt: skip
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    denied = any(f["effect"] == "deny" for f in found)
    if output == "json":
        click.echo(json.dumps(found, indent=2))
    else:
        for row in found:
            where = f"{row['file']}: {row['namespace']}/{row['workflow']}"
            click.echo(f"{where}: {row['effect']}: {row['text']}")
        checked = len(loaded)
        click.echo(
            f"{len(found)} finding(s) from {checked} polic{'y' if checked == 1 else 'ies'}"
            + ("; denied" if denied else "")
        )
    sys.exit(1 if denied else 0)
