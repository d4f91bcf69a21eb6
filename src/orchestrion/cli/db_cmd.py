"""``orchestrion db``: the database schema.

Every process applies missing migrations when it opens the database (under a lock, once,
however many start together), so ``db upgrade`` is for doing it on purpose, before a
rollout, and seeing what was applied.
"""

from __future__ import annotations

import json
import sys

import click

from orchestrion.app.schema import peek_applied
from orchestrion.app.settings import Settings
from orchestrion.cli.common import console, db_option, errors, opened, output_option
from orchestrion.errors import OrchestrionError

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database schema: upgrade and status."""


@db.command("upgrade")
@db_option
@output_option
def upgrade(db: str | None, output: str) -> None:
    """Apply the migrations this database lacks, and say which."""
    settings = Settings.from_env(db=db)
    try:
        before = peek_applied(settings)
    except OrchestrionError as exc:
        errors.print(f"error: {exc}", markup=False)
        sys.exit(2)
    with opened(db) as app:
        after = app.schema.applied()
    applied = [name for name in after if name not in before]
    report = {
        "database": _shown(settings.database_url),
        "applied": applied,
        "current": after[-1] if after else None,
    }
    if output == "json":
        click.echo(json.dumps(report, indent=2))
        return
    what = ", ".join(applied) if applied else "nothing to apply"
    console.print(f"{report['database']}: {what}; schema at {report['current']}", markup=False)


@db.command("status")
@db_option
@output_option
def status(db: str | None, output: str) -> None:
    """The migrations applied to the database and the ones this version knows."""
    with opened(db) as app:
        applied = app.schema.applied()
        known = app.schema.known()
    missing = [name for name in known if name not in applied]
    if output == "json":
        click.echo(json.dumps({"applied": applied, "known": known, "missing": missing}, indent=2))
        return
    for name in known:
        console.print(f"{'applied' if name in applied else 'missing'}  {name}", markup=False)


def _shown(url: str) -> str:
    """The URL without its user and password (never printed)."""
    return url.split("@", 1)[-1] if "@" in url else url
