"""Commands for the service: `server`, `worker`, `scheduler`, `deploy`.

`deploy` registers through a server's API when one is configured (``--server`` or
``ORCHESTRION_SERVER``); otherwise it writes to the local database.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from rich.console import Console
from rich.markup import escape

from orchestrion.app import App
from orchestrion.app.runtime import DEFAULT_CONCURRENCY
from orchestrion.app.settings import Settings, trusted_proxies
from orchestrion.cli.common import cli_actor
from orchestrion.errors import OrchestrionError, PolicyDenied, SpecError
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.loading import LoadedWorkflow
from orchestrion.spec.model import LABEL_PATTERN, MAX_LABELS, WorkflowSpec
from orchestrion.spec.templates.search import LibrarySource
from orchestrion.store.policy_records import Finding

__all__ = ["deploy", "scheduler", "server", "worker"]

# Piped output is not squeezed to 80 columns: ids and times must stay whole for scripts.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, highlight=False)


F = TypeVar("F", bound=Callable[..., Any])


def log_options(fn: F) -> F:
    """--log-format/--log-level for long-running processes; configures logging, then calls."""

    @functools.wraps(fn)
    def wrapper(*args: Any, log_format: str, log_level: str, **kwargs: Any) -> Any:
        from orchestrion.telemetry.logging import configure_logging

        configure_logging("json" if log_format == "json" else "text", log_level)
        # Child processes (the server's workers) inherit the choice.
        os.environ["ORCHESTRION_LOG_FORMAT"] = log_format
        os.environ["ORCHESTRION_LOG_LEVEL"] = log_level
        return fn(*args, **kwargs)

    wrapper = click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        envvar="ORCHESTRION_LOG_LEVEL",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    )(wrapper)
    wrapper = click.option(
        "--log-format",
        default="text",
        show_default=True,
        envvar="ORCHESTRION_LOG_FORMAT",
        type=click.Choice(["text", "json"]),
        help="Readable lines, or one JSON object per line.",
    )(wrapper)
    return wrapper  # type: ignore[return-value]


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; loopback unless you mean otherwise.",
)
@click.option("--port", default=8642, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workflows",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of workflow files: registered at start and again on change.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Worker processes to run alongside (0: run `orchestrion worker` yourself).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=None,
    help=f"Attempts each worker runs at once [default: {DEFAULT_CONCURRENCY}; process executor:"
    " the number of CPUs; or ORCHESTRION_CONCURRENCY].",
)
@click.option(
    "--grace", default=30.0, show_default=True, help="Seconds to finish in-flight work on SIGTERM."
)
@click.option(
    "--executor",
    default="thread",
    show_default=True,
    help="Where its worker processes run Python tasks (see `orchestrion worker --help`).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxy",
    multiple=True,
    metavar="ADDRESS",
    help="A reverse proxy (IP address or network) whose X-Forwarded-For/-Proto headers name"
    " the client; repeat for several. Default: none, or ORCHESTRION_TRUSTED_PROXIES"
    " (comma-separated). Without one, forwarded headers are ignored.",
)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
@log_options
def server(
    host: str,
    port: int,
    workflows: str | None,
    workers: int,
    concurrency: int | None,
    grace: float,
    executor: str,
    trusted_proxy: tuple[str, ...],
    db: str | None,
) -> None:
    """Run the API, housekeeping and worker processes (SQLite by default)."""
    from orchestrion.cli.processes import run_server, service_settings

    settings = service_settings(db, "server")
    if trusted_proxy:  # the flag wins over the environment
        try:
            proxies = trusted_proxies(trusted_proxy)
        except OrchestrionError as exc:
            raise click.BadParameter(str(exc), param_hint="--trusted-proxy") from None
        settings = msgspec.structs.replace(settings, trusted_proxies=proxies)
    run_server(
        settings,
        host=host,
        port=port,
        workflows=workflows,
        workers=workers,
        concurrency=concurrency,
        grace=grace,
        executor=executor,
    )


@click.command()
@click.option("--queue", "-q", "queues", multiple=True, default=("default",), show_default=True)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 512),
    default=None,
    help=f"Attempts run at once [default: {DEFAULT_CONCURRENCY}; process executor: the number of"
    " CPUs; or ORCHESTRION_CONCURRENCY].",
)
@click.option(
    "--workflows",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of workflow files whose code this worker runs.",
)
@click.option("--grace", default=30.0, show_default=True)
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    callback=lambda _ctx, _param, value: _parse_labels(value),
    help="KEY=VALUE this worker offers; tasks with `requires` run only where all match.",
)
@click.option(
    "--executor",
    default="thread",
    show_default=True,
    help="Where Python tasks run: thread (this worker's threads), process (a child process"
    " per attempt: no GIL, killed on timeout/cancel), dask:ADDRESS or dask://HOST:PORT (a Dask"
    " scheduler), ray (RAY_ADDRESS, the newest local Ray, else a new one), ray:HOST:PORT or"
    " ray://HOST:PORT (a Ray Client server). Needs orchestrion[dask] or orchestrion[ray].",
)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
@log_options
def worker(
    queues: tuple[str, ...],
    concurrency: int | None,
    workflows: str | None,
    grace: float,
    labels: dict[str, str],
    executor: str,
    db: str | None,
) -> None:
    """Claim and run tasks from the database until SIGTERM."""
    from orchestrion.cli.processes import run_worker, service_settings

    run_worker(
        service_settings(db, "worker"),
        queues=queues,
        concurrency=concurrency,
        workflows=workflows,
        grace=grace,
        labels=labels,
        executor=executor,
    )


def _parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("gpu=a100", "zone=eu")`` as a mapping, checked like a task's ``requires``."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.match(LABEL_PATTERN, key) or not re.match(LABEL_PATTERN, value):
            raise click.BadParameter(
                f"{pair!r}: expected KEY=VALUE, each of letters, digits and _ . : / -"
            )
        labels[key] = value
    if len(labels) > MAX_LABELS:
        raise click.BadParameter(f"at most {MAX_LABELS} labels, got {len(labels)}")
    return labels


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--server",
    envvar="ORCHESTRION_SERVER",
    default=None,
    help="Register through this server's API instead of the local database.",
)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
@click.option(
    "--keep-current",
    is_flag=True,
    hidden=True,  # the server's own flag, for the folder it reads at start
    help="A version registered before does not become current again.",
)
def deploy(paths: tuple[str, ...], server: str | None, db: str | None, keep_current: bool) -> None:
    """Register workflow files (or folders of them) and make each the current version
    (deploying an older version again rolls back to it)."""
    from orchestrion.app import load_workflows

    files = _workflow_files(paths)
    failed = False
    # Each registration is audited as its actor: the OS user, or the server for its
    # deploy child (ORCHESTRION_ACTOR). Through --server the API audits the request.
    with App(Settings.from_env(db=db), actor=cli_actor()) as app, ExitStack() as stack:
        # `uses:` the search path lacks come from the libraries the target holds: the
        # server's (expanded here, so the spec shipped is concrete) or the database's.
        extra: LibrarySource = app.templates.source()
        if server:
            from orchestrion.cli.remote import Remote
            from orchestrion.client.templates import ServerSource

            extra = ServerSource(stack.enter_context(Remote(server)).client)
        for file in files:
            try:
                loaded = load_workflows(file, templates=[extra])
            except SpecError as exc:
                errors.print(f"[red]invalid[/] {exc}", markup=True)
                failed = True
                continue
            for item in loaded:
                spec = item.spec
                try:
                    current, findings = _deploy_one(app, server, item, file, keep_current)
                except PolicyDenied as exc:
                    errors.print(f"[red]denied[/] {spec.name} from {escape(str(file))}")
                    for line in str(exc).split("; "):
                        errors.print(f"  {escape(line)}", soft_wrap=True)
                    failed = True
                    continue
                mark = " (current)" if current else ""
                console.print(f"deployed {spec.name} {spec.version}{mark} from {file}")
                for finding in findings:
                    console.print(f"  [yellow]{escape(finding)}[/]")
    sys.exit(2 if failed else 0)


def _workflow_files(paths: tuple[str, ...]) -> list[Path]:
    """The files named, and the workflow files of the folders named: a repository's
    project, policy and library files beside its workflows are skipped, and said so."""
    from orchestrion.cli.processes import WorkflowFolder
    from orchestrion.spec.documents import other_document

    files: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        for found in WorkflowFolder(str(path)).files():
            other = other_document(found)
            if other is None:
                files.append(found)
            else:
                console.print(f"[dim]skipped {escape(str(found))}: {other}[/]")
    return files


def _deploy_one(
    app: App, server: str | None, item: LoadedWorkflow, file: Path, keep_current: bool
) -> tuple[bool, list[str]]:
    """Deploy one loaded workflow, here or on `server`: whether it is current, and the
    admission policies' findings that did not refuse it (`PolicyDenied` when one did)."""
    spec = item.spec
    if server:
        from orchestrion.cli.remote import Remote, translated

        with Remote(server) as api, translated():
            current = bool(api.client.deploy(spec, item.code)["current"])
            return current, [f["text"] for f in api.client.policy_findings]
    found: list[Finding] = []
    app.workflows.register_loaded([item], source=file, keep_current=keep_current, findings=found)
    # said as found: another deploy may have come in between
    current = app.workflows.workflow_record(spec.name).version == spec.version
    return current, [str(f) for f in found]


def deploy_remote(server: str, spec: WorkflowSpec, code: CodeBundle | None) -> dict[str, Any]:
    """Deploy one workflow through the server's API (`Client.deploy`)."""
    from orchestrion.cli.remote import Remote

    with Remote(server) as api:
        return api.client.deploy(spec, code)


@click.command()
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
@log_options
def scheduler(db: str | None) -> None:
    """Run a scheduler on its own (the server embeds one); several may run at once."""
    from orchestrion.cli.processes import run_scheduler

    run_scheduler(Settings.from_env(db=db))
