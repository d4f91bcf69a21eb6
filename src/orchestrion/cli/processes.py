"""Long-running processes: `orchestrion worker`, `scheduler` and `server`.

The runtime builder (`App.runtime`) makes and wires what runs in them; this module is
what is left to a process: signals, the workflow folder it watches, the worker processes
the server starts as children, serving the API over HTTP, and what it prints.

The server process serves the API and runs the scheduler (with housekeeping); it never
imports user code. Workflow code is imported only by worker processes, which the server
starts as children (`--workers N`) and restarts if they die. Python workflow files are
registered by a short-lived `orchestrion deploy` child for the same reason.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from orchestrion.app import App
from orchestrion.app.accounts import FIRST_START_TOKEN_TTL
from orchestrion.app.runtime import hide_master_key, plan_worker
from orchestrion.app.secrets import key_ring_of
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import DEV_MODE_ENV, KEY_ENV
from orchestrion.cli.credentials import save_token
from orchestrion.errors import OrchestrionError, SecretError, SpecError
from orchestrion.spec.documents import other_document

__all__ = [
    "WorkflowFolder",
    "require_master_key",
    "run_scheduler",
    "run_server",
    "run_worker",
    "service_settings",
]

log = logging.getLogger("orchestrion.process")


class WorkflowFolder:
    """The workflow files under a folder, and whether any changed since last looked at."""

    def __init__(self, folder: str | None) -> None:
        self.folder = Path(folder) if folder else None
        self._seen: dict[Path, float] = {}

    def files(self) -> list[Path]:
        """The workflow files in the folder (``.py``, ``.yaml``, ``.yml``), skipping names that
        start with ``_`` or ``.`` and caches."""
        if self.folder is None:
            return []
        found = [p for p in sorted(self.folder.rglob("*")) if p.suffix in (".py", ".yaml", ".yml")]
        return [
            p for p in found if not p.name.startswith(("_", ".")) and "__pycache__" not in p.parts
        ]

    def changed(self) -> list[Path]:
        """Files added or modified since the previous call (all of them the first time)."""
        out = []
        for path in self.files():
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._seen.get(path) != mtime:
                self._seen[path] = mtime
                out.append(path)
        return out


def load_folder(app: App, files: list[Path], *, at_start: bool = False) -> None:
    """Load (and register) each file; a bad file is logged and skipped, never fatal. At
    start, a version registered before does not become current again: a restart must not
    undo a rollback (`orchestrion workflows set-version`); a file changed since does."""
    for path in files:
        if _other(path):
            continue
        try:
            specs = app.workflows.load(path, keep_current=at_start)
            log.info(
                "workflows.loaded", extra={"file": str(path), "workflows": [s.name for s in specs]}
            )
        except SpecError as exc:
            log.error("workflows.invalid: %s", exc)


def _other(path: Path) -> bool:
    """Whether `path` is a repository's project, policy or library file, not a workflow
    (logged when it is)."""
    other = other_document(path)
    if other is not None:
        log.info("workflows.skipped", extra={"file": str(path), "reason": other})
    return other is not None


def service_settings(db: str | None, what: str) -> Settings:
    """Settings for a long-running process; a bad one (e.g. a malformed master key) is one
    line on stderr and exit code 2, not a traceback."""
    try:
        return Settings.from_env(db=db)
    except OrchestrionError as exc:
        print(f"error: orchestrion {what}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def require_master_key(settings: Settings, what: str) -> None:
    """Refuse to start a long-running process without a master key (outside dev mode), and
    warn loudly in dev mode: its built-in key is public, so its secrets are not."""
    try:
        ring = key_ring_of(settings)
    except SecretError as exc:
        print(
            f"error: orchestrion {what}: {exc}. Generate a key with"
            " `orchestrion secrets generate-key`.",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(2)
    if ring.is_dev:
        log.warning("secrets.dev_mode", extra={"component": what})
        if what != "server":
            return  # one banner per server, not one per worker process it starts
        banner = "!" * 78
        print(
            f"{banner}\n! DEV MODE ({DEV_MODE_ENV}=1): secrets are sealed with a PUBLIC built-in"
            f" key.\n! Never use this outside local development; set {KEY_ENV}.\n{banner}",
            file=sys.stderr,
            flush=True,
        )


def run_worker(
    settings: Settings,
    *,
    queues: tuple[str, ...],
    concurrency: int | None,
    workflows: str | None,
    grace: float,
    labels: Mapping[str, str] | None = None,
    executor: str = "thread",
) -> None:
    """Claim and run tasks until SIGTERM/SIGINT; then finish or release in-flight work.
    `executor` names where Python tasks run (see `plan_worker`)."""
    require_master_key(settings, "worker")
    try:
        plan = plan_worker(
            settings, queues=queues, concurrency=concurrency, labels=labels, executor=executor
        )
    except OrchestrionError as exc:
        print(f"error: orchestrion worker: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    hide_master_key()
    stop = threading.Event()
    _on_signals(stop)
    folder = WorkflowFolder(workflows)
    with App(settings) as app:
        load_folder(app, folder.changed(), at_start=True)
        with app.runtime.worker(plan, grace=grace) as worker:
            print(
                f"worker {worker.id} on queues {','.join(queues)} (concurrency"
                f" {plan.concurrency}, executor {executor})",
                flush=True,
            )
            _serve_until_stopped(app, folder, stop, lambda: worker.health.fatal)
    if worker.health.fatal is not None:
        # A thread of it died: its tasks would wait for a lease to lapse while it looked
        # alive. Exit, so that a supervisor (or the server) starts a healthy one.
        print(f"error: orchestrion worker: {worker.health.fatal}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(3)
    if worker.busy:
        # Their leases were released and other workers retry them; a thread cannot be
        # killed, and waiting for it would keep this process alive past the grace period.
        print(
            f"{worker.busy} task(s) ignored the request to stop; exiting without them",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(0)


def _serve_until_stopped(
    app: App, folder: WorkflowFolder, stop: threading.Event, fatal: Callable[[], str | None]
) -> None:
    """Load changed workflow files until a signal, until the server that started this
    worker is gone, or until `fatal` says that the worker cannot go on."""
    parent = os.getppid()
    orphan_check = os.environ.get("ORCHESTRION_EXIT_WITH_PARENT") == str(parent)
    while not stop.wait(2.0):
        if fatal() is not None:
            break
        if orphan_check and os.getppid() != parent:
            # The server that started us died without stopping us (SIGKILL): stop too,
            # gracefully, instead of running on as an orphan.
            log.warning("worker.parent_gone", extra={"parent": parent})
            break
        changed = folder.changed()
        if changed:
            load_folder(app, changed)


def run_scheduler(settings: Settings) -> None:
    """Fire schedules, pace backfills, start run triggers and reap leases until SIGTERM.
    Any number may run at once: each duty is held under a lease, and every fire is
    guarded by a unique key."""
    stop = threading.Event()
    _on_signals(stop)
    with App(settings) as app:
        scheduler = app.runtime.service_scheduler()
        print(f"scheduler {scheduler.holder_id} on {settings.database_url}", flush=True)
        scheduler.run_forever(stop)


def _first_start(app: App, host: str, port: int) -> None:
    """On a database with no user yet: make an admin with a random password and an admin
    token, show both once, and keep the token for the local CLI (never a default)."""
    made = app.accounts.first_start()
    if made is None:
        return
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    urls = sorted(
        {f"http://{shown}:{port}", f"http://127.0.0.1:{port}", f"http://localhost:{port}"}
    )
    where = save_token(urls, made.token)
    expires = (
        "never"
        if made.token_expires_at is None
        else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(made.token_expires_at))
    )
    print(
        "\n".join(
            [
                "",
                "=" * 72,
                "First start: an administrator was created. This is shown once.",
                f"  UI sign-in:  user {made.user!r}, password {made.password}",
                f"  API token:   {made.token}",
                f"  The token is saved for the local CLI in {where} (mode 0600).",
                f"  It expires in {FIRST_START_TOKEN_TTL} ({expires}): make a lasting token of"
                " your own with",
                "    `orchestrion tokens create NAME --role admin --namespace '*'`.",
                "  Change the password with `orchestrion users set-password admin`.",
                "=" * 72,
                "",
            ]
        ),
        flush=True,
    )


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workflows: str | None,
    workers: int,
    concurrency: int | None,
    grace: float,
    executor: str = "thread",
) -> None:
    """API + scheduler (schedules, triggers, backfills, housekeeping) in this process;
    worker processes as children."""
    require_master_key(settings, "server")
    import uvicorn

    from orchestrion.server import create_server

    # uvicorn handles SIGTERM/SIGINT while it serves, then restores the previous handlers
    # and raises the signal again: with the default handlers the process would die there,
    # before the `finally` below stops the worker processes (leaving them orphaned).
    stop = threading.Event()
    _on_signals(stop)
    folder = WorkflowFolder(workflows)
    # Listen before anything else: a taken port must fail before a first start makes and
    # shows an admin (whose one-time password would be printed for a server that never ran).
    listening = listen_on(host, port)
    port = listening.getsockname()[1]  # --port 0: the port the system chose
    with listening, App(settings) as app:
        _first_start(app, host, port)
        _deploy(settings, folder.changed(), at_start=True)
        app.runtime.follow_other_processes()  # live streams follow worker processes
        with app.runtime.scheduler_in_background():
            children = _Children(settings, workflows, workers, concurrency, grace, executor)
            children.start()
            watcher_stop = threading.Event()
            watcher = threading.Thread(
                target=_watch,
                args=(settings, folder, watcher_stop),
                daemon=True,
                name="workflow-watcher",
            )
            watcher.start()
            config = uvicorn.Config(
                create_server(app),
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                access_log=False,
                # Forwarded headers are believed only from the proxies the operator named:
                # uvicorn's default (loopback, or FORWARDED_ALLOW_IPS) would let anything
                # on this host, or any client through an unnamed proxy, choose its address.
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=list(settings.trusted_proxies),
            )
            server = uvicorn.Server(config)
            _on_signals(stop, server)
            server.should_exit = stop.is_set()  # a signal during the start
            proxies = ", ".join(settings.trusted_proxies) or "none"
            print(
                f"orchestrion server on http://{host}:{port} (database {settings.database_url},"
                f" {workers} worker process(es); forwarded headers trusted from: {proxies})",
                flush=True,
            )
            try:
                server.run(sockets=[listening])
            finally:
                watcher_stop.set()
                children.stop()


def listen_on(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or exit 2 with a message naming the problem.

    The server binds this itself (rather than letting uvicorn bind once it serves) so that
    "address already in use" or a host that cannot be bound stops it before it writes or
    prints anything.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        _cannot_listen(host, port, exc)
    try:
        # As uvicorn does: a restart may reuse the port while old connections linger in
        # TIME_WAIT; a port another process listens on stays refused on Linux.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        _cannot_listen(host, port, exc)
    sock.set_inheritable(False)  # worker and deploy children must not hold the port open
    return sock


def _cannot_listen(host: str, port: int, exc: OSError) -> NoReturn:
    reason = exc.strerror or str(exc)
    hint = (
        ": another process listens there (another orchestrion server?); stop it or pick"
        " another --port"
        if exc.errno == errno.EADDRINUSE
        else ""
    )
    print(
        f"error: orchestrion server: cannot listen on {host}:{port}: {reason}{hint}",
        file=sys.stderr,
        flush=True,
    )
    sys.exit(2)


def _watch(settings: Settings, folder: WorkflowFolder, stop: threading.Event) -> None:
    while not stop.wait(2.0):
        changed = folder.changed()
        if changed:
            _deploy(settings, changed)


def _deploy(settings: Settings, files: list[Path], *, at_start: bool = False) -> None:
    """Register workflow files from a child process, so the server never imports user code.
    At start, versions registered before stay as they are (`load_folder` says why). A
    repository's project, policy and library files beside the workflows are skipped."""
    files = [f for f in files if not _other(f)]
    if not files:
        return
    cmd = [
        sys.executable,
        "-m",
        "orchestrion.cli.main",
        "deploy",
        "--db",
        settings.database_url,
        *(["--keep-current"] if at_start else []),
        *map(str, files),
    ]
    env = {**os.environ, "ORCHESTRION_ACTOR": "server:deploy"}  # its audit records say so
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)


class _Children:
    """Worker processes, restarted (with backoff) when they die; SIGTERM on stop."""

    def __init__(
        self,
        settings: Settings,
        workflows: str | None,
        count: int,
        concurrency: int | None,
        grace: float,
        executor: str = "thread",
    ) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "orchestrion.cli.main",
            "worker",
            "--db",
            settings.database_url,
            # None: each worker sizes itself (`default_concurrency`) from its executor
            *(["--concurrency", str(concurrency)] if concurrency else []),
            "--grace",
            str(grace),
            "--executor",
            executor,
        ]
        if workflows:
            self.cmd += ["--workflows", workflows]
        self.count = count
        self.grace = grace
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True, name="children")

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "ORCHESTRION_EXIT_WITH_PARENT": str(os.getpid())}
        return subprocess.Popen(self.cmd, env=env)

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stop.wait(1.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    log.warning("worker.died", extra={"pid": proc.pid, "code": proc.returncode})
                    time.sleep(min(backoff, 10.0))
                    backoff *= 2
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 5.0
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _on_signals(stop: threading.Event, server: Any = None) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()
        if server is not None:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):
            signal.signal(sig, handler)
