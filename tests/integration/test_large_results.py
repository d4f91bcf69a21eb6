"""Large results and artifacts with a real worker process, on SQLite or PostgreSQL
(``ORCHESTRION_TEST_DATABASE``): a result over the threshold goes to the object store and
reaches a Python task as its value and a shell task as a file, intact; artifacts of both
kinds of task are listed by the App, the API and the CLI (``--server`` too); a result over
the hard cap fails its task with a message naming the task, the size and the cap; and
retention deletes the objects with their runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.states import RunState
from orchestrion.store.objects import ObjectRef, ObjectsSettings
from tests.containers import HOST, IMAGE, require_podman
from tests.helpers import admin_client, by_name, db_arg, make_app, serve_api
from tests.processes import Proc

#: Small enough to keep CI fast; the 50 MB case is bench/large_result_bench.py.
SIZE = 2_000_000
THRESHOLD = 64 * 1024
CAP = 3_000_000

FLOW = """\
import hashlib
import pathlib

from orchestrion import artifact
from orchestrion.spec.python import shell, task, workflow


@task
def produce(size: int) -> dict:
    artifact.markdown("# Load\\n\\n<script>alert('x')</script> **done**", title="summary")
    artifact.table([{"file": "a.csv", "rows": 3}, {"file": "b.csv", "rows": 5}], title="files")
    artifact.link("https://example.com/dash", title="dashboard")
    path = pathlib.Path("report.csv")
    path.write_text("a,b\\n1,2\\n")
    artifact.file(path, title="report.csv")
    rows = [f"row-{i}-é" for i in range(size // 16)]
    return {"rows": rows, "blob": "x" * (size // 2)}


@task
def check(data: dict) -> dict:
    return {"rows": len(data["rows"]), "last": data["rows"][-1], "blob": len(data["blob"])}


@task(executor="process")
def elsewhere() -> str:
    artifact.markdown("from a child process", title="child")
    return "z" * 100_000


@workflow
def apart():
    elsewhere()


@workflow
def big(size: int = 1000):
    data = produce(size)
    check(data)
    shell(
        "measure",
        script='sha256sum "$DATA" | cut -c1-64; '
        'echo \\'{"kind": "markdown", "text": "measured *it*"}\\' >> "$ORCHESTRION_ARTIFACTS"',
        env={"DATA": f"{data}"},
    )
"""


@dataclass
class Scene:
    app: App
    root: Path
    objects: Path
    worker: Proc


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("large")
    objects = root / "objects"
    settings = ObjectsSettings(url=str(objects), threshold=THRESHOLD, max_bytes=CAP)
    app = make_app(root, results=settings)
    (root / "big.py").write_text(FLOW)
    app.workflows.load(root / "big.py")
    env = {
        **os.environ,
        "ORCHESTRION_RESULTS_URL": str(objects),
        "ORCHESTRION_RESULTS_THRESHOLD": str(THRESHOLD),
        "ORCHESTRION_RESULTS_MAX_BYTES": str(CAP),
        "ORCHESTRION_DEV_MODE": "1",
        "ORCHESTRION_CONTAINER_HOST": HOST,
        "ORCHESTRION_CONTAINER_WORK_DIR": str(root / "container-work"),
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    args = ["worker", "--db", db_arg(root / "app.db"), "--concurrency", "2"]
    worker = Proc("worker", args, root, env, root)
    try:
        yield Scene(app, root, objects, worker)
    finally:
        worker.kill_group()
        app.close()


def _finish(scene: Scene, run_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not scene.app.runs.get_run(run_id).state.finished:
        assert scene.worker.alive(), scene.worker.output()
        assert time.monotonic() < deadline, scene.worker.output()
        time.sleep(0.1)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and ".staging" not in p.parts]


def test_a_large_result_reaches_python_and_shell_tasks_intact(scene: Scene) -> None:
    run = scene.app.runs.trigger("big", {"size": SIZE})
    _finish(scene, run.id)
    assert scene.app.runs.get_run(run.id).state is RunState.SUCCEEDED
    tasks = by_name(scene.app.runs.task_runs(run.id))
    ref = ObjectRef.of(tasks["produce"].result)
    assert ref is not None, tasks["produce"].result
    assert ref.uri.startswith(scene.objects.as_uri() + "/")
    with scene.app.outputs.result_content(run.id, tasks["produce"].id)[1] as stream:
        content = stream.read()
    assert len(content) == ref.size > SIZE
    assert hashlib.sha256(content).hexdigest() == ref.sha256
    value = json.loads(content)
    assert len(value["rows"]) == SIZE // 16 and value["blob"] == "x" * (SIZE // 2)
    # Python downstream: the value; shell downstream: a file with the very bytes.
    last = f"row-{SIZE // 16 - 1}-é"
    assert tasks["check"].result == {"rows": SIZE // 16, "last": last, "blob": SIZE // 2}
    assert tasks["measure"].result == ref.sha256
    # Small results stay in the database.
    assert ObjectRef.of(tasks["check"].result) is None

    kinds = [(a.task_name, a.kind, a.title) for a in scene.app.outputs.artifacts(run.id)]
    assert kinds == [
        ("produce", "markdown", "summary"),
        ("produce", "table", "files"),
        ("produce", "link", "dashboard"),
        ("produce", "file", "report.csv"),
        ("measure", "markdown", None),
    ]
    file_artifact = scene.app.outputs.artifacts(run.id)[3]
    with scene.app.outputs.artifact_content(run.id, file_artifact.id)[1] as stream:
        assert stream.read() == b"a,b\n1,2\n"

    local = ["runs", "artifacts", run.id, "--db", db_arg(scene.root / "app.db")]
    shown = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *local],
        env={**os.environ, "ORCHESTRION_RESULTS_URL": str(scene.objects), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "summary" in shown.stdout and "report.csv" in shown.stdout
    assert scene.objects.as_uri() in shown.stdout  # the file artifact: its size and place

    with serve_api(scene.app) as url, admin_client(scene.app, url) as client:
        listed = client.get(f"/api/v1/runs/{run.id}/artifacts")
        assert listed.status_code == 200
        assert [a["kind"] for a in listed.json()] == [k for _, k, _ in kinds]
        where = client.get(f"/api/v1/runs/{run.id}/results/{tasks['produce'].id}").json()
        assert where["object"]["sha256"] == ref.sha256 and where["object"]["size"] == ref.size
        got = client.get(f"/api/v1/runs/{run.id}/results/{tasks['produce'].id}/content")
        assert hashlib.sha256(got.content).hexdigest() == ref.sha256
        small = client.get(f"/api/v1/runs/{run.id}/results/{tasks['check'].id}")
        assert small.status_code == 404 and "no stored result" in small.text
        anonymous = client.get(
            f"/api/v1/runs/{run.id}/results/{tasks['produce'].id}/content",
            headers={"Authorization": ""},
        )
        assert anonymous.status_code == 401
        token = client.headers["Authorization"].removeprefix("Bearer ")
        command = ["runs", "artifacts", run.id, "--server", url, "-o", "json"]
        cli = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *command],
            env={**os.environ, "ORCHESTRION_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert [a["title"] for a in json.loads(cli.stdout)][:2] == ["summary", "files"]
        command = ["runs", "result", run.id, str(tasks["produce"].id), "--server", url]
        streamed = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *command],
            env={**os.environ, "ORCHESTRION_TOKEN": token},
            capture_output=True,
            timeout=60,
        )
        assert streamed.returncode == 0, streamed.stderr
        assert hashlib.sha256(streamed.stdout).hexdigest() == ref.sha256


def test_a_result_over_the_cap_fails_its_task_by_name(scene: Scene) -> None:
    run = scene.app.runs.trigger("big", {"size": 2 * CAP})
    _finish(scene, run.id)
    produce = by_name(scene.app.runs.task_runs(run.id))["produce"]
    assert produce.state.value == "failed"
    assert "task 'produce'" in (produce.error or "")
    assert f"the cap of {CAP:,} bytes" in (produce.error or "")
    assert "ORCHESTRION_RESULTS_MAX_BYTES" in (produce.error or "")


def test_retention_deletes_the_objects_with_their_runs(scene: Scene) -> None:
    run = scene.app.runs.trigger("big", {"size": SIZE})
    _finish(scene, run.id)
    assert scene.app.runs.get_run(run.id).state is RunState.SUCCEEDED
    assert _files(scene.objects), "the run stored nothing"
    time.sleep(0.05)
    report = scene.app.retention.prune(older_than=0.01)
    assert report.counts.runs >= 1
    assert _files(scene.objects) == []
    assert scene.app.store.artifacts.artifacts(run.id) == []


BOXED = f"""
name: boxed
tasks:
  produce:
    shell:
      argv: [{sys.executable}, -c, "import json; print(json.dumps('x' * 100000))"]
      json_output: true
  box:
    container:
      image: {IMAGE}
      pull: never
      command: [sh, -c, "wc -c < {{{{ tasks.produce }}}}"]
"""


def test_a_container_task_finds_a_stored_result_under_its_work_folder(scene: Scene) -> None:
    require_podman()
    spec = load_yaml_text(BOXED)
    scene.app.store.workflows.register_workflow(spec, source=None, now=scene.app.clock.now())
    run = scene.app.runs.trigger("boxed")
    _finish(scene, run.id)
    tasks = by_name(scene.app.runs.task_runs(run.id))
    ref = ObjectRef.of(tasks["produce"].result)
    assert ref is not None and ref.size == 100_002
    assert tasks["box"].state.value == "succeeded", tasks["box"].error
    assert str(tasks["box"].result).strip() == "100002"


def test_a_task_in_the_process_executor_stores_its_result_and_artifacts(scene: Scene) -> None:
    run = scene.app.runs.trigger("apart")
    _finish(scene, run.id)
    [task_run] = scene.app.runs.task_runs(run.id)
    assert task_run.state.value == "succeeded", task_run.error
    ref = ObjectRef.of(task_run.result)
    assert ref is not None and ref.size == 100_002
    found = [(a.task_name, a.kind, a.title, a.body) for a in scene.app.outputs.artifacts(run.id)]
    assert found == [("elsewhere", "markdown", "child", "from a child process")]
