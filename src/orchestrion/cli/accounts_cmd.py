"""``orchestrion users``, ``tokens`` and ``audit``: accounts from the command line.

Without ``--server`` they work on the database directly (whoever can open the database file
is its administrator already) and write an audit record as ``cli:<OS user>``. With
``--server`` they go through the API under the caller's token, where the server's rules
decide and the server writes the audit record.

Passwords are read from a prompt or stdin, never from an argument (arguments are visible
to every user of the machine in the process list).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.auth.principals import ALL_NAMESPACES
from orchestrion.auth.tokens import parse_expiry
from orchestrion.cli.common import (
    cli_actor,
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote_call,
    server_option,
)
from orchestrion.store.records import AuditFilter

if TYPE_CHECKING:
    from orchestrion.app.accounts import Accounts

__all__ = ["audit", "tokens", "users"]


def _cli_actor() -> str:
    return cli_actor().name


@contextmanager
def _local(db: str | None, action: str, obj: str, params: dict[str, Any]) -> Iterator[Accounts]:
    """The accounts of the local database; one audit record for the command, ok or not."""
    with opened(db) as app, app.audited(action, obj, params=params):
        yield app.accounts


def _bindings(roles: tuple[str, ...], namespaces: tuple[str, ...]) -> dict[str, str]:
    """``--role operator --namespace finance`` (repeatable, paired in order); a single
    role applies to every namespace given; no namespace means ``default``."""
    if not roles:
        raise click.UsageError("give at least one --role")
    spaces = namespaces or ("default",)
    if len(roles) == 1:
        return dict.fromkeys(spaces, roles[0])
    if len(roles) != len(spaces):
        raise click.UsageError("give one --role per --namespace, or a single --role")
    return dict(zip(spaces, roles, strict=True))


def _read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return str(password)


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print(rows: list[dict[str, Any]], columns: list[str], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*(escape(_cell(row.get(c))) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{v} on {'*' if k == ALL_NAMESPACES else k}" for k, v in value.items())
    if isinstance(value, float):
        return _when(value)
    return "—" if value is None else str(value)


# --------------------------------------------------------------------------------- users

role_option = click.option(
    "--role", "roles", multiple=True, help="viewer, operator, editor or admin (repeatable)."
)
namespace_option = click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace the role is bound on ('*' for all; repeatable; default 'default').",
)


@click.group()
def users() -> None:
    """Create and change users (UI sign-in)."""


@users.command("create")
@click.argument("name")
@role_option
@namespace_option
@db_option
@server_option
def users_create(
    name: str,
    roles: tuple[str, ...],
    namespaces: tuple[str, ...],
    db: str | None,
    server: str | None,
) -> None:
    """Create a user; the password is read from a prompt (or stdin)."""
    bindings = _bindings(roles, namespaces)
    password = _read_password()
    if server:
        remote_call(server, "POST", "/api/v1/users", json={"name": name, "password": password,
                                                        "bindings": bindings})  # fmt: skip
    else:
        params = {"name": name, "bindings": bindings}
        with _local(db, "user.create", f"user {name}", params) as accounts:
            accounts.create_user(name, password, bindings)
    console.print(f"user {name} created", markup=False)


@users.command("list")
@db_option
@server_option
@output_option
def users_list(db: str | None, server: str | None, output: str) -> None:
    """Users with their roles."""
    if server:
        rows = remote_call(server, "GET", "/api/v1/users")
    else:
        with opened(db) as app:
            rows = [
                {
                    "name": u.name,
                    "bindings": dict(u.bindings),
                    "disabled": u.disabled,
                    "created_at": u.created_at,
                }
                for u in app.accounts.list_users()
            ]
    _print(rows, ["name", "bindings", "disabled", "created_at"], output)


@users.command("set-password")
@click.argument("name")
@db_option
@server_option
def users_set_password(name: str, db: str | None, server: str | None) -> None:
    """Set a new password (read from a prompt or stdin); ends the user's sessions."""
    password = _read_password()
    if server:
        remote_call(server, "PATCH", f"/api/v1/users/{name}", json={"password": password})
    else:
        with _local(db, "user.change", f"user {name}", {"password": "***"}) as accounts:
            accounts.set_password(name, password)
    console.print(f"password of {name} changed; their sessions ended", markup=False)


@users.command("set-roles")
@click.argument("name")
@role_option
@namespace_option
@db_option
@server_option
def users_set_roles(
    name: str,
    roles: tuple[str, ...],
    namespaces: tuple[str, ...],
    db: str | None,
    server: str | None,
) -> None:
    """Replace a user's role bindings; ends the user's sessions."""
    bindings = _bindings(roles, namespaces)
    if server:
        remote_call(server, "PATCH", f"/api/v1/users/{name}", json={"bindings": bindings})
    else:
        with _local(db, "user.change", f"user {name}", {"bindings": bindings}) as accounts:
            accounts.set_roles(name, bindings)
    console.print(f"roles of {name} changed; their sessions ended", markup=False)


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@db_option
@server_option
def users_disable(name: str, enable: bool, db: str | None, server: str | None) -> None:
    """Disable (or --enable) a user; a disabled user cannot sign in."""
    if server:
        remote_call(server, "PATCH", f"/api/v1/users/{name}", json={"disabled": not enable})
    else:
        with _local(db, "user.change", f"user {name}", {"disabled": not enable}) as accounts:
            accounts.set_disabled(name, not enable)
    console.print(f"user {name} {'enabled' if enable else 'disabled'}", markup=False)


# -------------------------------------------------------------------------------- tokens


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens."""


@tokens.command("create")
@click.argument("name")
@role_option
@namespace_option
@click.option("--expires", default="90d", show_default=True, help="e.g. 30d, 12h, 1y, never.")
@db_option
@server_option
def tokens_create(
    name: str,
    roles: tuple[str, ...],
    namespaces: tuple[str, ...],
    expires: str,
    db: str | None,
    server: str | None,
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    bindings = _bindings(roles, namespaces)
    try:
        parse_expiry(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    if server:
        made = remote_call(server, "POST", "/api/v1/tokens",
                       json={"name": name, "bindings": bindings, "expires": expires})  # fmt: skip
        plaintext, token_id = str(made["token"]), str(made["id"])
    else:
        params = {"name": name, "bindings": bindings, "expires": expires}
        with _local(db, "token.create", f"token {name}", params) as accounts:
            plaintext, record = accounts.create_token(
                name, bindings, expires=expires, created_by=_cli_actor()
            )
            token_id = record.id
    errors.print(f"token {token_id} created; it is shown once:", markup=False)
    click.echo(plaintext)


@tokens.command("list")
@db_option
@server_option
@output_option
def tokens_list(db: str | None, server: str | None, output: str) -> None:
    """Tokens (never their secrets)."""
    if server:
        rows = remote_call(server, "GET", "/api/v1/tokens")
    else:
        with opened(db) as app:
            rows = [
                {
                    "id": t.id,
                    "name": t.name,
                    "bindings": dict(t.bindings),
                    "created_by": t.created_by,
                    "expires_at": t.expires_at,
                    "revoked_at": t.revoked_at,
                }
                for t in app.accounts.list_tokens()
            ]
    _print(rows, ["id", "name", "bindings", "created_by", "expires_at", "revoked_at"], output)


@tokens.command("revoke")
@click.argument("token_id")
@db_option
@server_option
def tokens_revoke(token_id: str, db: str | None, server: str | None) -> None:
    """Revoke a token: the next request with it is refused."""
    if server:
        remote_call(server, "POST", f"/api/v1/tokens/{token_id}/revoke")
    else:
        with _local(db, "token.revoke", f"token {token_id}", {"id": token_id}) as accounts:
            accounts.revoke_token(token_id)
    console.print(f"token {token_id} revoked", markup=False)


# --------------------------------------------------------------------------------- audit


@click.group()
def audit() -> None:
    """Read the audit log."""


@audit.command("list")
@click.option("--actor", default=None)
@click.option("--action", default=None)
@click.option("--namespace", default=None)
@click.option("--outcome", type=click.Choice(["ok", "denied", "failed", "error"]), default=None)
@click.option("--since", default=None, help="How far back, e.g. 1d, 12h, 30m.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@db_option
@server_option
@output_option
def audit_list(
    actor: str | None,
    action: str | None,
    namespace: str | None,
    outcome: str | None,
    since: str | None,
    limit: int,
    db: str | None,
    server: str | None,
    output: str,
) -> None:
    """Audit records, newest first."""
    import time

    since_at = None
    if since:
        try:
            seconds = parse_expiry(since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
        since_at = time.time() - (seconds or 0)
    if server:
        query = {"actor": actor, "action": action, "namespace": namespace, "outcome": outcome,
                 "since": since_at, "limit": limit}  # fmt: skip
        params = {k: v for k, v in query.items() if v is not None}
        rows = remote_call(server, "GET", "/api/v1/audit", params=params)["items"]
    else:
        with opened(db) as app:
            filt = AuditFilter(actor=actor, action=action, namespace=namespace, outcome=outcome,
                               since=since_at, limit=limit)  # fmt: skip
            rows = [
                {
                    "id": r.id,
                    "at": r.at,
                    "actor": r.actor,
                    "action": r.action,
                    "object": r.object,
                    "outcome": r.outcome,
                    "params": dict(r.params),
                    "source": r.source,
                    "request_id": r.request_id,
                }
                for r in app.accounts.list_audit(filt)
            ]
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table("id", "at", "actor", "action", "object", "outcome", box=None, pad_edge=False)
    for r in rows:
        table.add_row(
            str(r["id"]),
            _when(r["at"]),
            escape(str(r["actor"])),
            escape(str(r["action"])),
            escape(str(r["object"])),
            escape(str(r["outcome"])),
        )
    console.print(table)
