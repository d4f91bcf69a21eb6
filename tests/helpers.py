"""Test helpers: build specs by hand, drive a real store synchronously, check history.

`Driver` is a deterministic, single-threaded stand-in for a worker: it claims through the
store's verbs with a `FakeClock`, executes claims with the real runner (or lets the test
report outcomes by hand), and finishes them. `make_app` gives an `App` for end-to-end runs
through the real `Worker`. Both stand on a real SQLite file, or with
``ORCHESTRION_TEST_DATABASE=postgres`` on a fresh PostgreSQL schema standing for that file
(`database_url_for`; `db_arg` for the ``--db`` of a real process).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.clock import Clock, FakeClock
from orchestrion.spec.model import (
    InputSpec,
    PythonAction,
    RetryPolicy,
    SubWorkflowAction,
    TaskSpec,
    TriggerRule,
    WhenSpec,
    WorkflowSpec,
)
from orchestrion.spec.params import resolve_params
from orchestrion.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    RunEvent,
    RunState,
    TaskEvent,
    TaskState,
)
from orchestrion.store import open_store
from orchestrion.store.records import Claim, Outcome, RunRecord, TaskRunRecord
from orchestrion.store.stores import Stores
from orchestrion.worker import runner
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.context import TaskContext

if TYPE_CHECKING:
    # httpx is imported where a client is made, not by every test that imports the helpers.
    import httpx

__all__ = [
    "Driver",
    "assert_consistent",
    "by_name",
    "db_arg",
    "make_app",
    "on_postgres",
    "py",
    "stored_bytes",
    "sub",
    "unfinished_count",
    "wf",
]


# ---------------------------------------------------------------------------- specs


def py(
    name: str,
    *deps: str,
    ref: str | None = None,
    inputs: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
    when: str | None = None,
    map_over: str | None = None,
    retries: int = 0,
    backoff: float = 0.0,
    factor: float = 2.0,
    max_delay: float = 300.0,
    jitter: float = 0.0,
    retry_on: tuple[str, ...] = (),
    undo: str | None = None,
    **extra: Any,
) -> TaskSpec:
    """A Python task calling ``t:<ref or name>``; `inputs` are expressions, `values` literals."""
    all_inputs = {k: InputSpec(expr=v) for k, v in (inputs or {}).items()}
    all_inputs.update({k: InputSpec(value=v) for k, v in (values or {}).items()})
    return TaskSpec(
        name=name,
        action=PythonAction(ref=f"t:{ref or name}"),
        depends_on=deps,
        inputs=all_inputs,
        trigger_rule=TriggerRule(rule),
        when=None if when is None else WhenSpec(expr=when),
        map_over=map_over,
        retry=RetryPolicy(
            retries=retries,
            backoff=backoff,
            factor=factor,
            max_delay=max_delay,
            jitter=jitter,
            retry_on=retry_on,
        ),
        undo=None if undo is None else PythonAction(ref=f"t:{undo}"),
        **extra,
    )


def sub(name: str, workflow: str, *deps: str, params: dict[str, Any] | None = None) -> TaskSpec:
    return TaskSpec(
        name=name,
        action=SubWorkflowAction(workflow=workflow, params=params or {}),
        depends_on=deps,
    )


def wf(name: str, *tasks: TaskSpec, **kw: Any) -> WorkflowSpec:
    return WorkflowSpec(name=name, tasks=tasks, **kw)


def task_context(**fields: Any) -> TaskContext:
    """A task's context outside any run: a placeholder identity (run ``r``, task ``t`` of
    workflow ``w``, attempt 1), with `fields` given or overriding it."""
    identity: dict[str, Any] = {
        "run_id": "r",
        "task_run_id": 1,
        "task_name": "t",
        "workflow": "w",
        "attempt": 1,
        "idempotency_key": "k",
    }
    return TaskContext(**(identity | fields))


def by_name(task_runs: Iterable[TaskRunRecord]) -> dict[str, TaskRunRecord]:
    """Top-level task runs (not items, not undo steps) by task name."""
    return {t.task_name: t for t in task_runs if t.map_index < 0 and t.kind in ("task", "group")}


# ---------------------------------------------------------------------------- app


def make_app(tmp_path: Path, clock: Clock | None = None, **settings: Any) -> App:
    """An open `App` on a fresh SQLite file; short leases and heartbeats for worker tests.

    With ``ORCHESTRION_TEST_DATABASE=postgres`` the App gets a fresh PostgreSQL schema
    instead (in one database per test process, dropped at exit); `unfinished_count` then
    reads ``tmp_path / "app.db"`` as that schema."""
    opts: dict[str, Any] = {"lease_seconds": 5.0, "heartbeat_every": 0.2, "concurrency": 4}
    opts.update(settings)
    url = database_url_for(tmp_path / "app.db")
    app = App(Settings(database_url=url, **opts), clock=clock)
    return app.open()


def on_postgres() -> bool:
    """Whether this test run puts its apps and processes on PostgreSQL
    (``ORCHESTRION_TEST_DATABASE=postgres``) rather than on SQLite files."""
    return os.environ.get("ORCHESTRION_TEST_DATABASE", "").strip().lower() == "postgres"


def database_url_for(path: Path) -> str:
    """A database URL for a test: the SQLite file `path`, or with
    ``ORCHESTRION_TEST_DATABASE=postgres`` a fresh PostgreSQL schema standing for it (the
    same schema each time for the same `path`)."""
    if on_postgres():
        return _pg_app_url(Path(path))
    return f"sqlite:///{path}"


def db_arg(path: Path) -> str:
    """What a test passes as a real process's ``--db``: the bare SQLite file `path` (the
    form users type), or on PostgreSQL the URL of the schema standing for it."""
    return database_url_for(path) if on_postgres() else str(path)


def stored_bytes(db: Path) -> bytes:
    """Everything the database behind `db` (a `database_url_for` path) holds, as bytes to
    search for a plaintext: the SQLite file and its journal files, or on PostgreSQL every
    row of every table of the schema as text, bytea columns also decoded from their hex."""
    if not on_postgres():
        return b"".join(f.read_bytes() for f in db.parent.glob(db.name + "*"))
    import psycopg

    parts: list[bytes] = []
    with psycopg.connect(database_url_for(db)) as pconn:
        tables = [
            r[0]
            for r in pconn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        ]
        for table in tables:
            for (text,) in pconn.execute(f'SELECT t::text FROM "{table}" t'):
                parts.append(text.encode())
                # a bytea column prints as \\x<hex> (backslash doubled inside a row)
                for hexdigits in re.findall(r"\\+x((?:[0-9a-f]{2})+)", text):
                    parts.append(bytes.fromhex(hexdigits))
    return b"\n".join(parts)


#: ``make_app``'s SQLite path -> the PostgreSQL URL used in its place.
_PG_APPS: dict[Path, str] = {}
_PG_DATABASE: list[str] = []


def _pg_app_url(path: Path) -> str:
    from tests import pg

    pg.require_postgres()
    if path in _PG_APPS:  # another App on the same "file"
        return _PG_APPS[path]
    if not _PG_DATABASE:
        _PG_DATABASE.append(pg.create_database())
        atexit.register(pg.drop_database, _PG_DATABASE[0])
    url, _ = pg.create_schema(_PG_DATABASE[0])
    _PG_APPS[path] = url
    return url


# ---------------------------------------------------------------------------- driver


class Driver:
    """Drives a real store by hand: claim, execute with the real runner, finish. The store
    is the SQLite file `path`, or with ``ORCHESTRION_TEST_DATABASE=postgres`` the PostgreSQL
    schema standing for it (`database_url_for`; the one `make_app` made for the same path)."""

    def __init__(self, path: Path, clock: FakeClock | None = None) -> None:
        self.path = path
        self.clock = clock or FakeClock()
        self.store: Stores = open_store(database_url_for(path))
        self.code = CodeRegistry()

    def close(self) -> None:
        self.store.close()

    @property
    def now(self) -> float:
        return self.clock.now()

    def add(self, **fns: Callable[..., Any]) -> None:
        self.code.add({f"t:{k}": v for k, v in fns.items()})

    def register(self, *specs: WorkflowSpec) -> None:
        for spec in specs:
            self.store.workflows.register_workflow(spec, source=None, now=self.now)

    def start(self, spec: WorkflowSpec, params: dict[str, Any] | None = None, **kw: Any) -> str:
        self.register(spec)
        run = self.store.runs.create_run(
            spec, resolve_params(spec, params or {}), now=self.now, **kw
        )
        return run.id

    # -------------------------------------------------------------- verbs by hand

    def claim(
        self,
        limit: int = 100,
        *,
        worker: str = "w1",
        lease: float = 30.0,
        queues: tuple[str, ...] = ("default",),
    ) -> list[Claim]:
        return self.store.runs.claim(
            worker_id=worker, queues=queues, limit=limit, lease_seconds=lease, now=self.now
        )

    def claim_one(self, task_name: str, **kw: Any) -> Claim:
        claims = self.claim(**kw)
        assert [c.task_name for c in claims] == [task_name], claims
        return claims[0]

    def succeed(self, claim: Claim, result: Any = None) -> tuple[int, ...]:
        outcome = Outcome(
            task_run_id=claim.task_run_id, epoch=claim.epoch, status="succeeded", result=result
        )
        return self.store.runs.finish([outcome], now=self.now).applied

    def fail(
        self, claim: Claim, error: str = "boom", types: tuple[str, ...] = ("builtins.ValueError",)
    ) -> tuple[int, ...]:
        outcome = Outcome(
            task_run_id=claim.task_run_id,
            epoch=claim.epoch,
            status="failed",
            error=error,
            error_types=types,
        )
        return self.store.runs.finish([outcome], now=self.now).applied

    # -------------------------------------------------------------- execution

    def execute(self, claim: Claim) -> Outcome | None:
        run = self.store.reads.get_run(claim.run_id)
        spec = self.store.workflows.get_workflow(run.workflow, run.version).spec
        ctx = TaskContext(
            run_id=claim.run_id,
            task_run_id=claim.task_run_id,
            task_name=claim.task_name,
            workflow=claim.workflow,
            attempt=claim.attempt,
            map_index=claim.map_index if claim.map_index >= 0 else None,
            idempotency_key=claim.idempotency_key,
            params=claim.params,
        )
        return runner.execute(claim, spec, ctx, self.code, self._start_child)

    def _start_child(self, claim: Claim, workflow: str, params: dict[str, Any]) -> str | None:
        spec = self.store.workflows.get_workflow(workflow).spec
        return self.store.runs.start_child_run(
            claim, spec, resolve_params(spec, params), now=self.now
        )

    def step(self, limit: int = 100, **kw: Any) -> int:
        """Claim what is ready, run each claim, finish each one; how many were claimed."""
        claims = self.claim(limit, **kw)
        for claim in claims:
            outcome = self.execute(claim)
            if outcome is not None:
                self.store.runs.finish([outcome], now=self.now)
        return len(claims)

    def drain(self, run_id: str, *, max_steps: int = 200) -> RunRecord:
        """Step until the run finishes, jumping the clock to the next retry when idle."""
        for _ in range(max_steps):
            run = self.store.reads.get_run(run_id)
            if run.state.finished:
                return run
            if self.step():
                continue
            nxt = self.store.runs.next_ready_at(("default",))
            if nxt is None or nxt <= self.now:
                raise AssertionError(f"run {run_id} is stuck in {run.state}")
            self.clock.advance(nxt - self.now + 0.001)
        raise AssertionError(f"run {run_id} did not finish in {max_steps} steps")

    # -------------------------------------------------------------- reads

    def tasks(self, run_id: str) -> dict[str, TaskRunRecord]:
        return by_name(self.store.reads.list_task_runs(run_id))

    def state(self, run_id: str) -> dict[str, str]:
        return {k: v.state.value for k, v in self.tasks(run_id).items()}


# ---------------------------------------------------------------------------- history checks


def unfinished_count(db: Path | str, run_id: str) -> int:
    """The run's `unfinished` counter, read behind the store's back: `db` is a SQLite file,
    a store URL, or a path that `make_app` put on PostgreSQL."""
    url = _PG_APPS.get(Path(db), str(db)) if not str(db).startswith("postgres") else str(db)
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url) as pconn:
            prow = pconn.execute("SELECT unfinished FROM runs WHERE id = %s", (run_id,)).fetchone()
        assert prow is not None, run_id
        return int(prow[0])
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        row = conn.execute("SELECT unfinished FROM runs WHERE id = ?", (run_id,)).fetchone()
    conn.close()
    return int(row[0])


def assert_consistent(store: Stores, db: Path | str, run_id: str) -> None:
    """Replay the run's events: every task run and run state change has exactly one event row
    whose from/to match, each is an edge of the transition table, and the replay ends in the
    stored states. A finished run also has its `unfinished` counter at 0 and no open attempt."""
    run = store.reads.get_run(run_id)
    task_runs = {t.id: t for t in store.reads.list_task_runs(run_id)}
    current: dict[int, str] = {
        t.id: TaskState.QUEUED.value if t.kind == "item" else TaskState.PENDING.value
        for t in task_runs.values()
    }
    run_state: str | None = None
    for ev in store.reads.list_events(run_id, limit=100_000):
        if ev.from_state is None and ev.to_state is None:
            continue
        if ev.task_run_id is None:
            assert ev.kind.startswith("run."), ev
            if ev.kind == "run.created":
                assert run_state is None and ev.from_state is None, ev
            else:
                assert ev.from_state == run_state, (ev, run_state)
                assert ev.from_state is not None, ev
                key = (RunState(ev.from_state), RunEvent(ev.kind.removeprefix("run.")))
                assert RUN_TRANSITIONS[key].value == ev.to_state, ev
            run_state = ev.to_state
            continue
        assert ev.kind.startswith("task."), ev
        tr = ev.task_run_id
        assert tr in task_runs, ev
        assert ev.from_state == current[tr], (ev, current[tr], task_runs[tr])
        key2 = (TaskState(ev.from_state), TaskEvent(ev.kind.removeprefix("task.")))
        assert TASK_TRANSITIONS[key2].value == ev.to_state, ev
        current[tr] = str(ev.to_state)
    assert run_state == run.state.value, (run_state, run.state)
    for tr_id, record in task_runs.items():
        assert current[tr_id] == record.state.value, (record, current[tr_id])
    if run.state.finished:
        assert unfinished_count(db, run_id) == 0
        for record in task_runs.values():
            assert record.state.finished, record
        for attempt in store.reads.list_attempts(run_id):
            assert attempt.outcome is not None, attempt


#: The password `seed_admin` gives its user (tests only).
ADMIN_PASSWORD = "test admin password 0123"


def seed_admin(database_url: str) -> str:
    """An admin user (``admin`` / `ADMIN_PASSWORD`) and an admin API token on a database,
    before a server starts on it; returns the token. The server then skips its first-start
    admin, as on any database that has users."""
    with App(Settings(database_url=database_url)) as app:
        app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
        token, _ = app.accounts.create_token("tests", {"*": "admin"}, expires="never")
    return token


def session_cookie(url: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """Sign in through the login form of a running server; the session cookie's value."""
    import re

    import httpx

    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client:
        page = client.get("/login")
        found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        answer = client.post(
            "/login", data={"user": user, "password": password, "login_csrf": found.group(1)}
        )
        assert answer.status_code == 303, answer.text[:500]
        return str(client.cookies["orchestrion_session"])


@contextlib.contextmanager
def serve_api(app: App, **options: Any) -> Iterator[str]:
    """The server's ASGI app (`create_server(app, **options)`) on a real uvicorn, on a free
    loopback port, in a thread; yields its base URL and stops it afterwards."""
    import threading
    import time

    import uvicorn

    from orchestrion.server import create_server

    config = uvicorn.Config(
        create_server(app, **options), host="127.0.0.1", port=0, log_level="error", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def admin_client(app: App, url: str) -> httpx.Client:
    """An httpx client for `url` carrying a fresh ``*`` admin token of `app`."""
    import httpx

    token, _ = app.accounts.create_token("tests", {"*": "admin"}, expires="never")
    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
