"""What every ``orchestrion`` command shares: consoles, common options, opening the App
or the server's API, and turning errors into a message and exit code 2.

Kept apart from `orchestrion.cli.main` so that command modules can import it while
``main`` imports them (``python -m orchestrion.cli.main`` would otherwise load it twice).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from orchestrion.errors import NotFound, OrchestrionError

if TYPE_CHECKING:
    from orchestrion.app import Actor, App
    from orchestrion.cli.remote import Remote
    from orchestrion.store.records import (
        AttemptRecord,
        LogRecord,
        RunFilter,
        RunRecord,
        TaskRunRecord,
    )

__all__ = [
    "RunReader",
    "api_request",
    "cli_actor",
    "console",
    "db_option",
    "errors",
    "opened",
    "output_option",
    "reader",
    "remote",
    "remote_call",
    "server_option",
]

F = TypeVar("F", bound=Callable[..., Any])

# Piped output is not squeezed to 80 columns: ids and times must stay whole for scripts.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
# soft_wrap: an error naming a long file path stays on one line (greppable, clickable)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def db_option(fn: F) -> F:
    """The ``--db`` option (also ``ORCHESTRION_DATABASE_URL``), the same on every command that opens
    the database."""
    return click.option(
        "--db",
        "db",
        envvar="ORCHESTRION_DATABASE_URL",
        default=None,
        help="Database URL or SQLite file (default ./.orchestrion/orchestrion.db).",
    )(fn)


def output_option(fn: F) -> F:
    """The ``--output table|json`` option: tables for people, JSON for scripts."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        help="table for people, json for scripts.",
    )(fn)


@contextmanager
def opened(db: str | None) -> Iterator[App]:
    """An open App, with Orchestrion errors turned into a clear message and exit code 2."""
    # Imported here: a command that talks to a server (--server) never opens an App, and
    # the App brings the spec, the store and the worker (issue 20).
    from orchestrion.app import App
    from orchestrion.app.settings import Settings

    try:
        with App(Settings.from_env(db=db), actor=cli_actor()) as app:
            yield app
    except NotFound as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", markup=True)
        sys.exit(2)


def server_option(fn: F) -> F:
    """The ``--server`` option (also ``ORCHESTRION_SERVER``): talk to a server's API rather than
    open the database here."""
    return click.option(
        "--server",
        envvar="ORCHESTRION_SERVER",
        default=None,
        help="Talk to this server's API (e.g. http://127.0.0.1:8642) instead of the local DB.",
    )(fn)


class RunReader(Protocol):
    """The run verbs a command may call on the local database (`App.runs`) or on a server
    (`Remote`): typing both as this keeps `Remote` a faithful twin of `App.runs`."""

    def get_run(self, run_id: str) -> RunRecord:
        """One run, or `NotFound`."""
        ...

    def list_runs(self, filt: RunFilter | None = None) -> list[RunRecord]:
        """Runs newest first, filtered."""
        ...

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """Every task run of a run."""
        ...

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of a run's task runs."""
        ...

    def logs(self, run_id: str, task: str | None = None, after_id: int = 0) -> list[LogRecord]:
        """Captured output lines after the line id `after_id` (of one task, when given)."""
        ...

    def cancel_or_raise(self, run_id: str) -> None:
        """Cancel a run; `IllegalTransition` when it already finished."""
        ...

    def retry_or_raise(self, run_id: str) -> None:
        """Re-open a failed or canceled run; `IllegalTransition` when it cannot be."""
        ...


@contextmanager
def reader(db: str | None, server: str | None) -> Iterator[RunReader]:
    """The server's API when one is configured, else the local database; same methods."""
    if server is None:
        with opened(db) as app:
            yield app.runs
        return
    with remote(server) as api:
        yield api


@contextmanager
def remote(server: str) -> Iterator[Remote]:
    """The server's API, with Orchestrion errors turned into a message and exit code 2."""
    from orchestrion.cli.remote import Remote

    try:
        with Remote(server) as api:
            yield api
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", markup=True)
        sys.exit(2)


def cli_actor() -> Actor:
    """Who a local command acts as in the audit log: ``cli:<OS user>``, or what the server
    that started it says (``ORCHESTRION_ACTOR``, e.g. its deploy child)."""
    from orchestrion.app import Actor

    given = os.environ.get("ORCHESTRION_ACTOR", "").strip()
    if given:
        return Actor(given[:64], "system")
    try:
        return Actor(f"cli:{getpass.getuser()}")
    except (KeyError, OSError):  # no user name (some containers)
        return Actor("cli:unknown")


def remote_call(server: str, method: str, path: str, **kw: Any) -> Any:
    """One call to the server's API under the caller's token; an error is one line on
    stderr and exit code 2."""
    from orchestrion.cli.remote import Remote

    try:
        with Remote(server) as remote:
            return remote.call(method, path, **kw)
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def api_request(server: str, method: str, path: str, body: Any = None) -> Any:
    """One call to the server's API under the caller's token, its JSON answer; errors
    (unreachable, or an error status) as an `OrchestrionError` naming them."""
    from orchestrion.cli.remote import Remote

    with Remote(server) as api:
        return api.client.request(method, path, json=body)
