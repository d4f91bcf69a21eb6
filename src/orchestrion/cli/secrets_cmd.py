"""``orchestrion secrets``: set, list, delete and rotate secrets; make a master key.

A value is read from standard input, never from the command line: argv is visible to every
user of the machine (``ps``) and lands in shell history. Nothing here ever prints a value.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.auth.secret_box import KEY_ENV, generate_key_text
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
from orchestrion.errors import OrchestrionError
from orchestrion.spec.rules import parse_ref

__all__ = ["secrets"]


def _ref(ref: str) -> tuple[str, str]:
    try:
        return parse_ref(ref, "secret")
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


@click.group()
def secrets() -> None:
    """Encrypted secrets that tasks use by reference (values are never shown)."""


@secrets.command("set")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
@server_option
def secrets_set(ref: str, db: str | None, server: str | None) -> None:
    """Create or replace a secret; the value is read from standard input.

    \b
    printf %s "$PASSWORD" | orchestrion secrets set finance/warehouse-password
    orchestrion secrets set finance/tls-key < key.pem
    """
    if sys.stdin.isatty():
        value = click.prompt("value", hide_input=True, confirmation_prompt=True, err=True)
    else:
        value = sys.stdin.read()
        # `echo value |` adds one newline that is not part of the secret; keep any other.
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    if server:
        namespace, name = _ref(ref)
        made = remote_call(
            server, "PUT", f"/api/v1/secrets/{namespace}/{name}", json={"value": value}
        )
        created = bool(made["created"])
    else:
        with opened(db) as app:
            namespace, name = parse_ref(ref, "secret")
            created = app.secrets.set_secret(namespace, name, value)
    click.echo(f"{'created' if created else 'updated'} secret {namespace}/{name}")


@secrets.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@db_option
@server_option
@output_option
def secrets_list(namespace: str | None, db: str | None, server: str | None, output: str) -> None:
    """Names and metadata of the secrets (never their values)."""
    if server:
        query = {"namespace": namespace} if namespace else None
        rows: list[dict[str, Any]] = remote_call(server, "GET", "/api/v1/secrets", params=query)
    else:
        with opened(db) as app:
            rows = [
                {
                    "namespace": m.namespace,
                    "name": m.name,
                    "key_id": m.key_id,
                    "created_at": m.created_at,
                    "updated_at": m.updated_at,
                }
                for m in app.secrets.list_secrets(namespace)
            ]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("NAMESPACE", "NAME", "KEY", "CREATED", "UPDATED"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["namespace"]),
            escape(r["name"]),
            escape(r["key_id"]),
            when(r["created_at"]),
            when(r["updated_at"]),
        )
    console.print(table)


@secrets.command("delete")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
@server_option
def secrets_delete(ref: str, db: str | None, server: str | None) -> None:
    """Delete a secret (tasks that use it then fail until it is set again)."""
    if server:
        namespace, name = _ref(ref)
        remote_call(server, "DELETE", f"/api/v1/secrets/{namespace}/{name}")
    else:
        with opened(db) as app:
            namespace, name = parse_ref(ref, "secret")
            app.secrets.delete_secret(namespace, name)
    click.echo(f"deleted secret {namespace}/{name}")


@secrets.command("rotate")
@db_option
def secrets_rotate(db: str | None) -> None:
    """Re-encrypt every secret under the current (first) master key.

    \b
    1. orchestrion secrets generate-key            # the new key
    2. ORCHESTRION_MASTER_KEY="new:<new key>,old:<old key>" orchestrion secrets rotate
    3. then keep only the new key everywhere
    """
    with opened(db) as app:
        count = app.secrets.rotate_secrets()
        current = app.secrets.key_ring.current_id
    click.echo(f"re-encrypted {count} secret(s) under key {current}")


@secrets.command("generate-key")
@click.option("--id", "key_id", default=None, help="A key id to prefix (``id:key``).")
def secrets_generate_key(key_id: str | None) -> None:
    """Print a new random 256-bit master key for ORCHESTRION_MASTER_KEY."""
    key = generate_key_text()
    click.echo(f"{key_id}:{key}" if key_id else key)
    click.echo(f"# export {KEY_ENV}=<the line above>  (keep it out of the database)", err=True)
