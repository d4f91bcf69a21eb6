"""``orchestrion templates``: task template libraries (docs/templates.md).

``list`` and ``show`` read the libraries on the local search path (``--templates``,
``ORCHESTRION_TEMPLATE_PATH``, ``./templates``) and those pushed to the local database, or
a server's with ``--server``; ``push`` stores a library file in the database or on the
server, where YAML workflows it loads can use it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.errors import NotFound, SpecError

if TYPE_CHECKING:  # the library's model brings pydantic, which `list --server` needs not
    from orchestrion.spec.templates.library import TemplateLibrary

__all__ = ["templates"]


@click.group()
def templates() -> None:
    """Task template libraries: list, show, push."""


def _info(lib: TemplateLibrary, where: str) -> dict[str, Any]:
    """A library as the API lists it, plus where it was found."""
    return {**lib.summary(), "source": where}


def _local(db: str | None) -> list[dict[str, Any]]:
    from orchestrion.app.templates import parsed
    from orchestrion.spec.yaml.libraries import ENV_VAR, DirectorySource

    folders = [d for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    rows: list[dict[str, Any]] = []
    for folder in [*folders, str(Path.cwd() / "templates")]:
        rows += [_info(lib, lib.source) for lib in DirectorySource(folder).all()]
    with opened(db) as app:
        rows += [_info(parsed(row), "database") for row in app.templates.list_libraries()]
    return rows


@templates.command("list")
@db_option
@server_option
@output_option
def list_libraries(db: str | None, server: str | None, output: str) -> None:
    """The libraries: each version with its templates and their params."""
    try:
        if server is not None:
            with remote(server) as api:
                rows = [{**row, "source": "server"} for row in api.client.list_templates()]
        else:
            rows = _local(db)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("LIBRARY", "VERSION", "TEMPLATE", "PARAMS", "SOURCE"):
        table.add_column(column)
    for lib in rows:
        for item in lib["templates"]:
            params = ", ".join(
                f"{name}: {p.get('type', 'string')}" + ("" if "default" in p else "*")
                for name, p in item["params"].items()
            )
            table.add_row(
                escape(lib["name"]),
                str(lib["version"]),
                escape(item["name"]),
                escape(params),
                escape(str(lib["source"])),
            )
    console.print(table)
    console.print("[dim]* required[/]")


@templates.command("show")
@click.argument("ref", metavar="LIBRARY@VERSION")
@db_option
@server_option
def show(ref: str, db: str | None, server: str | None) -> None:
    """Print one library version as its file holds it (LIBRARY@VERSION, like lib@2)."""
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_-]*)@([1-9][0-9]{0,8})", ref)
    if match is None:
        raise click.BadParameter("write LIBRARY@VERSION, like lib@2", param_hint="REF")
    name, version = match.group(1), int(match.group(2))
    if server is not None:
        with remote(server) as api:
            data = api.client.get_template_library(name, version)["library"]
    else:
        data = _find_local(name, version, db)
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


def _find_local(name: str, version: int, db: str | None) -> dict[str, Any]:
    from orchestrion.spec.yaml.libraries import default_source

    try:
        found = default_source(None, [Path.cwd() / "templates"]).library(name, version)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    if found is not None:
        return found.to_data()
    with opened(db) as app:
        try:
            return app.templates.library(name, version).to_data()
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None


@templates.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@server_option
def push(file: str, db: str | None, server: str | None) -> None:
    """Store a library file (checked first) in the database, or on a server."""
    from orchestrion.spec.yaml.libraries import load_library_file

    try:
        lib = load_library_file(file)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    if server is not None:
        with remote(server) as api:
            outcome = api.client.push_templates(lib.to_data())["outcome"]
    else:
        with opened(db) as app:
            outcome = app.templates.push(lib)
    click.echo(f"{outcome} library {lib.name}@{lib.version} ({lib.digest})")
