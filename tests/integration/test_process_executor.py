"""The ``process`` executor end to end, with real `Worker`s and real child processes: a task
runs in a child (its pid differs), a hung one is killed on timeout and on cancel (its
process is gone afterwards), results, errors and captured output come back masked, retries
work, and a SIGKILLed worker loses nothing (see also tests/acceptance for the CLI)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.states import RunState
from orchestrion.store.records import RunRecord
from orchestrion.triggers.maintenance import sweep
from orchestrion.worker.loop import Worker, WorkerSettings
from orchestrion.worker.process_executor import ProcessExecutor
from tests.helpers import database_url_for, make_app
from tests.processes import Proc

_PATIENCE = 60.0  # guards against a hang; never a timing assertion

WORKFLOW = '''\
"""Tasks for the process executor tests."""
import os
import time

from orchestrion.spec.python import task, workflow


@task
def where(n: int) -> dict:
    total = sum(i * i for i in range(n))  # CPU-bound: the GIL is the child's own
    return {"pid": os.getpid(), "total": total}


@task(timeout=1.0)
def hang(pidfile: str) -> None:
    with open(pidfile, "w") as out:
        out.write(str(os.getpid()))
    while True:  # never checks ctx: only a kill stops it
        time.sleep(0.05)


@task(secrets=["token"])
def chatty(ctx) -> str:
    token = ctx.secret("token")
    print("hello from", os.getpid())
    print(f"the token is {token}")
    ctx.log("via ctx.log")
    ctx.logger.info("via logging")
    raise ValueError(f"bad token {token}")


@task(retries=2, backoff=0)
def flaky(counter: str, ctx) -> int:
    with open(counter, "a") as out:
        out.write(f"{ctx.attempt}\\n")
    if ctx.attempt < 3:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return ctx.attempt


@task(executor="process")
def in_process() -> int:
    return os.getpid()


@task(executor="thread")
def in_thread() -> int:
    return os.getpid()


@workflow
def cpu(n: int = 200_000):
    where(n)


@workflow
def chosen():
    in_process()
    in_thread()


@workflow
def hung(pidfile: str):
    hang(pidfile)


@workflow
def masked():
    chatty()


@workflow
def retried(counter: str):
    flaky(counter)
'''

HANG_FOREVER = '''\
"""A task that hangs with no timeout: only cancellation stops it."""
import os
import subprocess
import time

from orchestrion.spec.python import task, workflow


@task
def stuck(pidfile: str) -> None:
    sleeper = subprocess.Popen(["sleep", "600"])  # the kill must end it too
    with open(pidfile, "w") as out:
        out.write(f"{sleeper.pid} {os.getpid()}")
    while True:
        time.sleep(0.05)


@workflow
def forever(pidfile: str):
    stuck(pidfile)
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module: a workflow module name belongs to one file per process."""
    folder = tmp_path_factory.mktemp("procwf")
    (folder / "procwf.py").write_text(WORKFLOW)
    (folder / "procforever.py").write_text(HANG_FOREVER)
    return folder


@pytest.fixture
def app(tmp_path: Path, files: Path) -> Iterator[App]:
    ring = KeyRing([MasterKey("test", os.urandom(32))])
    with make_app(tmp_path, key_ring=ring) as opened:
        opened.workflows.load(files / "procwf.py")
        opened.workflows.load(files / "procforever.py")
        yield opened


@pytest.fixture
def worker(app: App) -> Iterator[Worker]:
    executor = ProcessExecutor()
    running = Worker(
        app.store.runs,
        app.store.workflows,
        app.store.notifier,
        app.code,
        WorkerSettings(concurrency=2, lease_seconds=5.0, heartbeat_every=0.2),
        app.clock,
        secrets=app.secrets.resolve_secrets,
        executor=executor,
    )
    running.start()
    yield running
    running.stop(grace=5)
    executor.close()


def _finish(app: App, run_id: str) -> RunRecord:
    deadline = time.monotonic() + _PATIENCE
    while not app.runs.get_run(run_id).state.finished:
        assert time.monotonic() < deadline, "run did not finish"
        app.store.notifier.wait_for_change(0.05)
    return app.runs.get_run(run_id)


def _pid_from(path: Path) -> int:
    deadline = time.monotonic() + _PATIENCE
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.02)
    return int(path.read_text().split()[-1])  # "PID" or "ATTEMPT PID"


def _gone(pid: int) -> bool:
    """True once `pid` no longer runs (or is a zombie not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_cpu_bound_task_runs_in_a_child_process(app: App, worker: Worker) -> None:
    run = _finish(app, app.runs.trigger("cpu").id)
    assert run.state is RunState.SUCCEEDED
    result = run.result["where"]
    assert result["total"] == sum(i * i for i in range(200_000))
    assert result["pid"] != os.getpid()


def test_a_hung_task_is_killed_at_its_timeout(app: App, worker: Worker, tmp_path: Path) -> None:
    pidfile = tmp_path / "hang.pid"
    run = app.runs.trigger("hung", {"pidfile": str(pidfile)})
    child = _pid_from(pidfile)
    finished = _finish(app, run.id)
    assert finished.state is RunState.FAILED
    [attempt] = app.runs.attempts(run.id)
    assert attempt.outcome == "failed"
    assert "timed out after 1.0s; its process run was stopped" in (attempt.error or "")
    assert _gone(child)
    _until_idle(worker)  # unlike a thread, nothing is left running


def _until_idle(worker: Worker) -> None:
    deadline = time.monotonic() + _PATIENCE
    while worker.busy:  # the task thread ends right after it reported
        assert time.monotonic() < deadline, "an attempt still runs"
        time.sleep(0.02)


def test_a_hung_task_and_what_it_started_are_killed_on_cancel(
    app: App, worker: Worker, tmp_path: Path
) -> None:
    pidfile = tmp_path / "forever.pid"
    run = app.runs.trigger("forever", {"pidfile": str(pidfile)})
    child = _pid_from(pidfile)
    grandchild = int(pidfile.read_text().split()[0])
    assert not _gone(child) and not _gone(grandchild)
    app.runs.cancel(run.id)
    assert _finish(app, run.id).state is RunState.CANCELED
    deadline = time.monotonic() + _PATIENCE
    while not _gone(child) or not _gone(grandchild) or worker.busy:
        assert time.monotonic() < deadline, "the canceled task's process still runs"
        time.sleep(0.02)


def test_errors_and_output_come_back_masked(app: App, worker: Worker) -> None:
    app.secrets.set_secret("default", "token", "s3cr3t-value")
    run = _finish(app, app.runs.trigger("masked").id)
    assert run.state is RunState.FAILED
    [attempt] = app.runs.attempts(run.id)
    assert attempt.error == "ValueError: bad token ***"
    assert attempt.error_type == "builtins.ValueError"
    assert "chatty" in (attempt.traceback or "") and "s3cr3t" not in (attempt.traceback or "")
    lines = [(log.stream, log.line) for log in app.runs.logs(run.id)]
    assert ("stdout", "the token is ***") in lines
    assert ("log", "via ctx.log") in lines
    assert ("log", "INFO orchestrion.task.masked.chatty: via logging") in lines
    [hello] = [line for stream, line in lines if line.startswith("hello from")]
    assert int(hello.split()[-1]) != os.getpid()
    assert all("s3cr3t" not in line for _, line in lines)


def test_retries_still_work(app: App, worker: Worker, tmp_path: Path) -> None:
    counter = tmp_path / "attempts.txt"
    run = _finish(app, app.runs.trigger("retried", {"counter": str(counter)}).id)
    assert run.state is RunState.SUCCEEDED
    assert run.result == {"flaky": 3}
    assert counter.read_text().split() == ["1", "2", "3"]
    outcomes = [a.outcome for a in app.runs.attempts(run.id)]
    assert outcomes == ["failed", "failed", "succeeded"]


KILLED = '''\
"""The first attempt hangs until its worker is SIGKILLed; the re-run returns."""
import os
import time

from orchestrion.spec.python import task, workflow


@task
def slow(marks: str, ctx) -> int:
    with open(marks, "a") as out:
        out.write(f"{ctx.attempt} {os.getpid()}\\n")
    while ctx.attempt == 1:
        time.sleep(0.05)
    return ctx.attempt


@workflow
def killed(marks: str):
    slow(marks)
'''


def test_a_sigkilled_worker_loses_nothing(tmp_path: Path) -> None:
    """A real ``orchestrion worker --executor process`` is SIGKILLed while its task runs in
    a child: the child exits with it (nothing runs on as an orphan), the attempt becomes
    lost once its lease lapses, and another worker re-runs it to success."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "killwf.py").write_text(KILLED)
    marks = tmp_path / "marks.txt"
    db = database_url_for(tmp_path / "kill.db")
    env = {**os.environ, "ORCHESTRION_LEASE_SECONDS": "2", "ORCHESTRION_HEARTBEAT_SECONDS": "0.3"}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    args = ["worker", "--executor", "process", "--workflows", str(folder), "--db", db]
    first = Proc("worker-1", args, tmp_path, env, tmp_path)
    second: Proc | None = None
    try:
        with App(Settings(database_url=db, lease_seconds=2.0)) as app:
            deadline = time.monotonic() + _PATIENCE
            while not any(w.name == "killed" for w in app.workflows.list_workflows()):
                assert first.alive(), first.output()
                assert time.monotonic() < deadline, first.output()
                time.sleep(0.05)
            run = app.runs.trigger("killed", {"marks": str(marks)})
            child = _pid_from(marks)
            assert child != first.pid and not _gone(child)
            first.signal(signal.SIGKILL)
            first.wait(_PATIENCE)
            while not _gone(child):  # its lifeline broke: it exits, not orphaned
                assert time.monotonic() < deadline, "the task's process outlived its worker"
                time.sleep(0.02)
            while [a.outcome for a in app.runs.attempts(run.id)] != ["lost"]:
                assert time.monotonic() < deadline, "the attempt was never marked lost"
                sweep(app.store.runs, time.time())  # the scheduler's housekeeping pass
                time.sleep(0.1)
            second = Proc("worker-2", args, tmp_path, env, tmp_path)
            finished = _finish(app, run.id)
            assert finished.state is RunState.SUCCEEDED, second.output()
            assert finished.result == {"slow": 2}
            assert [a.outcome for a in app.runs.attempts(run.id)] == ["lost", "succeeded"]
            assert [line.split()[0] for line in marks.read_text().splitlines()] == ["1", "2"]
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill_group()


def test_a_task_chooses_its_executor(app: App) -> None:
    """``@task(executor=...)`` wins over the worker's default, both ways."""
    for executor in (None, ProcessExecutor()):
        worker = Worker(
            app.store.runs,
            app.store.workflows,
            app.store.notifier,
            app.code,
            WorkerSettings(concurrency=2),
            executor=executor,
        )
        worker.start()
        try:
            run = _finish(app, app.runs.trigger("chosen").id)
        finally:
            worker.stop(grace=5)
            if executor is not None:
                executor.close()
        assert run.state is RunState.SUCCEEDED
        assert run.result["in_process"] != os.getpid()
        assert run.result["in_thread"] == os.getpid()
    spec = app.workflows.workflow("chosen")
    assert [t.executor for t in spec.tasks] == ["process", "thread"]


def test_the_worker_refuses_an_unknown_executor(tmp_path: Path) -> None:
    env = {**os.environ}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    args = ["worker", "--executor", "gpu", "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    proc = Proc("worker-bad", args, tmp_path, env, tmp_path)
    assert proc.wait(_PATIENCE) == 2
    assert "unknown executor 'gpu': expected thread, process, dask:ADDRESS" in proc.output()
