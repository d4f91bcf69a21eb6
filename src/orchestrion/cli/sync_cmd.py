"""``orchestrion sync``: apply a Git repository's project file (one pass), and manage the
sources the scheduler's ``sync`` duty follows (``sync add|list|remove|status``)."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.cli.render import when
from orchestrion.store.record import as_dict

__all__ = ["sync"]


@click.group(invoke_without_command=True)
@click.option("--repo", default=None, help="Repository URL or path (one pass, no source kept).")
@click.option("--branch", default=None)
@click.option("--tag", default=None)
@click.option("--project", "project_path", default=None, help="The project file in the repository.")
@click.option("--secret", default=None, help="namespace/name of a secret: HTTPS token or SSH key.")
@click.option(
    "--name", default="cli", show_default=True, help="The source name results are kept under."
)
@db_option
@click.pass_context
def sync(
    ctx: click.Context,
    repo: str | None,
    branch: str | None,
    tag: str | None,
    project_path: str | None,
    secret: str | None,
    name: str,
    db: str | None,
) -> None:
    """Apply the project file of a repository's branch or tag, once (with --repo), or
    manage the sources the scheduler follows (subcommands)."""
    if ctx.invoked_subcommand is not None:
        return
    if repo is None or project_path is None:
        raise click.UsageError("give --repo, --branch or --tag, and --project (or a subcommand)")
    from orchestrion.app.projects.sync import sync_once
    from orchestrion.app.projects.sync_source import checked_source

    with opened(db) as app:
        source = checked_source(name, repo, branch, tag, project_path, secret)
        result = sync_once(app, source, force=True)
    assert result is not None
    click.echo(f"{result.commit_sha[:12]} {result.outcome}")
    if result.error:
        click.echo(f"error: {result.error}", err=True)
        sys.exit(1)
    s = result.summary
    click.echo(
        f"{s.get('create', 0)} created, {s.get('update', 0)} updated, {s.get('delete', 0)} deleted"
    )


@sync.command("run")
@click.argument("name", required=False)
@db_option
def run(name: str | None, db: str | None) -> None:
    """Look at every configured source (or NAME) once now, as the scheduler's duty does:
    a new commit is applied (or recorded as failed); a commit seen before is skipped."""
    from orchestrion.app.projects.sync import sync_once

    with opened(db) as app:
        chosen = [app.projects.source(name)] if name else app.projects.sources()
        for source in chosen:
            result = sync_once(app, source)
            if result is None:
                click.echo(f"{source.name}: no new commit")
                continue
            s = result.summary
            text = f"{source.name}: {result.commit_sha[:12]} {result.outcome}"
            if result.error:
                text += f": {result.error}"
            else:
                text += f" (+{s.get('create', 0)} ~{s.get('update', 0)} -{s.get('delete', 0)})"
            click.echo(text)


@sync.command("add")
@click.argument("name")
@click.option("--repo", required=True)
@click.option("--branch", default=None)
@click.option("--tag", default=None)
@click.option("--project", "project_path", required=True)
@click.option("--secret", default=None, help="namespace/name of a secret: HTTPS token or SSH key.")
@db_option
@server_option
def add(
    name: str,
    repo: str,
    branch: str | None,
    tag: str | None,
    project_path: str,
    secret: str | None,
    db: str | None,
    server: str | None,
) -> None:
    """Follow a repository's branch or tag: the scheduler applies each new commit."""
    if server is not None:
        body = {
            "repo": repo,
            "branch": branch,
            "tag": tag,
            "project": project_path,
            "secret": secret,
        }
        with remote(server) as api:
            api.call("PUT", f"/api/v1/sync/sources/{quote(name, safe='')}", json=body)
    else:
        with opened(db) as app:
            app.projects.put_source(
                name, repo=repo, branch=branch, tag=tag, project_path=project_path, secret=secret
            )
    click.echo(f"sync source {name}: {repo} {branch or tag} {project_path}")


@sync.command("list")
@db_option
@server_option
@output_option
def list_sources(db: str | None, server: str | None, output: str) -> None:
    """The sources the scheduler follows."""
    rows: list[dict[str, Any]]
    if server is not None:
        with remote(server) as api:
            rows = list(api.call("GET", "/api/v1/sync/sources"))
    else:
        with opened(db) as app:
            rows = [as_dict(s) for s in app.projects.sources()]
    if output == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table("name", "repo", "ref", "project", "secret")
    for r in rows:
        table.add_row(
            escape(r["name"]),
            escape(r["repo"]),
            escape(f"{r['ref_kind']} {r['ref']}"),
            escape(r["project_path"]),
            escape(r["secret"] or "-"),
        )
    console.print(table)


@sync.command("remove")
@click.argument("name")
@db_option
@server_option
def remove(name: str, db: str | None, server: str | None) -> None:
    """Stop following a source (its results stay)."""
    if server is not None:
        with remote(server) as api:
            api.call("DELETE", f"/api/v1/sync/sources/{quote(name, safe='')}")
    else:
        with opened(db) as app:
            app.projects.delete_source(name)
    click.echo(f"sync source {name}: removed")


@sync.command("status")
@click.option("--source", default=None)
@db_option
@server_option
@output_option
def status(source: str | None, db: str | None, server: str | None, output: str) -> None:
    """What each look at a source found: the commit, applied or failed, and why."""
    if server is not None:
        with remote(server) as api:
            params = {"source": source} if source else None
            rows = list(api.call("GET", "/api/v1/sync/status", params=params))
    else:
        with opened(db) as app:
            rows = [as_dict(r) for r in app.projects.sync_results(source)]
    if output == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table("source", "commit", "outcome", "error", "at")
    for r in rows:
        table.add_row(
            escape(r["source"]),
            r["commit_sha"][:12],
            escape(r["outcome"]),
            escape((r["error"] or "")[:200]),
            when(r["created_at"]),
        )
    console.print(table)
