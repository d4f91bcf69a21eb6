"""``orchestrion kinds [NAME]``: the task kinds this installation knows, and their options.

The reference of every kind, built in (``sql``) or from an installed plugin package, read
from the kinds themselves (their summary and their options model's schema): a plugin shows
here, as in ``orchestrion schema``, without a change to Orchestrion. It describes the
environment the command runs in: a worker needs the same packages to run the tasks.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, errors, output_option
from orchestrion.errors import SpecError
from orchestrion.spec.kinds import CORE_ACTIONS, TaskKind, installed_kinds

__all__ = ["kinds"]


def _fields(kind: TaskKind[Any]) -> list[dict[str, Any]]:
    """Each option of `kind`: name, JSON type, required, default, templated, description."""
    schema = kind.json_schema()
    required = set(schema.get("required", ()))
    out = []
    for name, field in schema.get("properties", {}).items():
        types = [field.get("type")] + [o.get("type") for o in field.get("anyOf", [])]
        types += [o.get("type") for o in field.get("oneOf", [])]
        out.append(
            {
                "name": name,
                "type": " | ".join(t for t in dict.fromkeys(types) if t) or "any",
                "required": name in required,
                "default": field.get("default"),
                "templated": name in kind.templated,
                "description": field.get("description", ""),
            }
        )
    return out


def _describe(name: str) -> dict[str, Any]:
    registry = installed_kinds()
    kind = registry.get(name)
    return {
        "name": kind.name,
        "origin": registry.origins.get(name, ""),
        "summary": kind.summary,
        "templated": list(kind.templated),
        "options": _fields(kind),
    }


@click.command()
@click.argument("name", required=False)
@output_option
def kinds(name: str | None, output: str) -> None:
    """List the task kinds installed here, or show one kind's options.

    \b
    orchestrion kinds
    orchestrion kinds sql
    """
    try:
        if name is not None:
            _show(_describe(name), output)
            return
        rows = [_describe(n) for n in installed_kinds().names()]
    except SpecError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None)
    for column in ("KIND", "FROM", "SUMMARY"):
        table.add_column(column)
    for row in rows:
        table.add_row(escape(row["name"]), escape(row["origin"]), escape(row["summary"]))
    console.print(table)
    console.print(f"core kinds: {', '.join(CORE_ACTIONS)} (docs/yaml.md)", markup=False)


def _show(row: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(row, indent=2))
        return
    console.print(f"{row['name']}: {row['summary']} ({row['origin']})", markup=False)
    table = Table(box=None)
    for column in ("OPTION", "TYPE", "REQUIRED", "DEFAULT", "TEMPLATED", "DESCRIPTION"):
        table.add_column(column)
    for field in row["options"]:
        table.add_row(
            escape(field["name"]),
            escape(field["type"]),
            "yes" if field["required"] else "",
            "" if field["default"] is None else escape(json.dumps(field["default"])),
            "yes" if field["templated"] else "",
            escape(field["description"]),
        )
    console.print(table)
