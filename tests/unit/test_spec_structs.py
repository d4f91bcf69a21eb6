"""The spec models' base (`orchestrion.spec.structs`): validation on construction, field
checks, and errors that say where."""

from __future__ import annotations

import pickle
from math import nan as NAN

import pytest

from orchestrion.spec.model import (
    CacheSpec,
    PythonAction,
    RetryPolicy,
    ShellAction,
    TaskSpec,
    WorkflowSpec,
)
from orchestrion.spec.structs import Invalid


def _task(**fields: object) -> dict[str, object]:
    return {"name": "a", "action": {"kind": "python", "ref": "m:f"}, **fields}


def test_direct_construction_validates_and_converts_like_data() -> None:
    task = TaskSpec(
        name="a",
        action=PythonAction(ref="m:f"),
        retry=RetryPolicy.model_validate({"backoff": "5s"}),
        inputs={"x": {"expr": "params.p"}},  # type: ignore[dict-item]
        depends_on=["b"],  # type: ignore[arg-type]
    )
    assert task.retry.backoff == 5.0
    assert task.inputs["x"].expr == "params.p"
    assert task.depends_on == ("b",)
    with pytest.raises(Invalid, match="priority: must be at most 1000"):
        TaskSpec(name="a", action=PythonAction(ref="m:f"), priority=5000)
    with pytest.raises(Invalid, match="exactly one of 'argv' or 'script'"):
        ShellAction()


def test_an_error_names_the_path_the_kind_and_the_value() -> None:
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate({"name": "w", "tasks": [_task(priority="high")]})
    (first,) = caught.value.errors()
    assert first["loc"] == ("tasks", 0, "priority")
    assert first["type"] == "int_type"
    assert first["input"] == "high"


def test_an_action_error_names_its_kind_in_the_path() -> None:
    data = {"name": "w", "tasks": [{"name": "a", "action": {"kind": "shell", "argv": "x"}}]}
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate(data)
    assert caught.value.errors()[0]["loc"] == ("tasks", 0, "action", "shell", "argv")


def test_a_mapping_value_error_names_its_key() -> None:
    data = {"name": "w", "tasks": [_task(inputs={"ok": {"expr": "1"}, "bad": {"exp": "1"}})]}
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate(data)
    first = caught.value.errors()[0]
    assert first["loc"] == ("tasks", 0, "inputs", "bad", "exp")
    assert first["type"] == "extra_forbidden"


def test_several_field_problems_are_all_found_but_not_their_echoes() -> None:
    data = {"name": "w", "tasks": [_task(priority="x", concurrency=0, timeout="soon")]}
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate(data)
    locs = [e["loc"] for e in caught.value.errors()]
    assert sorted(locs) == [("tasks", 0, n) for n in ("concurrency", "priority", "timeout")]
    # A schedule whose cron is bad is not also "missing cron or every" once cron is left out.
    bad_cron = {"name": "w", "tasks": [_task()], "schedules": [{"cron": "61 * * * *"}]}
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate(bad_cron)
    assert [e["loc"] for e in caught.value.errors()] == [("schedules", 0, "cron")]


def test_field_checks_place_problems_on_their_field() -> None:
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(tags=None, description="a\x1b[2J"))
    assert caught.value.errors()[0]["loc"] == ("tags",)  # unknown field first
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(description="a\x1b[2J"))
    first = caught.value.errors()[0]
    assert first["loc"] == ("description",)
    assert "control character" in first["msg"]
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(cache={"ttl": 0}))
    assert caught.value.errors()[0]["loc"] == ("cache", "ttl")


@pytest.mark.parametrize(
    "field",
    ["\x1f", '\x1f["value_error", {}, ["x"]]', "`", " - at `$.x`", "\x1f[1, 2", "é\x00"],
)
def test_hostile_field_names_give_an_error_not_a_crash(field: str) -> None:
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate({"name": "w", "tasks": [_task(**{field: 1})]})
    assert caught.value.errors()
    assert str(caught.value)


def test_cache_takes_true_false_or_settings() -> None:
    assert TaskSpec.model_validate(_task(cache=True)).cache == CacheSpec()
    assert TaskSpec.model_validate(_task(cache=False)).cache is None
    with pytest.raises(Invalid, match=r"expected true, false or \{key, ttl\}, got str"):
        TaskSpec.model_validate(_task(cache="yes"))


def test_a_spec_round_trips_through_json_and_pickle_unchanged() -> None:
    spec = WorkflowSpec.model_validate(
        {"name": "w", "tasks": [_task(retry={"retries": 2, "backoff": "1m"})], "tags": ["x"]}
    )
    again = WorkflowSpec.from_json(spec.to_json())
    assert again == spec
    assert again.version == spec.version
    assert pickle.loads(pickle.dumps(spec)) == spec


@pytest.mark.parametrize("field", ["name", "queue", "depends_on"])
def test_a_name_may_not_end_in_a_newline(field: str) -> None:
    """msgspec matches patterns with `re.search`, whose ``$`` matches before a final
    newline: the patterns end in ``\\Z`` instead."""
    value: object = ["b\n"] if field == "depends_on" else "b\n"
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(**{field: value}))
    assert caught.value.errors()[0]["type"] == "string_pattern_mismatch"
    assert caught.value.errors()[0]["ctx"]["pattern"].endswith("$")


def test_a_place_marker_repeated_in_a_field_name_is_parsed_once() -> None:
    field = " - at `" * 2000
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(**{field: 1}))
    assert caught.value.errors()[0]["loc"] == (field,)
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_non_finite_numbers_are_stored_as_null_as_before() -> None:
    spec = WorkflowSpec.model_validate(
        {"name": "w", "tasks": [_task()], "params": {"p": {"type": "number", "default": NAN}}}
    )
    assert '"default":null' in spec.to_json()
    assert WorkflowSpec.from_json(spec.to_json()).params["p"].default is None


def test_assets_take_their_short_forms_from_any_source() -> None:
    task = TaskSpec.model_validate(
        _task(produces=["a.b", {"asset": "c.d", "partition": "x"}], consumes=[{"key": "e"}])
    )
    assert [(r.key, r.partition) for r in task.produces] == [("a.b", None), ("c.d", "x")]
    assert task.consumes[0].key == "e"
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(produces=["ok", {"asset": "bad key"}]))
    assert caught.value.errors()[0]["loc"] == ("produces", 1, "key")


def test_a_cycle_does_not_hide_a_field_problem() -> None:
    tasks = [
        _task(priority="high", depends_on=["b"]),
        {**_task(), "name": "b", "depends_on": ["a"]},
    ]
    with pytest.raises(Invalid) as caught:
        WorkflowSpec.model_validate({"name": "w", "tasks": tasks})
    assert [e["loc"] for e in caught.value.errors()] == [("tasks", 0, "priority")]


@pytest.mark.parametrize(
    "text", ['{"name": 1, "tasks": [', "1" * 5000, "[" * 100_000, '{"name": "w", "tasks": []}']
)
def test_bad_stored_json_is_invalid_not_a_crash(text: str) -> None:
    with pytest.raises(Invalid):
        WorkflowSpec.model_validate_json(text)


def test_a_bad_mapping_key_is_the_value_reported() -> None:
    with pytest.raises(Invalid) as caught:
        TaskSpec.model_validate(_task(requires={"ok": "x", "not ok": "y"}))
    first = caught.value.errors()[0]
    assert first["loc"] == ("requires", "not ok")
    assert first["input"] == "not ok"
