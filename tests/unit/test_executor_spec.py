"""A task's ``executor`` option in YAML and Python: where its code runs."""

from __future__ import annotations

import textwrap

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.model import PythonAction, ShellAction, TaskSpec
from orchestrion.spec.python import task, workflow
from orchestrion.spec.yaml.loader import load_yaml_text


def _yaml(extra: str, action: str = "python: mod:fn") -> str:
    return textwrap.dedent(
        f"""\
        name: w
        tasks:
          a:
            {action}
            {extra}
        """
    )


def test_yaml_executor_is_read() -> None:
    spec = load_yaml_text(_yaml("executor: process"), source="wf.yaml")
    assert spec.tasks[0].executor == "process"
    assert load_yaml_text(_yaml("queue: q"), source="wf.yaml").tasks[0].executor is None


@pytest.mark.parametrize(
    ("extra", "action"),
    [("executor: gpu", "python: mod:fn"), ("executor: process", "shell: {argv: [ls]}")],
    ids=["unknown", "shell"],
)
def test_yaml_executor_is_checked(extra: str, action: str) -> None:
    with pytest.raises(SpecError):
        load_yaml_text(_yaml(extra, action), source="wf.yaml")


def test_the_option_is_left_out_of_the_version_while_unset() -> None:
    plain = TaskSpec(name="a", action=PythonAction(ref="m:f"))
    assert '"executor"' not in _spec_json(plain)
    chosen = plain.model_copy(update={"executor": "process"})
    assert '"executor":"process"' in _spec_json(chosen)


def _spec_json(one: TaskSpec) -> str:
    from orchestrion.spec.model import WorkflowSpec

    return WorkflowSpec(name="w", tasks=(one,)).to_json()


def test_python_tasks_take_the_option() -> None:
    @task(executor="process")
    def crunch() -> int:
        return 1

    @workflow
    def flow() -> None:
        crunch()

    assert flow.spec.tasks[0].executor == "process"
    with pytest.raises(ValueError, match="Python tasks only"):
        TaskSpec(name="s", action=ShellAction(argv=("ls",)), executor="process")
