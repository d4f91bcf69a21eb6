"""``orchestrion connections``: create, list, show and delete broker and database
connections.

A connection never holds a credential: ``--password-secret`` names a secret of the same
namespace (``orchestrion secrets set``), and a URL with a password in it is refused.
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
from orchestrion.errors import OrchestrionError
from orchestrion.spec.rules import CONNECTION_KINDS, parse_ref
from orchestrion.store.records import ConnectionRecord

__all__ = ["connections"]

_KINDS = CONNECTION_KINDS


def _ref(ref: str) -> tuple[str, str]:
    try:
        return parse_ref(ref, "connection")
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def _row(c: ConnectionRecord) -> dict[str, Any]:
    return {
        "namespace": c.namespace,
        "name": c.name,
        "kind": c.kind,
        "url": c.url,
        "username": c.username,
        "password_secret": c.password_secret,
        "tls": dict(c.tls),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


@click.group()
def connections() -> None:
    """Named connections: brokers (Redis, RabbitMQ, NATS, MQTT) for publish tasks and broker
    triggers, databases (PostgreSQL, MariaDB/MySQL, SQLite) for sql tasks; credentials stay
    in secrets."""


@connections.command("create")
@click.argument("ref", metavar="NAMESPACE/NAME")
@click.option("--kind", type=click.Choice(_KINDS), required=True, help="The broker or database.")
@click.option("--url", required=True, help="Where it is, without a password.")
@click.option("--username", default=None, help="The user to log in as.")
@click.option(
    "--password-secret", default=None, help="A secret of the namespace holding the password."
)
@click.option("--tls", "tls_on", is_flag=True, help="Use TLS (also implied by rediss://, ...).")
@click.option("--tls-ca", default=None, help="A CA bundle file on the connecting host.")
@click.option("--tls-cert", default=None, help="A client certificate file.")
@click.option("--tls-key", default=None, help="The client certificate's key file.")
@click.option("--tls-insecure", is_flag=True, help="Do not verify the broker's certificate.")
@db_option
@server_option
def connections_create(
    ref: str,
    kind: str,
    url: str,
    username: str | None,
    password_secret: str | None,
    tls_on: bool,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_insecure: bool,
    db: str | None,
    server: str | None,
) -> None:
    """Create or replace a connection.

    \b
    printf %s "$PW" | orchestrion secrets set shop/mq-password
    orchestrion connections create shop/orders-mq --kind rabbitmq \\
        --url amqp://mq.internal:5672/ --username orders --password-secret mq-password
    """
    tls: dict[str, Any] = {
        key: value
        for key, value in {
            "enabled": tls_on or None,
            "ca_file": tls_ca,
            "cert_file": tls_cert,
            "key_file": tls_key,
            "insecure": tls_insecure or None,
        }.items()
        if value is not None
    }
    body: dict[str, Any] = {
        "kind": kind,
        "url": url,
        "username": username,
        "password_secret": password_secret,
        "tls": tls,
    }
    namespace, name = _ref(ref)
    if server:
        made = remote_call(server, "PUT", f"/api/v1/connections/{namespace}/{name}", json=body)
        created = bool(made["created"])
    else:
        with opened(db) as app:
            created = app.connections.put_connection(namespace, name, **body)
    click.echo(f"{'created' if created else 'updated'} connection {namespace}/{name}")


@connections.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@db_option
@server_option
@output_option
def connections_list(
    namespace: str | None, db: str | None, server: str | None, output: str
) -> None:
    """The connections (never a credential: they hold none)."""
    if server:
        query = {"namespace": namespace} if namespace else None
        rows: list[dict[str, Any]] = remote_call(server, "GET", "/api/v1/connections", params=query)
    else:
        with opened(db) as app:
            rows = [_row(c) for c in app.connections.list_connections(namespace)]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("NAMESPACE", "NAME", "KIND", "URL", "USER", "PASSWORD SECRET", "UPDATED"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["namespace"]),
            escape(r["name"]),
            r["kind"],
            escape(r["url"]),
            escape(r["username"] or "-"),
            escape(r["password_secret"] or "-"),
            when(r["updated_at"]),
        )
    console.print(table)


@connections.command("show")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
@server_option
def connections_show(ref: str, db: str | None, server: str | None) -> None:
    """One connection, as JSON."""
    namespace, name = _ref(ref)
    if server:
        row = remote_call(server, "GET", f"/api/v1/connections/{namespace}/{name}")
    else:
        with opened(db) as app:
            row = _row(app.connections.get_connection(namespace, name))
    click.echo(json.dumps(row, indent=2))


@connections.command("delete")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
@server_option
def connections_delete(ref: str, db: str | None, server: str | None) -> None:
    """Delete a connection (tasks and triggers naming it fail until it exists again)."""
    namespace, name = _ref(ref)
    if server:
        remote_call(server, "DELETE", f"/api/v1/connections/{namespace}/{name}")
    else:
        with opened(db) as app:
            app.connections.delete_connection(namespace, name)
    click.echo(f"deleted connection {namespace}/{name}")
