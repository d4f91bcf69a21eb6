"""The ``cache`` option of a task (docs/caching.md) in the spec, YAML and Python: its
forms, its checks, and that it leaves the versions of workflows without it unchanged."""

from __future__ import annotations

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.model import DEFAULT_CACHE_TTL, CacheSpec, SubWorkflowAction, TaskSpec
from orchestrion.spec.yaml.loader import load_yaml_text

_FLOW = """\
name: c
params:
  n: {type: integer, default: 1}
tasks:
  a:
    shell: [echo, "{{ params.n }}"]
    cache: %s
"""


def test_true_is_the_defaults_and_a_mapping_sets_key_and_ttl() -> None:
    [task] = load_yaml_text(_FLOW % "true").tasks
    assert task.cache == CacheSpec(key=None, ttl=DEFAULT_CACHE_TTL)
    [task] = load_yaml_text(_FLOW % '{key: "params.n", ttl: 2h}').tasks
    assert task.cache == CacheSpec(key="params.n", ttl=7200.0)
    [task] = load_yaml_text(_FLOW % "false").tasks
    assert task.cache is None


def test_a_task_without_cache_keeps_its_version_and_with_it_changes_it() -> None:
    plain = load_yaml_text(_FLOW.rsplit("    cache", 1)[0])
    assert '"cache"' not in plain.to_json()
    assert load_yaml_text(_FLOW % "true").version != plain.version


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('{key: "tasks.a"}', "unknown name 'tasks' (use params or inputs)"),
        ('{key: "params.nope"}', "unknown parameter 'nope'"),
        ('{key: "params.n +"}', "bad expression"),
        ("{ttl: 0}", "ttl"),
        ('"yes"', "expected true, false or {key, ttl}"),
        ("{kee: 1}", "unknown field 'kee'"),
    ],
)
def test_bad_cache_options_are_refused_by_name(value: str, problem: str) -> None:
    with pytest.raises(SpecError, match="cache") as caught:
        load_yaml_text(_FLOW % value)
    assert problem in str(caught.value)


def test_a_sub_workflow_task_cannot_be_cached() -> None:
    with pytest.raises(ValueError, match="'cache' does not apply to a sub-workflow"):
        TaskSpec.model_validate(
            {"name": "s", "action": SubWorkflowAction(workflow="other"), "cache": True}
        )
