"""The Dask and Ray executors against real clusters, driven by real `Worker`s on real stores.

Nothing here is a test double. Each cluster is started once per test module (and per xdist
process) and shut down at its end, checked to leave none of its processes behind:

* Dask: a `LocalCluster` with one worker *process* (two threads) under a nanny, its
  scheduler on a free loopback port; the executor connects to it by address
  (``--executor dask:tcp://HOST:PORT`` here, ``dask://HOST:PORT`` for the worker process).
* Ray: a local Ray instance (``ray.init`` with two CPUs, no dashboard, its own temporary
  folder), whose tasks run in Ray's own worker processes; the worker process joins it with
  ``--executor ray`` and ``RAY_ADDRESS``. (``ray://`` needs a head from ``ray start``; see
  docs/architecture.md for why it is not run here.)

The tasks live in a workflow file that the cluster loads by path, and in a package next to
it that the cluster imports by name (on its workers' ``sys.path``), so what crosses to the
cluster is the pickled invocation and what comes back is the result, the task's own error
type and its captured stdout/logging. Covered on both clusters: success, errors, retries,
a hung task past its timeout (Ray kills its process; Dask cannot interrupt a running
thread, so the attempt is fenced and the run goes on while the call is abandoned), cancel,
a worker stopped while its task is on the cluster (released, re-run elsewhere), a cluster
worker process that dies (an attempt failure that orchestrion retries, never a silent
re-run by the cluster), and the real ``orchestrion worker --executor ...`` process pointed
at each cluster the way a user would.

Hung tasks never check `ctx`: they poll a *release* file that the test creates at its end,
so that a call a cluster cannot kill (Dask) ends before the next test and the cluster
closes without waiting for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.errors import OrchestrionError
from orchestrion.states import RunState
from orchestrion.store.records import RunRecord
from orchestrion.worker.cluster_executors import DaskExecutor, RayExecutor
from orchestrion.worker.executor_choice import executor_from_name
from orchestrion.worker.executors import Executor
from orchestrion.worker.loop import Worker, WorkerSettings
from orchestrion.worker.process_executor import ProcessExecutor
from tests.helpers import database_url_for, make_app
from tests.processes import Proc

_PATIENCE = 90.0  # guards against a hang; never a timing assertion

WORKFLOW = '''\
"""Tasks that run on a Dask or Ray cluster."""
import os
import time

from clusterlib.jobs import triple
from orchestrion.spec.python import task, workflow


class Flaky(Exception):
    """The task's own error type: the attempt must name it."""


def _hold(marks: str, release: str, attempt: int) -> None:
    with open(marks, "a") as out:
        out.write(f"{attempt} {os.getpid()}\\n")
    while not os.path.exists(release):  # never checks ctx: only a kill stops it
        time.sleep(0.05)


@task
def double(x: int, ctx) -> dict:
    print(f"doubling {x} in {os.getpid()}")
    ctx.log("via ctx.log")
    ctx.logger.info("via logging")
    return {"value": 2 * x, "pid": os.getpid()}


@task
def explode() -> None:
    raise Flaky("boom")


@task(retries=2, backoff=0)
def flaky(ctx) -> int:
    print(f"attempt {ctx.attempt}")
    if ctx.attempt < 3:
        raise Flaky(f"attempt {ctx.attempt} fails")
    return ctx.attempt


@task(timeout=2.0)
def hang(marks: str, release: str, ctx) -> None:
    _hold(marks, release, ctx.attempt)


@task
def forever(marks: str, release: str, ctx) -> None:
    _hold(marks, release, ctx.attempt)


@task(retries=1, backoff=0)
def die(marks: str, release: str, ctx) -> int:
    if ctx.attempt == 1:
        _hold(marks, release, ctx.attempt)  # the test kills this process
    return ctx.attempt


@task
def slow(marks: str, release: str, ctx) -> int:
    if ctx.attempt == 1:
        _hold(marks, release, ctx.attempt)
    return ctx.attempt


@workflow
def dbl(x: int = 21):
    double(x)


@workflow
def bad():
    explode()


@workflow
def retried():
    flaky()


@workflow
def hung(marks: str, release: str):
    hang(marks, release)


@workflow
def stuck(marks: str, release: str):
    forever(marks, release)


@workflow
def dies(marks: str, release: str):
    die(marks, release)


@workflow
def stopped(marks: str, release: str):
    slow(marks, release)


@workflow
def imported(x: int = 5):
    triple(x)
'''

#: A package the workflow imports its task from: its ref ``clusterlib.jobs:triple`` is
#: imported by name on the cluster, never loaded from the workflow's path.
JOBS = '''\
"""Task code in an importable package."""
import os

from orchestrion.spec.python import task


@task
def triple(x: int) -> dict:
    print(f"tripling {x}")
    return {"value": 3 * x, "pid": os.getpid()}
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow file and its package, in one folder (a module name belongs to one file
    per process, and cluster workers outlive a test)."""
    folder = tmp_path_factory.mktemp("clusterflows")
    (folder / "clusterwf.py").write_text(WORKFLOW)
    (folder / "clusterlib").mkdir()
    (folder / "clusterlib" / "__init__.py").write_text("")
    (folder / "clusterlib" / "jobs.py").write_text(JOBS)
    return folder


# ---------------------------------------------------------------------- clusters


def _descendants() -> set[int]:
    """The pids of every process this one started, however deep (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _gone(pid: int) -> bool:
    """True once `pid` no longer runs (or is a zombie not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _PATIENCE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _left_behind(before: set[int], ray: bool) -> list[str]:
    """Command lines of the processes started since `before` that still run: Ray's (each
    runs a program of the ray package or is named ``ray::...``), or else the others
    (Dask's), leaving out multiprocessing's resource tracker (one per interpreter, kept
    until it exits). The split matters when one test process runs both clusters: the
    other may have started processes meanwhile."""
    found = []
    for pid in _descendants() - before:
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            of_ray = command.startswith("ray::") or f"{os.sep}ray{os.sep}" in command
            if _gone(pid) or "resource_tracker" in command or of_ray != ray:
                continue
            found.append(f"{pid}: {command}")
    return found


def _no_leftovers(before: set[int], who: str) -> None:
    deadline = time.monotonic() + _PATIENCE
    while left := _left_behind(before, ray=who == "Ray"):
        assert time.monotonic() < deadline, f"{who} left processes behind: {left}"
        time.sleep(0.1)


class Cluster:
    """One running cluster: how to make executors for it and how users name it."""

    def __init__(self, kind: str, address: str, env: dict[str, str]) -> None:
        self.kind = kind
        #: What ``orchestrion worker --executor`` is given.
        self.address = address
        #: Environment a separate worker process needs to find the cluster.
        self.env = env
        self.executor: Executor


@pytest.fixture(scope="module")
def dask_cluster(files: Path) -> Iterator[Cluster]:
    from dask.distributed import LocalCluster

    before = _descendants()
    # Spawned Dask workers start with this process's sys.path: the package is importable
    # there by name, as on a cluster whose image ships the code.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(files))
        cluster = LocalCluster(  # type: ignore[no-untyped-call]  # distributed has no annotations here
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            # The scheduler serves HTTP (health, metrics) even without a dashboard, on 8787
            # unless told otherwise: a free port, so that parallel test processes coexist.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
    try:
        address = cluster.scheduler_address  # tcp://127.0.0.1:PORT
        assert address.startswith("tcp://")
        # The worker process is given the short form, dask://HOST:PORT.
        found = Cluster("dask", address.replace("tcp://", "dask://", 1), {})
        executor = executor_from_name(f"dask:{address}")
        assert isinstance(executor, DaskExecutor)
        found.executor = executor
        yield found
        found.executor.close()
    finally:
        cluster.close()
    _no_leftovers(before, "Dask")


@pytest.fixture(scope="module")
def ray_cluster(files: Path) -> Iterator[Cluster]:
    import ray

    before = _descendants()
    # Started from `uv run`, Ray would otherwise package this folder and build a fresh
    # environment for its workers; here they use this interpreter.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        patch.delenv("RAY_ADDRESS", raising=False)
        # A short folder of its own (Ray's socket paths must stay short), so that nothing
        # here joins, or is joined by, another Ray instance on this machine.
        temp = tempfile.mkdtemp(prefix="orc-ray-", dir="/tmp")
        context = ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=temp,
            runtime_env={"env_vars": {"PYTHONPATH": str(files)}},
        )
        try:
            # ray.init is typed to return a BaseContext; a local start returns a RayContext.
            gcs = context.address_info["gcs_address"]  # type: ignore[attr-defined]
            env = {"RAY_ADDRESS": gcs, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
            found = Cluster("ray", "ray", env)
            found.executor = RayExecutor(ray)
            # Start Ray's worker processes now, not inside the first test's time budget.
            ray.get([ray.remote(lambda: os.getpid()).remote() for _ in range(2)])
            yield found
            found.executor.close()
        finally:
            ray.shutdown()
    _no_leftovers(before, "Ray")
    shutil.rmtree(temp, ignore_errors=True)  # Ray's session folder: logs, sockets


#: Run a test on each cluster (each xdist process starts a cluster the first time one of
#: its tests needs it, and keeps it for the module).
ON_EACH_CLUSTER = pytest.mark.parametrize("cluster", ["dask", "ray"], indirect=True)


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Cluster:
    found: Cluster = request.getfixturevalue(f"{request.param}_cluster")
    return found


@pytest.fixture
def app(tmp_path: Path, files: Path) -> Iterator[App]:
    with make_app(tmp_path) as opened:
        opened.workflows.load(files / "clusterwf.py")
        yield opened
    (tmp_path / "release").touch()  # let calls a cluster could not kill end


def _worker(app: App, executor: Executor) -> Worker:
    worker = Worker(
        app.store.runs,
        app.store.workflows,
        app.store.notifier,
        app.code,
        WorkerSettings(concurrency=2, lease_seconds=5.0, heartbeat_every=0.2),
        app.clock,
        executor=executor,
    )
    worker.start()
    return worker


@contextlib.contextmanager
def _working(app: App, cluster: Cluster) -> Iterator[Worker]:
    worker = _worker(app, cluster.executor)
    try:
        yield worker
    finally:
        worker.stop(grace=2)


def _finish(app: App, run_id: str) -> RunRecord:
    deadline = time.monotonic() + _PATIENCE
    while not app.runs.get_run(run_id).state.finished:
        assert time.monotonic() < deadline, "run did not finish"
        app.store.notifier.wait_for_change(0.05)
    return app.runs.get_run(run_id)


def _marks(path: Path, count: int = 1) -> list[tuple[int, int]]:
    """``(attempt, pid)`` of each hold that started, once `count` have."""
    _until(
        lambda: path.exists() and len(path.read_text().splitlines()) >= count,
        "the task never started on the cluster",
    )
    return [(int(a), int(p)) for a, p in (line.split() for line in path.read_text().splitlines())]


def _holding(tmp_path: Path) -> dict[str, str]:
    return {"marks": str(tmp_path / "marks.txt"), "release": str(tmp_path / "release")}


# ---------------------------------------------------------------------- the tests


@ON_EACH_CLUSTER
def test_result_and_captured_output_come_back(app: App, cluster: Cluster) -> None:
    with _working(app, cluster):
        run = _finish(app, app.runs.trigger("dbl").id)
    assert run.state is RunState.SUCCEEDED
    result = run.result["double"]
    assert result["value"] == 42
    assert result["pid"] != os.getpid()  # it ran in one of the cluster's processes
    lines = [(log.stream, log.line) for log in app.runs.logs(run.id)]
    assert lines == [
        ("stdout", f"doubling 21 in {result['pid']}"),
        ("log", "via ctx.log"),
        ("log", "INFO orchestrion.task.dbl.double: via logging"),
    ]


@ON_EACH_CLUSTER
def test_task_code_imported_by_name_on_the_cluster(app: App, cluster: Cluster) -> None:
    with _working(app, cluster):
        run = _finish(app, app.runs.trigger("imported").id)
    assert run.state is RunState.SUCCEEDED, app.runs.attempts(run.id)
    assert run.result["triple"]["value"] == 15
    assert run.result["triple"]["pid"] != os.getpid()
    assert [log.line for log in app.runs.logs(run.id)] == ["tripling 5"]


@ON_EACH_CLUSTER
def test_the_tasks_own_error_is_named(app: App, cluster: Cluster) -> None:
    with _working(app, cluster):
        run = _finish(app, app.runs.trigger("bad").id)
    assert run.state is RunState.FAILED
    [attempt] = app.runs.attempts(run.id)
    assert attempt.error == "Flaky: boom"
    assert attempt.error_type == "clusterwf.Flaky"
    assert "explode" in (attempt.traceback or "")


@ON_EACH_CLUSTER
def test_retries_run_on_the_cluster_again(app: App, cluster: Cluster) -> None:
    with _working(app, cluster):
        run = _finish(app, app.runs.trigger("retried").id)
    assert run.state is RunState.SUCCEEDED and run.result == {"flaky": 3}
    attempts = app.runs.attempts(run.id)
    assert [a.outcome for a in attempts] == ["failed", "failed", "succeeded"]
    assert [a.error for a in attempts[:2]] == ["Flaky: attempt 1 fails", "Flaky: attempt 2 fails"]
    assert [log.line for log in app.runs.logs(run.id)] == ["attempt 1", "attempt 2", "attempt 3"]


@ON_EACH_CLUSTER
def test_a_hung_task_past_its_timeout_is_stopped_and_the_run_goes_on(
    app: App, cluster: Cluster, tmp_path: Path
) -> None:
    """The attempt fails as timed out and the run finishes; Ray kills the call, Dask
    abandons it (its thread runs on until released), and the cluster takes the next task.
    A timeout counts from submission, so a call still waiting for a cluster process may be
    stopped before it started: only a call that started has a process to check."""
    hold = _holding(tmp_path)
    with _working(app, cluster):
        run = _finish(app, app.runs.trigger("hung", hold).id)
        assert run.state is RunState.FAILED
        [attempt] = app.runs.attempts(run.id)
        assert attempt.error_type == "orchestrion.errors.TaskTimeout"
        assert f"timed out after 2.0s; its {cluster.kind} run was stopped" in (attempt.error or "")
        marks = Path(hold["marks"])
        if cluster.kind == "ray" and marks.exists():  # force-canceled: its process was killed
            [(_, pid)] = _marks(marks)
            _until(lambda: _gone(pid), "the timed-out Ray task still runs")
        after = _finish(app, app.runs.trigger("dbl").id)
    assert after.state is RunState.SUCCEEDED and after.result["double"]["value"] == 42


@ON_EACH_CLUSTER
def test_cancel_stops_the_task_on_the_cluster(app: App, cluster: Cluster, tmp_path: Path) -> None:
    hold = _holding(tmp_path)
    with _working(app, cluster) as worker:
        run = app.runs.trigger("stuck", hold)
        [(_, pid)] = _marks(Path(hold["marks"]))
        app.runs.cancel(run.id)
        assert _finish(app, run.id).state is RunState.CANCELED
        _until(lambda: not worker.busy, "the canceled attempt still waits on the cluster")
    [attempt] = app.runs.attempts(run.id)
    assert attempt.outcome == "canceled"
    if cluster.kind == "ray":
        _until(lambda: _gone(pid), "the canceled Ray task still runs")


@ON_EACH_CLUSTER
def test_a_stopped_worker_releases_its_task_and_another_reruns_it(
    app: App, cluster: Cluster, tmp_path: Path
) -> None:
    hold = _holding(tmp_path)
    first = _worker(app, cluster.executor)
    try:
        run = app.runs.trigger("stopped", hold)
        [(_, pid)] = _marks(Path(hold["marks"]))
    finally:
        first.stop(grace=0.2)  # the task ignores it: released, and stopped on the cluster
    assert [a.outcome for a in app.runs.attempts(run.id)] == ["lost"]
    if cluster.kind == "ray":
        _until(lambda: _gone(pid), "the released Ray task still runs")
    with _working(app, cluster):
        finished = _finish(app, run.id)
    assert finished.state is RunState.SUCCEEDED and finished.result == {"slow": 2}
    assert [a.outcome for a in app.runs.attempts(run.id)] == ["lost", "succeeded"]


@ON_EACH_CLUSTER
def test_a_dead_cluster_process_fails_the_attempt_and_orchestrion_retries(
    app: App, cluster: Cluster, tmp_path: Path
) -> None:
    """SIGKILL the cluster process running the task: the attempt fails as the cluster's
    error (the cluster itself does not run it again behind the worker's back), and the
    task's own retry runs it once more."""
    hold = _holding(tmp_path)
    with _working(app, cluster):
        run = app.runs.trigger("dies", hold)
        [(_, pid)] = _marks(Path(hold["marks"]))
        os.kill(pid, signal.SIGKILL)
        finished = _finish(app, run.id)
    assert finished.state is RunState.SUCCEEDED and finished.result == {"die": 2}
    first, second = app.runs.attempts(run.id)
    assert first.outcome == "failed"
    assert f"the {cluster.kind.capitalize()} cluster could not run the task" in (first.error or "")
    assert second.outcome == "succeeded"
    assert [attempt for attempt, _ in _marks(Path(hold["marks"]))] == [1]


@ON_EACH_CLUSTER
def test_the_worker_process_hands_tasks_to_the_cluster(
    app: App, cluster: Cluster, tmp_path: Path, files: Path
) -> None:
    """``orchestrion worker --executor ...`` in its own process, pointed at the cluster the
    way a user would: by its scheduler's address (Dask) or ``RAY_ADDRESS`` (Ray)."""
    env = {**os.environ, **cluster.env, "ORCHESTRION_HEARTBEAT_SECONDS": "0.3"}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    db = database_url_for(tmp_path / "app.db")  # the database `app` uses
    args = ["worker", "--executor", cluster.address, "--workflows", str(files), "--db", db]
    proc = Proc(f"worker-{cluster.kind}", args, tmp_path, env, tmp_path)
    try:
        run = app.runs.trigger("dbl", {"x": 4})
        finished = _finish(app, run.id)
        assert finished.state is RunState.SUCCEEDED, proc.output()
        pid = finished.result["double"]["pid"]
        assert pid not in (os.getpid(), proc.pid)
        assert app.runs.logs(run.id)[0].line == f"doubling 4 in {pid}"
        proc.signal(signal.SIGTERM)
        assert proc.wait(_PATIENCE) == 0, proc.output()
    finally:
        proc.kill_group()


# ---------------------------------------------------------------------- choosing


def test_executor_names() -> None:
    assert executor_from_name("thread") is None
    process = executor_from_name("process")
    assert isinstance(process, ProcessExecutor)
    process.close()
    with pytest.raises(OrchestrionError, match="unknown executor 'gpu'"):
        executor_from_name("gpu")
    with pytest.raises(OrchestrionError, match="unknown executor 'dask'"):
        executor_from_name("dask")  # the scheduler's address is needed


def test_a_missing_cluster_library_is_a_clear_error(tmp_path: Path) -> None:
    """Where dask or ray is not installed, choosing it says so (checked in a child whose
    imports of both fail, since both are installed here)."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('dask', 'distributed', 'ray'):\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    code = (
        "from orchestrion.errors import OrchestrionError\n"
        "from orchestrion.worker.executor_choice import executor_from_name\n"
        "for name in ('dask:tcp://127.0.0.1:1', 'ray'):\n"
        "    try:\n"
        "        executor_from_name(name)\n"
        "    except OrchestrionError as exc:\n"
        "        print(exc)\n"
    )
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stderr
    assert "needs 'distributed' installed on the worker" in lines[0]
    assert "pip install orchestrion[dask]" in lines[0]
    assert "needs 'ray' installed on the worker" in lines[1]
    assert "pip install orchestrion[ray]" in lines[1]
