"""Task templates (docs/templates.md): libraries found on the search path, a use expanded at
load time with its values checked, the origin recorded, and Python's `use` making the same
spec as YAML's ``uses:``. Pure: no database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.loading import load_workflows
from orchestrion.spec.model import ShellAction, TaskSpec
from orchestrion.spec.templates.expand import fill_task
from orchestrion.spec.templates.library import library_from_data
from orchestrion.spec.yaml.libraries import (
    ENV_VAR,
    DirectorySource,
    check_library,
    load_library_text,
)

pytestmark = pytest.mark.sqlite_only(reason="spec loading only, no database")

_V1 = """\
library: lib
version: 1
templates:
  transfer:
    params: {source: string, target: string}
    task:
      shell: [transfer, "{{ params.source }}", "{{ params.target }}"]
"""
_V2 = """\
library: lib
version: 2
templates:
  transfer:
    description: Copy a table between two connections
    params:
      source: {type: string}
      target: {type: string}
      batch: {type: integer, default: 1000}
    task:
      shell: [transfer, --from, "{{ params.source }}", --to, "{{ params.target }}",
              --batch, "{{ str(params.batch) }}"]
      retry: 2
      timeout: "{{ params.batch }}"
"""
_FLOW = """\
name: copy
params: {day: {type: string, default: "2026-01-01"}}
tasks:
  extract:
    shell: [echo, hi]
  copy_orders:
    uses: %s
    with: %s
    depends_on: [extract]
"""


def _project(
    tmp_path: Path, uses: str = "lib/transfer@2", given: str = "{source: pg, target: wh}"
) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "lib@1.yaml").write_text(_V1)
    (tmp_path / "templates" / "lib@2.yaml").write_text(_V2)
    flow = tmp_path / "flow.yaml"
    flow.write_text(_FLOW % (uses, given))
    return flow


def _load(flow: Path) -> dict[str, TaskSpec]:
    [loaded] = load_workflows(flow)
    return {task.name: task for task in loaded.spec.tasks}


def _argv(task: TaskSpec) -> tuple[str, ...]:
    assert isinstance(task.action, ShellAction)
    return tuple(task.action.argv or ())


def test_a_use_expands_with_defaults_and_records_its_origin(tmp_path: Path) -> None:
    task = _load(_project(tmp_path))["copy_orders"]
    assert _argv(task) == ("transfer", "--from", "pg", "--to", "wh", "--batch", "1000")
    assert task.retry.retries == 2
    assert task.timeout == 1000
    assert task.depends_on == ("extract",)
    assert task.template is not None and task.template.ref == "lib/transfer@2"
    assert task.template.digest.startswith("sha256:")


def test_versions_live_side_by_side_and_the_using_task_overrides(tmp_path: Path) -> None:
    flow = _project(tmp_path, "lib/transfer@1")
    flow.write_text(flow.read_text() + "    retry: 5\n    timeout: 30\n")
    task = _load(flow)["copy_orders"]
    assert _argv(task) == ("transfer", "pg", "wh")
    assert (task.retry.retries, task.timeout) == (5, 30)


def test_a_run_time_value_stays_a_template(tmp_path: Path) -> None:
    task = _load(_project(tmp_path, given='{source: pg, target: "{{ params.day }}"}'))[
        "copy_orders"
    ]
    assert "{{ params.day }}" in _argv(task)


def test_a_library_change_makes_a_new_workflow_version(tmp_path: Path) -> None:
    flow = _project(tmp_path)
    [before] = load_workflows(flow)
    lib = tmp_path / "templates" / "lib@2.yaml"
    lib.write_text(lib.read_text().replace("retry: 2", "retry: 3"))
    [after] = load_workflows(flow)
    assert before.spec.version != after.spec.version
    old, new = (w.spec.tasks[1].template for w in (before, after))
    assert old is not None and new is not None and old.digest != new.digest


@pytest.mark.parametrize(
    ("uses", "given", "message"),
    [
        ("lib/transfer", "{source: a, target: b}", "needs a pinned major version"),
        ("lib/transfer@latest", "{source: a, target: b}", "needs a pinned major version"),
        ("nope/transfer@1", "{source: a, target: b}", "unknown template library 'nope'"),
        ("lib/transfer@3", "{source: a, target: b}", "has no version 3 (versions: 1, 2)"),
        ("lib/transfr@2", "{source: a, target: b}", "did you mean 'transfer'?"),
        ("lib/transfer@2", "{source: a}", "needs parameter 'target' (string)"),
        (
            "lib/transfer@2",
            "{source: a, target: b, batch: ten}",
            "'batch' of lib/transfer@2 must be integer",
        ),
        ("lib/transfer@2", "{source: a, target: b, bach: 1}", "unknown parameter 'bach'"),
    ],
)
def test_bad_uses_name_the_file_the_task_and_the_problem(
    tmp_path: Path, uses: str, given: str, message: str
) -> None:
    flow = _project(tmp_path, uses, given)
    with pytest.raises(SpecError) as info:
        load_workflows(flow)
    text = str(info.value)
    assert str(flow) in text and "task 'copy_orders'" in text and message in text


def test_a_using_task_cannot_set_its_own_action(tmp_path: Path) -> None:
    flow = _project(tmp_path)
    flow.write_text(flow.read_text() + "    shell: [echo]\n")
    with pytest.raises(SpecError, match="gives its action; 'shell' cannot be set"):
        load_workflows(flow)
    flow.write_text(flow.read_text().replace("shell: [echo]", "depends_onn: [extract]"))
    with pytest.raises(SpecError, match=r"unknown field 'depends_onn'.*did you mean 'depends_on'"):
        load_workflows(flow)


def test_a_broken_template_body_is_reported_against_the_library() -> None:
    bad = _V1.replace('"{{ params.target }}"]', '"{{ params.target }}"]\n      timeout: -1')
    with pytest.raises(SpecError) as info:
        load_library_text(bad, source="lib@1.yaml")
    assert info.value.source == "lib@1.yaml"
    assert info.value.path == "templates.transfer.task.timeout"
    with pytest.raises(SpecError, match="cannot set depends_on"):
        load_library_text(_V1.replace("    task:\n", "    task:\n      depends_on: [a]\n"))


def test_a_file_name_must_agree_with_its_version(tmp_path: Path) -> None:
    (tmp_path / "lib@3.yaml").write_text(_V1)
    with pytest.raises(SpecError, match="names version 3 but its 'version' is 1"):
        DirectorySource(tmp_path).versions("lib")
    # A broken file of one version does not stop another version being used.
    (tmp_path / "lib@2.yaml").write_text(_V2)
    found = DirectorySource(tmp_path).library("lib", 2)
    assert found is not None and found.version == 2


def test_the_environment_path_comes_before_the_folder_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = _project(tmp_path)
    other = tmp_path / "shared"
    other.mkdir()
    (other / "lib.yaml").write_text(_V2.replace("retry: 2", "retry: 7"))
    monkeypatch.setenv(ENV_VAR, str(other))
    assert _load(flow)["copy_orders"].retry.retries == 7


def test_python_use_makes_the_same_task_as_yaml(tmp_path: Path) -> None:
    flow = _project(tmp_path)
    code = tmp_path / "templates_unit_flow.py"  # a module name no other test takes
    code.write_text(
        textwrap.dedent(
            """\
            from orchestrion import shell, use, workflow

            transfer = use("lib/transfer@2")

            @workflow(name="copy")
            def copy(day: str = "2026-01-01"):
                first = shell("extract", ["echo", "hi"])
                transfer.options(name="copy_orders", after=[first])(source="pg", target="wh")
            """
        )
    )
    from_yaml = _load(flow)["copy_orders"]
    from_python = _load(code)["copy_orders"]
    assert from_python == from_yaml


def test_python_library_and_refs_as_values(tmp_path: Path) -> None:
    code = tmp_path / "templates_unit_mini.py"
    code.write_text(
        textwrap.dedent(
            """\
            from orchestrion import shell, template_library, use, workflow

            lib = template_library(
                "mini", 1,
                {"echo": {"params": {"word": "string"},
                          "task": {"shell": ["echo", "{{ params.word }}"]}}},
            )
            echo = use("mini/echo@1", libraries=[lib])

            @workflow
            def mini():
                first = shell("first", ["echo", "x"])
                echo(word=first)
                echo()
            """
        )
    )
    with pytest.raises(SpecError, match="needs parameter 'word'"):
        load_workflows(code)
    code.write_text(code.read_text().replace("    echo()\n", ""))
    task = _load(code)["echo"]
    assert _argv(task) == ("echo", "{{ tasks.first }}")
    assert task.depends_on == ("first",)


@pytest.mark.parametrize(
    "task",
    [
        {"shell": {"script": "echo {{ params.msg }}"}},
        {"sql": {"connection": "c", "query": "select * from {{ params.msg }}"}},
    ],
)
def test_a_template_never_fills_code_from_its_params(task: dict[str, object]) -> None:
    data = {"library": "l", "version": 1, "templates": {"t": {"params": {"msg": "string"},
                                                               "task": task}}}  # fmt: skip
    with pytest.raises(SpecError, match="never filled from its params"):
        check_library(library_from_data(data, source="l@1.yaml"))


def test_a_filled_url_is_percent_encoded_and_deep_libraries_refused() -> None:
    body = fill_task(
        {"http": {"url": "https://chat.example.com/{{ params.u }}"}},
        {"u": "../admin?x=1#"},
        lambda message: SpecError(message),
    )
    assert body["http"]["url"] == "https://chat.example.com/..%2Fadmin%3Fx%3D1%23"
    deep: dict[str, object] = {"library": "l", "version": 1, "templates": {}}
    node = deep
    for _ in range(60):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(SpecError, match="deeper than 50"):
        library_from_data(deep, source="l@1.yaml")
