"""Container tasks (issue 15, part 2) on a real engine: Podman's Docker-compatible API.

A worker of this process runs each workflow; `podman ps -a` is the witness that timed-out
and canceled containers are gone. The killed-worker case, with real worker processes, is
in tests/crash/test_container_orphans.py. Runs on SQLite, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.runtime import plan_worker
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.records import RunRecord, TaskRunRecord
from orchestrion.worker.containers.settings import ContainerSettings
from tests.containers import HOST, IMAGE, containers_of, require_podman
from tests.helpers import database_url_for, task_context

KEY = MasterKey("k", os.urandom(32))
SECRET = "hunter2-Xq9-zz"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    require_podman()
    settings = Settings(
        database_url=database_url_for(tmp_path / "c.db"),
        key_ring=KeyRing([KEY]),
        lease_seconds=5.0,
        heartbeat_every=0.2,
        containers=ContainerSettings(host=HOST, work_root=str(tmp_path / "work"), stop_grace=1.0),
    )
    with App(settings).open() as app:
        app.secrets.set_secret("default", "warehouse-password", SECRET)
        plan = plan_worker(
            settings, queues=("default",), concurrency=2, labels=None, executor="thread"
        )
        with app.runtime.worker(plan, grace=2.0):
            yield app


def _start(app: App, text: str, **params: Any) -> str:
    spec = load_yaml_text(text)
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    return app.runs.trigger(spec.name, params).id


def _wait(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _finished(app: App, run_id: str) -> tuple[RunRecord, TaskRunRecord]:
    run = _wait("the run to finish", lambda: _done(app, run_id))
    (task,) = app.runs.task_runs(run_id)
    return run, task


def _done(app: App, run_id: str) -> RunRecord | None:
    run = app.runs.get_run(run_id)
    return run if run.state.finished else None


def _lines(app: App, run_id: str) -> list[str]:
    return [f"{log.stream}: {log.line}" for log in app.runs.logs(run_id)]


def _workflow(name: str, container: str, **task: str) -> str:
    extra = "".join(f"\n    {key}: {value}" for key, value in task.items())
    return f"""
name: {name}
params:
  day: {{type: string, default: "2024-05-01"}}
tasks:
  job:{extra}
    container:
      image: {IMAGE}
      pull: never
{container}
"""


def test_output_streams_into_the_log_as_the_container_prints(app: App) -> None:
    run_id = _start(
        app,
        _workflow(
            "streams",
            "      command: [sh, -c, 'echo first {{ params.day }}; echo oops >&2; sleep 3;"
            " echo second']",
        ),
    )
    seen = _wait("the first line", lambda: "stdout: first 2024-05-01" in _lines(app, run_id))
    assert seen
    assert "stdout: second" not in _lines(app, run_id)  # printed 3 s later: still running
    assert app.runs.get_run(run_id).state.value == "running"
    run, task = _finished(app, run_id)
    assert run.state.value == "succeeded", task.error
    assert task.result == "second"
    lines = _lines(app, run_id)
    assert "stderr: oops" in lines and "stdout: second" in lines
    assert containers_of(run_id) == []


def test_result_file_inputs_env_and_resources(app: App) -> None:
    command = (
        "      command: [sh, -c, 'cat /work/inputs.json > /out.json; mkdir -p /out;"
        ' printf "{\\"mode\\": \\"%s\\", \\"day\\": \\"%s\\", \\"inputs\\": %s}"'
        ' "$MODE" "$DAY" "$(cat /work/inputs.json)" > /out/result.json\']\n'
        "      env: {MODE: full, DAY: '{{ params.day }}'}\n"
        "      resources: {cpus: 0.5, memory: 64Mi}\n"
        "      result: {file: /out/result.json}"
    )
    run_id = _start(app, _workflow("files", command), day="2024-06-30")
    run, task = _finished(app, run_id)
    assert run.state.value == "succeeded", task.error
    assert task.result == {
        "mode": "full",
        "day": "2024-06-30",
        "inputs": {"params": {"day": "2024-06-30"}, "tasks": {}, "item": None},
    }


def test_stdout_json_and_a_failing_exit_status(app: App) -> None:
    ok = _start(
        app,
        _workflow("json_out", "      command: [echo, '[1, 2, 3]']\n      result: stdout"),
    )
    run, task = _finished(app, ok)
    assert run.state.value == "succeeded", task.error
    assert task.result == [1, 2, 3]
    bad = _start(app, _workflow("exits", "      command: [sh, -c, 'echo broken pipe >&2; exit 3']"))
    run, task = _finished(app, bad)
    assert run.state.value == "failed"
    assert task.error is not None
    assert task.error.startswith("container exited with status 3; stderr ends with:\n")
    assert "broken pipe" in task.error
    assert containers_of(bad) == []


def test_a_timed_out_container_is_stopped_and_removed(app: App) -> None:
    run_id = _start(app, _workflow("slow", "      command: [sleep, '300']", timeout="1s"))
    run, task = _finished(app, run_id)
    assert run.state.value == "failed"
    # Ours ("timed out after 1s; ...") or, when the engine is slow to kill, the worker's own.
    assert task.error is not None and task.error.startswith("timed out"), task.error
    # When the worker's own limit spoke first, the removal may still be under way.
    _wait("the container to be removed", lambda: containers_of(run_id) == [], timeout=20)


def test_a_canceled_container_is_stopped_and_removed(app: App) -> None:
    run_id = _start(app, _workflow("cancel_me", "      command: [sleep, '300']"))
    _wait("the container to run", lambda: containers_of(run_id, running=True))
    assert app.runs.cancel(run_id)
    run, _ = _finished(app, run_id)
    assert run.state.value == "canceled"
    _wait("the container to be removed", lambda: containers_of(run_id) == [], timeout=20)


def test_secrets_reach_the_container_and_never_the_logs(app: App) -> None:
    command = (
        '      command: [sh, -c, \'echo "pw=$DB_PASSWORD"; echo "$DB_PASSWORD" >&2;'
        ' printf %s "$DB_PASSWORD" | wc -c\']\n'
        "      secrets: {DB_PASSWORD: warehouse-password}"
    )
    run_id = _start(app, _workflow("secretive", command))
    run, task = _finished(app, run_id)
    assert run.state.value == "succeeded", task.error
    assert task.result.strip() == str(len(SECRET))  # the value reached the container
    lines = _lines(app, run_id)
    assert "stdout: pw=***" in lines and "stderr: ***" in lines
    assert not any(SECRET in line for line in lines)


def test_a_missing_image_is_a_clear_error(app: App) -> None:
    absent = "localhost/orchestrion-test/absent:1"
    never = _start(
        app, f"name: never\ntasks:\n  job:\n    container: {{image: '{absent}', pull: never}}\n"
    )
    _, task = _finished(app, never)
    assert task.error == (
        f"image '{absent}' is not on the container engine and the task says pull: never;"
        " build or load it on the worker's engine first"
    )
    pulled = _start(app, f"name: pulled\ntasks:\n  job:\n    container: {absent}\n")
    _, task = _finished(app, pulled)
    assert task.error is not None
    assert task.error.startswith(f"cannot pull image '{absent}': "), task.error
    assert containers_of(pulled) == []


def test_an_unreachable_engine_names_the_setting(tmp_path: Path) -> None:
    require_podman()
    from orchestrion.errors import TaskError
    from orchestrion.spec.container import ContainerAction
    from orchestrion.worker.containers.run import run_container

    ctx = task_context()
    settings = ContainerSettings(host=f"unix://{tmp_path}/none.sock")
    with pytest.raises(TaskError, match="ORCHESTRION_CONTAINER_HOST"):
        run_container(ContainerAction(image=IMAGE), ctx, timeout=5, settings=settings)


def _labelled(run_id: str, task_run: int, attempt: int) -> str:
    """A sleeping container started by hand with an attempt's labels."""
    out = subprocess.run(
        ["podman", "run", "-d", "--label", f"dev.orchestrion.run={run_id}",
         "--label", f"dev.orchestrion.task-run={task_run}",
         "--label", f"dev.orchestrion.attempt={attempt}", IMAGE, "sleep", "300"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_the_reaper_removes_only_containers_of_attempts_that_are_over(app: App) -> None:
    from orchestrion.worker.containers.reaper import reap_orphans

    done = _start(app, _workflow("quick", "      command: [echo, hi]"))
    _, task = _finished(app, done)
    strangers = f"{uuid.uuid4().hex[:20]}"  # another installation's run, same task run id
    _labelled(done, task.id, 1)  # its attempt 1 is over: an orphan
    _labelled(done, task.id, 2)  # no such attempt here (yet): left alone
    _labelled(strangers, task.id, 1)
    settings = ContainerSettings(host=HOST)
    try:
        removed = reap_orphans(app.store.reads.attempts_of, settings)
        assert len(removed) == 1
        assert containers_of(done) != [] and containers_of(strangers) != []
        assert reap_orphans(app.store.reads.attempts_of, settings) == []
    finally:
        for run_id in (done, strangers):
            for name in containers_of(run_id):
                subprocess.run(
                    ["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False
                )


def test_a_container_past_its_memory_limit_fails_saying_so(app: App) -> None:
    command = (
        "      command: [sh, -c, 'x=$(head -c 60000000 /dev/zero | tr \"\\0\" a); echo ${#x}']\n"
        "      resources: {memory: 16Mi}"
    )
    run_id = _start(app, _workflow("greedy", command))
    run, task = _finished(app, run_id)
    assert run.state.value == "failed"
    assert task.error is not None
    # Docker says OOMKilled; Podman on cgroup v1 only that SIGKILL ended it under a limit.
    assert task.error.startswith(
        (
            "container killed: out of memory (limit 16Mi)",
            "container exited with status 137 (killed by SIGKILL; out of memory? its limit is"
            " 16Mi)",
        )
    ), task.error
    assert containers_of(run_id) == []


def test_a_command_the_image_lacks_is_a_clear_error(tmp_path: Path) -> None:
    require_podman()
    from orchestrion.errors import TaskError
    from orchestrion.spec.container import ContainerAction
    from orchestrion.worker.containers.run import run_container

    run_id = uuid.uuid4().hex[:20]
    ctx = task_context(run_id=run_id)
    settings = ContainerSettings(host=HOST, work_root=str(tmp_path / "work"))
    action = ContainerAction(image=IMAGE, command=("no-such-program", "x"), pull="never")
    with pytest.raises(TaskError, match=r"cannot start the container: .*no-such-program"):
        run_container(action, ctx, timeout=30, settings=settings)
    assert containers_of(run_id) == []
    assert list((tmp_path / "work").iterdir()) == []  # the work folder went with it


@pytest.mark.parametrize("before", [65_536 - 5, 65_536 - 1, 65_536 - len(SECRET) + 1])
def test_no_fragment_of_a_secret_survives_a_cut_line(tmp_path: Path, before: int) -> None:
    """A line past 64 KiB is cut; a secret straddling the cut leaves no fragment behind."""
    require_podman()
    from orchestrion.auth.secret_box import Secret
    from orchestrion.spec.container import ContainerAction
    from orchestrion.worker.containers.run import run_container

    lines: list[str] = []
    ctx = task_context(
        run_id=uuid.uuid4().hex[:20],
        secret_values={"pw": Secret(SECRET)},
        log_sink=lambda stream, line: lines.append(line),
    )
    script = f"head -c {before} /dev/zero | tr '\\0' a; printf '%s\\n' \"$PW\"; echo after"
    action = ContainerAction(image=IMAGE, command=("sh", "-c", script), pull="never")
    settings = ContainerSettings(host=HOST, work_root=str(tmp_path / "work"))
    result = run_container(action, ctx, timeout=60, extra_env={"PW": SECRET}, settings=settings)
    assert result == "after"
    assert lines[0].endswith(" [line truncated]") and len(lines) == 2
    head = lines[0].removesuffix(" [line truncated]").rstrip("*")
    assert set(head) == {"a"}, "a fragment of the secret survived the cut"
