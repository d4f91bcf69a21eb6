"""The `container` task kind in the spec: YAML (line-numbered errors, the block's secrets
lifted into the task's), the Python `container(...)` helper, the JSON Schema, memory sizes,
and that nothing of it changes the JSON (hence the version) of existing specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrion import container, shell, workflow
from orchestrion.errors import SpecError
from orchestrion.spec.container import ContainerAction, ResultFile, memory_bytes
from orchestrion.spec.json_schema import yaml_json_schema
from orchestrion.spec.yaml.loader import load_yaml_text

ISSUE = """\
name: etl
params:
  day: {type: string}
tasks:
  transform:
    container:
      image: ghcr.io/acme/transform:1.4
      command: [python, -m, transform, --day, "{{ params.day }}"]
      env: {MODE: full}
      secrets: {DB_PASSWORD: warehouse-password}
      resources: {cpus: 1.5, memory: 512Mi}
      result: {file: /out/result.json}
      pull: if-missing
"""


def test_the_issues_example_loads() -> None:
    spec = load_yaml_text(ISSUE)
    task = spec.task("transform")
    action = task.action
    assert isinstance(action, ContainerAction)
    assert action.image == "ghcr.io/acme/transform:1.4"
    assert action.command == ("python", "-m", "transform", "--day", "{{ params.day }}")
    assert action.env == {"MODE": "full"}
    assert (action.resources.cpus, action.resources.memory) == (1.5, "512Mi")
    assert action.result == ResultFile(file="/out/result.json")
    assert action.pull == "if-missing" and action.work_dir == "/work"
    # The block's secrets are the task's: opened and masked by the worker like any task's.
    assert task.secrets == {"DB_PASSWORD": "warehouse-password"}


def test_shorthand_defaults_and_result_forms() -> None:
    spec = load_yaml_text(
        "name: w\ntasks:\n  a:\n    container: localhost/x:1\n"
        "  b:\n    container: {image: 'localhost/x:1', result: stdout, pull: never}\n"
        "  c:\n    container: {image: 'localhost/x:1', resources: {memory: 67108864}}\n"
    )
    a, b, c = (spec.task(n).action for n in "abc")
    assert isinstance(a, ContainerAction) and a.command is None and a.result == "last-line"
    assert isinstance(b, ContainerAction) and (b.result, b.pull) == ("stdout", "never")
    assert isinstance(c, ContainerAction) and c.resources.memory == "67108864"
    assert json.loads(spec.to_json())["tasks"][1]["action"]["result"] == "stdout"


def test_task_and_block_secrets_merge_and_may_not_disagree() -> None:
    text = (
        "name: w\ntasks:\n  t:\n    secrets: {A: one}\n"
        "    container: {image: 'localhost/x:1', secrets: {B: two}}\n"
    )
    assert load_yaml_text(text).task("t").secrets == {"A": "one", "B": "two"}
    clash = text.replace("B: two", "A: two")
    with pytest.raises(SpecError, match="'A' names two secrets"):
        load_yaml_text(clash)
    env_clash = text.replace("secrets: {B: two}", "env: {A: x}")
    with pytest.raises(SpecError, match="'A' is set both by 'env' and by 'secrets'"):
        load_yaml_text(env_clash)


def _task(body: str) -> str:
    return f"name: w\nparams:\n  day: {{type: string}}\ntasks:\n  t:\n    container: {body}\n"


# fmt: off
BAD = [
    ("{command: [echo]}", "needs 'image'", 6),
    ("{image: 'x:1', command: 'echo hi'}", "list of arguments", 6),
    ("{image: 'x:1', command: []}", "'command' must not be empty", 6),
    ("{image: 'x:1', colour: red}", "colour", 6),
    ("{image: 'x:1', env: {1BAD: x}}", "bad environment variable name", 6),
    ("{image: 'x:1', resources: {memory: 12Zi}}", "bad memory size '12Zi'", 6),
    ("{image: 'x:1', resources: {memory: 1Ki}}", "too little", 6),
    ("{image: 'x:1', resources: {cpus: 0}}", "cpus", 6),
    ("{image: 'x:1', result: {file: out.json}}", "absolute file path", 6),
    ("{image: 'x:1', result: lines}", "result", 6),
    ("{image: 'x:1', pull: sometimes}", "pull", 6),
    ("{image: 'x:1', work_dir: /}", "root", 6),
    ("{image: 'x:1', command: ['{{ params.nope }}']}", "nope", 6),
    ("{image: 'x:1', env: {A: '{{ tasks.gone }}'}}", "gone", 6),
    ("{image: 'x:1', secrets: {A: 'a/b'}}", "secret name", 6),
]
# fmt: on


@pytest.mark.parametrize(("body", "message", "line"), BAD)
def test_bad_container_is_refused_with_its_line(body: str, message: str, line: int) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text(_task(body), source="c.yaml")
    assert message in str(info.value)
    assert info.value.line == line, str(info.value)


def test_memory_sizes() -> None:
    assert memory_bytes("512Mi") == 512 * 1024**2
    assert memory_bytes("1.5G") == 1_500_000_000
    assert memory_bytes("300m") == 300_000_000
    assert memory_bytes("1024") == 1024
    with pytest.raises(ValueError, match="like 512Mi"):
        memory_bytes("lots")


def test_python_helper_templates_refs_and_takes_secrets() -> None:
    @workflow
    def pipeline(day: str = "2024-01-01") -> None:
        rows = shell("count", ["echo", "3"])
        container(
            "load",
            "localhost/tools/load:1",
            command=["load", "--day", day, "--rows", rows],
            env={"ROWS": rows},
            resources={"cpus": 0.5, "memory": "64Mi"},
            result={"file": "/work/out.json"},
            secrets={"DB_PASSWORD": "warehouse-password"},
            timeout="10m",
            retries=2,
        )

    task = pipeline.spec.task("load")
    action = task.action
    assert isinstance(action, ContainerAction)
    assert action.command == ("load", "--day", "{{ params.day }}", "--rows", "{{ tasks.count }}")
    assert action.env == {"ROWS": "{{ tasks.count }}"}
    assert action.result == ResultFile(file="/work/out.json")
    assert task.depends_on == ("count",) and task.timeout == 600 and task.retry.retries == 2
    assert task.secrets == {"DB_PASSWORD": "warehouse-password"}


def test_python_helper_refuses_a_command_line_and_bad_options() -> None:
    @workflow
    def line() -> None:
        container("x", "localhost/x:1", command="echo hi")

    with pytest.raises(SpecError, match="command is a list of arguments"):
        _ = line.spec

    @workflow
    def bad_pull() -> None:
        container("x", "localhost/x:1", pull="sometimes")

    with pytest.raises(SpecError, match="pull"):
        _ = bad_pull.spec


def test_the_json_schema_describes_container() -> None:
    schema = yaml_json_schema()
    task = schema["$defs"]["task"]
    assert task["properties"]["container"] == {"$ref": "#/$defs/container"}
    container_def = schema["$defs"]["container"]
    assert container_def["required"] == ["image"]
    assert set(container_def["properties"]) == {
        "image", "command", "entrypoint", "env", "secrets", "resources", "result", "pull",
        "work_dir",
    }  # fmt: skip
    committed = Path(__file__).parents[2] / "schemas" / "workflow.schema.json"
    assert json.loads(committed.read_text()) == schema


def test_existing_kinds_keep_their_json() -> None:
    """Adding the kind changed no field of the others: a shell task's JSON is as it was."""
    spec = load_yaml_text("name: w\ntasks:\n  t:\n    shell: [echo, hi]\n")
    assert json.loads(spec.to_json())["tasks"][0]["action"] == {
        "argv": ["echo", "hi"], "cwd": None, "env": {}, "json_output": False,
        "kind": "shell", "script": None,
    }  # fmt: skip


def test_the_engine_address_is_a_worker_setting(tmp_path: Path) -> None:
    from orchestrion.app.settings import Settings
    from orchestrion.worker.containers.settings import DEFAULT_HOST

    podman = "unix:///run/podman/podman.sock"
    both = {"ORCHESTRION_CONTAINER_HOST": podman, "DOCKER_HOST": "tcp://elsewhere:2375"}
    assert Settings.from_env(both).containers.base_url == podman
    assert Settings.from_env({"DOCKER_HOST": "tcp://h:2375"}).containers.base_url == "tcp://h:2375"
    plain = Settings.from_env({}).containers
    assert plain.host is None and plain.base_url == DEFAULT_HOST
    work = Settings.from_env({"ORCHESTRION_CONTAINER_WORK_DIR": str(tmp_path)}).containers
    assert work.work_root == str(tmp_path)


def test_templates_in_command_and_env_imply_dependencies() -> None:
    spec = load_yaml_text(
        "name: w\ntasks:\n  a: {shell: [echo, '1']}\n"
        "  b:\n    container: {image: 'x:1', command: [echo, '{{ tasks.a }}']}\n"
        "  c:\n    container: {image: 'x:1', env: {X: '{{ tasks.b }}'}}\n"
    )
    assert [(t.name, t.depends_on) for t in spec.tasks] == [("a", ()), ("b", ("a",)), ("c", ("b",))]
