"""Workflow namespaces: default, validation, both authoring forms, unchanged version hashes."""

from __future__ import annotations

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.model import DEFAULT_NAMESPACE, PythonAction, TaskSpec, WorkflowSpec
from orchestrion.spec.python import task, workflow
from orchestrion.spec.yaml.loader import load_yaml_text


def _spec(**extra: object) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "name": "wf",
            "tasks": [TaskSpec(name="a", action=PythonAction(ref="m:f"))],
            **extra,
        }
    )


def test_default_namespace() -> None:
    assert _spec().namespace == DEFAULT_NAMESPACE == "default"


def test_default_namespace_keeps_the_version_hash() -> None:
    # The hash a spec had before namespaces existed: the canonical JSON has no namespace key.
    spec = _spec()
    assert '"namespace"' not in spec.to_json()
    assert spec.version == _spec(namespace="default").version
    assert WorkflowSpec.from_json(spec.to_json()) == spec


def test_other_namespace_changes_the_version() -> None:
    finance = _spec(namespace="finance")
    assert finance.namespace == "finance"
    assert finance.version != _spec().version
    assert WorkflowSpec.from_json(finance.to_json()).namespace == "finance"


@pytest.mark.parametrize(
    "bad", ["", "Finance", "a/b", "-x", "x" * 64, "a b", "*"], ids=lambda v: repr(v)[:12]
)
def test_bad_namespaces_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        _spec(namespace=bad)


def test_python_decorator_namespace() -> None:
    @task
    def step() -> int:
        return 1

    @workflow(namespace="team-a")
    def flow() -> None:
        step()

    assert flow.spec.namespace == "team-a"


def test_python_decorator_bad_namespace() -> None:
    @task
    def step() -> int:
        return 1

    @workflow(namespace="Team A")
    def flow() -> None:
        step()

    with pytest.raises(SpecError, match="namespace"):
        _ = flow.spec


def test_yaml_namespace() -> None:
    text = "name: wf\nnamespace: ops\ntasks:\n  a:\n    shell: ['true']\n"
    assert load_yaml_text(text).namespace == "ops"


def test_yaml_bad_namespace_names_its_line() -> None:
    text = "name: wf\nnamespace: Ops/x\ntasks:\n  a:\n    shell: ['true']\n"
    with pytest.raises(SpecError, match="namespace"):
        load_yaml_text(text)
