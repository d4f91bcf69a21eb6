"""``orchestrion notifications``: channels, rules and the deliveries of the outbox.

Channels name a secret of their namespace for what must stay secret (a webhook's HMAC key,
a Slack URL, an SMTP password): ``orchestrion secrets set`` first, then ``--secret``.
Every command works on the database (``--db``) or through a server (``--server``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.api.wire import CHANNEL, DELIVERY, RULE
from orchestrion.cli.common import (
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote_call,
    server_option,
)
from orchestrion.cli.render import as_shown, short, when
from orchestrion.errors import OrchestrionError
from orchestrion.spec.rules import parse_ref
from orchestrion.store.notification_records import CHANNEL_KINDS, NOTIFY_EVENTS

__all__ = ["notifications"]

_BASE = "/api/v1/notifications"


def _ref(ref: str) -> tuple[str, str]:
    try:
        return parse_ref(ref, "notification")
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def _table(columns: Sequence[str], rows: list[list[str]]) -> None:
    table = Table(box=None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


# What channels and rules share: each verb here or through the server, the same way.


def _put(what: str, ref: str, body: dict[str, Any], db: str | None, server: str | None,
         here: Callable[[Any, str, str], bool]) -> None:  # fmt: skip
    """Create or replace channel or rule `ref` (``here(app, namespace, name)`` without a
    server), saying which it was."""
    namespace, name = _ref(ref)
    if server:
        made = remote_call(server, "PUT", f"{_BASE}/{what}s/{namespace}/{name}", json=body)
        created = bool(made["created"])
    else:
        with opened(db) as app:
            created = here(app, namespace, name)
    click.echo(f"{'created' if created else 'updated'} {what} {namespace}/{name}")


def _remove(what: str, ref: str, db: str | None, server: str | None,
            here: Callable[[Any, str, str], None]) -> None:  # fmt: skip
    namespace, name = _ref(ref)
    if server:
        remote_call(server, "DELETE", f"{_BASE}/{what}s/{namespace}/{name}")
    else:
        with opened(db) as app:
            here(app, namespace, name)
    click.echo(f"removed {what} {namespace}/{name}")


def _rows(what: str, query: dict[str, Any], db: str | None, server: str | None,
          here: Callable[[Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of a listing, as the API shows them, here or through the server."""
    if server:
        found: list[dict[str, Any]] = remote_call(
            server, "GET", f"{_BASE}/{what}", params={k: v for k, v in query.items() if v}
        )
        return found
    with opened(db) as app:
        return here(app)


def _show(rows: list[dict[str, Any]], output: str, columns: Sequence[str],
          cells: Callable[[dict[str, Any]], list[str]]) -> None:  # fmt: skip
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    _table(columns, [cells(r) for r in rows])


@click.group()
def notifications() -> None:
    """Notifications: channels (webhook, Slack, email), rules (which workflows, which
    events) and the deliveries sent or waiting."""


@notifications.group("channels")
def channels() -> None:
    """Where messages go."""


@notifications.group("rules")
def rules() -> None:
    """Which workflows, on which events, notify which channel."""


@notifications.group("deliveries")
def deliveries() -> None:
    """The outbox: each message, its state and attempts."""


@channels.command("add")
@click.argument("ref", metavar="NAMESPACE/NAME")
@click.option("--kind", type=click.Choice(CHANNEL_KINDS), required=True)
@click.option("--url", default=None, help="webhook: where to POST.")
@click.option(
    "--secret", default=None, help="A secret of the namespace: HMAC key, Slack URL or password."
)
@click.option("--host", default=None, help="smtp: the server.")
@click.option("--port", type=int, default=None, help="smtp: its port (25).")
@click.option("--username", default=None, help="smtp: the user to log in as.")
@click.option("--sender", default=None, help="smtp: the From address.")
@click.option("--to", "to", multiple=True, help="smtp: a recipient (repeat for more).")
@click.option("--starttls", is_flag=True, help="smtp: upgrade the connection with STARTTLS.")
@db_option
@server_option
def channels_add(ref: str, kind: str, url: str | None, secret: str | None, host: str | None,
                 port: int | None, username: str | None, sender: str | None,
                 to: tuple[str, ...], starttls: bool, db: str | None,
                 server: str | None) -> None:  # fmt: skip
    """Create or replace a channel.

    \b
    orchestrion notifications channels add ops/hook --kind webhook \\
        --url https://hooks.example/orchestrion --secret hook-key
    printf %s "$SLACK_URL" | orchestrion secrets set ops/slack-url
    orchestrion notifications channels add ops/slack --kind slack --secret slack-url
    orchestrion notifications channels add ops/mail --kind smtp --host smtp.example \\
        --port 587 --starttls --username bot --secret smtp-pass \\
        --sender orchestrion@example.com --to oncall@example.com
    """
    options = {"url": url, "host": host, "port": port, "username": username,
               "sender": sender, "to": list(to) or None, "starttls": starttls or None}  # fmt: skip
    config = {k: v for k, v in options.items() if v is not None}
    body: dict[str, Any] = {"kind": kind, "config": config, "secret": secret}
    _put(
        "channel",
        ref,
        body,
        db,
        server,
        lambda app, ns, name: app.notifications.put_channel(ns, name, **body),
    )


@channels.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@db_option
@server_option
@output_option
def channels_list(namespace: str | None, db: str | None, server: str | None, output: str) -> None:
    """The channels (their secrets by name only)."""
    rows = _rows(
        "channels",
        {"namespace": namespace},
        db,
        server,
        lambda app: [as_shown(CHANNEL)(c) for c in app.notifications.list_channels(namespace)],
    )
    _show(
        rows, output, ("NAMESPACE", "NAME", "KIND", "CONFIG", "SECRET", "UPDATED"),
        lambda r: [r["namespace"], r["name"], r["kind"], short(json.dumps(r["config"])),
                   r["secret"] or "-", when(r["updated_at"])],
    )  # fmt: skip


@channels.command("remove")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
@server_option
def channels_remove(ref: str, db: str | None, server: str | None) -> None:
    """Delete a channel (deliveries to it fail until it exists again)."""
    _remove(
        "channel", ref, db, server, lambda app, ns, name: app.notifications.delete_channel(ns, name)
    )


@channels.command("test")
@click.argument("ref", metavar="NAMESPACE/NAME")
@click.option("--text", default="", help="The message (a default names the channel).")
@db_option
@server_option
def channels_test(ref: str, text: str, db: str | None, server: str | None) -> None:
    """Send one message through a channel now, from here or from the server."""
    namespace, name = _ref(ref)
    if server:
        path = f"{_BASE}/channels/{namespace}/{name}/test"
        remote_call(server, "POST", path, json={"text": text})
    else:
        with opened(db) as app:
            app.notifications.test_channel(namespace, name, text)
    click.echo(f"sent a test message through {namespace}/{name}")


@rules.command("add")
@click.argument("ref", metavar="NAMESPACE/NAME")
@click.option("--channel", required=True, help="A channel of the same namespace.")
@click.option("--on", "events", multiple=True, required=True, type=click.Choice(NOTIFY_EVENTS),
              help="An event (repeat for more).")  # fmt: skip
@click.option("--workflows", default="*", help="A glob over workflow names (default: all).")
@click.option("--tag", "tags", multiple=True, help="A tag the workflow must carry (repeat).")
@click.option("--template", default=None, help="The message: a {{ expression }} template.")
@db_option
@server_option
def rules_add(ref: str, channel: str, events: tuple[str, ...], workflows: str,
              tags: tuple[str, ...], template: str | None, db: str | None,
              server: str | None) -> None:  # fmt: skip
    """Create or replace a rule.

    \b
    orchestrion notifications rules add ops/failures --channel mail \\
        --on run.failed --on run.late --workflows 'etl-*' --tag nightly \\
        --template '{{ workflow }} {{ event }}: {{ error }}'
    """
    body: dict[str, Any] = {"channel": channel, "events": list(events), "workflows": workflows,
                            "tags": list(tags), "template": template}  # fmt: skip
    _put(
        "rule",
        ref,
        body,
        db,
        server,
        lambda app, ns, name: app.notifications.put_rule(ns, name, **body),
    )


@rules.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@db_option
@server_option
@output_option
def rules_list(namespace: str | None, db: str | None, server: str | None, output: str) -> None:
    """The rules."""
    rows = _rows(
        "rules",
        {"namespace": namespace},
        db,
        server,
        lambda app: [as_shown(RULE)(r) for r in app.notifications.list_rules(namespace)],
    )
    _show(
        rows, output, ("NAMESPACE", "NAME", "CHANNEL", "WORKFLOWS", "TAGS", "EVENTS"),
        lambda r: [r["namespace"], r["name"], r["channel"], r["workflows"],
                   ",".join(r["tags"]) or "-", ",".join(r["events"])],
    )  # fmt: skip


@rules.command("remove")
@click.argument("ref", metavar="NAMESPACE/NAME")
@db_option
@server_option
def rules_remove(ref: str, db: str | None, server: str | None) -> None:
    """Delete a rule."""
    _remove("rule", ref, db, server, lambda app, ns, name: app.notifications.delete_rule(ns, name))


@deliveries.command("list")
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@click.option("--state", type=click.Choice(("pending", "sent", "failed")), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@db_option
@server_option
@output_option
def deliveries_list(namespace: str | None, state: str | None, limit: int, db: str | None,
                    server: str | None, output: str) -> None:  # fmt: skip
    """The newest deliveries, with their state, attempts and last error."""
    query = {"limit": limit, "namespace": namespace, "state": state}
    rows = _rows(
        "deliveries",
        query,
        db,
        server,
        lambda app: [
            as_shown(DELIVERY)(d)
            for d in app.notifications.list_deliveries(namespace, state=state, limit=limit)
        ],
    )
    _show(
        rows, output,
        ("ID", "STATE", "ATTEMPTS", "EVENT", "WORKFLOW", "RUN", "CHANNEL", "CREATED", "ERROR"),
        lambda r: [str(r["id"]), r["state"], str(r["attempts"]), r["event"], r["workflow"] or "-",
                   r["run_id"] or "-", f"{r['namespace']}/{r['channel']}", when(r["created_at"]),
                   short(r["last_error"] or "")],
    )  # fmt: skip
