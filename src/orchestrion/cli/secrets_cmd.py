"""``orchestrion secrets``: set, list, delete and rotate secrets; make a master key.

A value is read from standard input, never from the command line: argv is visible to every
user of the machine (``ps``) and lands in shell history. Nothing here ever prints a value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrion.app import App
from orchestrion.auth.secret_box import KEY_ENV, generate_key_text
from orchestrion.cli.render import when
from orchestrion.config import Settings
from orchestrion.errors import OrchestrionError
from orchestrion.secret_service import parse_ref

__all__ = ["register"]

# Not imported from cli.main: `python -m orchestrion.cli.main` registers this module while
# cli.main is still `__main__`, and importing it again would run it twice.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def db_option(fn: F) -> F:
    return click.option(
        "--db",
        envvar="ORCHESTRION_DATABASE_URL",
        default=None,
        help="Database URL or SQLite file (default: .orchestrion/orchestrion.db).",
    )(fn)


def output_option(fn: F) -> F:
    return click.option(
        "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
    )(fn)


@contextmanager
def opened(db: str | None) -> Iterator[App]:
    """An open App; Orchestrion errors become one line on stderr and exit code 2."""
    try:
        with App(Settings.from_env(db=db)) as app:
            yield app
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def register(main: click.Group) -> None:
    main.add_command(secrets)


@click.group()
def secrets() -> None:
    """Encrypted secrets that tasks use by reference (values are never shown)."""


@secrets.command("set")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
def secrets_set(ref: str, db: str | None) -> None:
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
    with opened(db) as app:
        namespace, name = parse_ref(ref)
        created = app.set_secret(namespace, name, value)
    click.echo(f"{'created' if created else 'updated'} secret {namespace}/{name}")


@secrets.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@db_option
@output_option
def secrets_list(namespace: str | None, db: str | None, output: str) -> None:
    """Names and metadata of the secrets (never their values)."""
    with opened(db) as app:
        found = app.list_secrets(namespace)
    if output == "json":
        rows = [
            {
                "namespace": m.namespace,
                "name": m.name,
                "key_id": m.key_id,
                "created_at": m.created_at,
                "updated_at": m.updated_at,
            }
            for m in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("NAMESPACE", "NAME", "KEY", "CREATED", "UPDATED"):
        table.add_column(column)
    for m in found:
        table.add_row(m.namespace, m.name, m.key_id, when(m.created_at), when(m.updated_at))
    console.print(table)


@secrets.command("delete")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
def secrets_delete(ref: str, db: str | None) -> None:
    """Delete a secret (tasks that use it then fail until it is set again)."""
    with opened(db) as app:
        namespace, name = parse_ref(ref)
        app.delete_secret(namespace, name)
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
        count = app.rotate_secrets()
        current = app.key_ring.current_id
    click.echo(f"re-encrypted {count} secret(s) under key {current}")


@secrets.command("generate-key")
@click.option("--id", "key_id", default=None, help="A key id to prefix (``id:key``).")
def secrets_generate_key(key_id: str | None) -> None:
    """Print a new random 256-bit master key for ORCHESTRION_MASTER_KEY."""
    key = generate_key_text()
    click.echo(f"{key_id}:{key}" if key_id else key)
    click.echo(f"# export {KEY_ENV}=<the line above>  (keep it out of the database)", err=True)
