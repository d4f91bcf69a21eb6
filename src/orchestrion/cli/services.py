"""Commands for the service: `server`, `worker`, `deploy`, `trigger`.

`trigger` talks to a server's API when one is configured (``--server`` or
``ORCHESTRION_SERVER``); otherwise it writes the run to the local database, where any
worker on it picks it up.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from orchestrion.app import App
from orchestrion.app.runtime import DEFAULT_CONCURRENCY
from orchestrion.app.settings import Settings
from orchestrion.cli.common import cli_actor
from orchestrion.cli.credentials import auth_headers
from orchestrion.errors import OrchestrionError, SpecError
from orchestrion.spec.model import LABEL_PATTERN, MAX_LABELS

__all__ = ["register"]

# Piped output is not squeezed to 80 columns: ids and times must stay whole for scripts.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, highlight=False)
_FINAL = ("succeeded", "failed", "canceled")


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


def register(main: click.Group) -> None:
    for command in (server, worker, deploy, trigger, scheduler, backfill, events):
        main.add_command(command)


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
    db: str | None,
) -> None:
    """Run the API, housekeeping and worker processes (SQLite by default)."""
    from orchestrion.cli.processes import run_server, service_settings

    run_server(
        service_settings(db, "server"),
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
def deploy(paths: tuple[str, ...], server: str | None, db: str | None) -> None:
    """Register workflow files (or folders of them) as new versions."""
    from orchestrion.app import load_workflows
    from orchestrion.cli.processes import WorkflowFolder

    files: list[Path] = []
    for path in map(Path, paths):
        files += WorkflowFolder(str(path)).files() if path.is_dir() else [path]
    failed = False
    # Without an actor, as before: `deploy` writes no audit records. (The server's deploy
    # child sets ORCHESTRION_ACTOR for them; auditing deploys would change behaviour.)
    with App(Settings.from_env(db=db)) as app:
        for file in files:
            try:
                loaded = load_workflows(file)
            except SpecError as exc:
                errors.print(f"[red]invalid[/] {exc}", markup=True)
                failed = True
                continue
            for spec, callables in loaded:
                if server:
                    _api(server, "POST", "/api/v1/workflows", json.loads(spec.to_json()))
                else:
                    app.workflows.register_loaded([(spec, callables)], source=file)
                console.print(f"deployed {spec.name} {spec.version} from {file}")
    sys.exit(2 if failed else 0)


@click.command()
@click.argument("workflow")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--idempotency-key", default=None)
@click.option("--wait", is_flag=True, help="Wait for the run to finish; exit code = outcome.")
@click.option("--server", envvar="ORCHESTRION_SERVER", default=None)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
def trigger(
    workflow: str,
    params: tuple[str, ...],
    idempotency_key: str | None,
    wait: bool,
    server: str | None,
    db: str | None,
) -> None:
    """Start a run of a registered workflow."""
    from orchestrion.spec.params import parse_cli_params

    try:
        if server:
            spec_data = _api(server, "GET", f"/api/v1/workflows/{workflow}")
            from orchestrion.spec.model import WorkflowSpec

            spec = WorkflowSpec.model_validate(spec_data["spec"])
            body = {
                "params": parse_cli_params(spec, list(params)),
                "idempotency_key": idempotency_key,
            }
            run = _api(server, "POST", f"/api/v1/workflows/{workflow}/runs", body)
            console.print(f"run {run['id']} of {workflow} {run['state']}")
            state = _wait_api(server, run["id"]) if wait else run["state"]
        else:
            with App(Settings.from_env(db=db), actor=cli_actor()) as app:
                spec = app.workflows.workflow(workflow)
                rec = app.runs.trigger(
                    workflow, parse_cli_params(spec, list(params)), idempotency_key=idempotency_key
                )
                console.print(f"run {rec.id} of {workflow} {rec.state.value}")
                state = _wait_local(app, rec.id) if wait else rec.state.value
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {exc}", markup=True)
        sys.exit(2)
    if wait:
        console.print(f"run finished: {state}")
        sys.exit(0 if state == "succeeded" else 1)


def _wait_local(app: App, run_id: str) -> str:
    return app.runs.wait_until_finished(run_id, every=0.5).state.value


def _wait_api(server: str, run_id: str) -> str:
    """Follow the run's event stream until it finishes (no polling); reconnect with
    Last-Event-ID if the connection drops."""
    import httpx

    last: str | None = None
    while True:
        state = str(_api(server, "GET", f"/api/v1/runs/{run_id}")["state"])
        if state in _FINAL:
            return state
        headers = {"Last-Event-ID": last} if last else {}
        try:
            with httpx.stream(
                "GET",
                server.rstrip("/") + "/api/v1/stream",
                params={"run_id": run_id},
                headers={**headers, **auth_headers(server)},
                timeout=httpx.Timeout(30.0, read=60.0),
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        last = line[4:]
                    elif line.startswith("data: ") and '"run.' in line:
                        event = json.loads(line[6:])
                        if event.get("run_id") == run_id and event.get("to_state") in _FINAL:
                            return str(event["to_state"])
        except httpx.HTTPError:
            time.sleep(0.5)


def _api(server: str, method: str, path: str, body: Any = None) -> Any:
    import httpx

    try:
        response = httpx.request(
            method,
            server.rstrip("/") + path,
            json=body,
            timeout=30.0,
            headers=auth_headers(server),
        )
    except httpx.HTTPError as exc:
        raise OrchestrionError(f"cannot reach the server at {server}: {exc}") from exc
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise OrchestrionError(f"server said {response.status_code}: {message}")
    return response.json()


@click.command()
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
@log_options
def scheduler(db: str | None) -> None:
    """Run a scheduler on its own (the server embeds one); several may run at once."""
    from orchestrion.cli.processes import run_scheduler

    run_scheduler(Settings.from_env(db=db))


@click.command()
@click.argument("workflow")
@click.option("--from", "start", required=True, help="First nominal date or datetime.")
@click.option("--to", "end", required=True, help="Last nominal date (inclusive) or datetime.")
@click.option("--schedule", default=None, help="Which schedule, when there are several.")
@click.option("--max-active", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option("--dry-run", is_flag=True, help="Show the runs it would create; create none.")
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
def backfill(
    workflow: str,
    start: str,
    end: str,
    schedule: str | None,
    max_active: int,
    dry_run: bool,
    db: str | None,
) -> None:
    """Runs for every nominal schedule time in a range, paced by the scheduler."""
    try:
        with App(Settings.from_env(db=db), actor=cli_actor()) as app:
            record = app.triggers.create_backfill(
                workflow, start, end, schedule=schedule, max_active=max_active, dry_run=dry_run
            )
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {exc}", markup=True)
        sys.exit(2)
    verb = "would create" if dry_run else "will create"
    console.print(
        f"backfill {record.id}: {verb} {record.total} runs of {workflow}"
        f" ({record.state}, at most {max_active} at once)",
        markup=False,
    )


@click.group()
def events() -> None:
    """Send events that start workflows with matching triggers."""


@events.command("send")
@click.argument("event_type")
@click.argument("payload", default="null")
@click.option("--id", "event_id", default=None, help="De-duplication id.")
@click.option("--server", envvar="ORCHESTRION_SERVER", default=None)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
def send(
    event_type: str, payload: str, event_id: str | None, server: str | None, db: str | None
) -> None:
    """Send EVENT_TYPE with a JSON PAYLOAD."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        errors.print(f"error: payload is not JSON: {exc}", markup=False)
        sys.exit(2)
    try:
        if server:
            receipt = _api(
                server,
                "POST",
                "/api/v1/events",
                {"type": event_type, "payload": data, "id": event_id},
            )
            runs = receipt["run_ids"]
        else:
            with App(Settings.from_env(db=db), actor=cli_actor()) as app:
                runs = app.triggers.send_event(event_type, data, event_id, source="cli")
    except OrchestrionError as exc:
        errors.print(f"error: {exc}", markup=False)
        sys.exit(2)
    console.print(f"started {len(runs)} run(s): {' '.join(runs)}", markup=False)
