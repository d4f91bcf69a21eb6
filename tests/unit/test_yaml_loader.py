"""The YAML authoring format: what valid files compile to (bad files: test_yaml_bad_input)."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.expressions import compile_expression, render
from orchestrion.spec.json_schema import render_schema, yaml_json_schema
from orchestrion.spec.kinds import builtin_kinds
from orchestrion.spec.model import (
    HttpAction,
    InputSpec,
    ParamType,
    PythonAction,
    ShellAction,
    SubWorkflowAction,
    TriggerRule,
    WorkflowSpec,
)
from orchestrion.spec.yaml import loader as yaml_loader
from orchestrion.spec.yaml.loader import load_yaml_file, load_yaml_text

ROOT = Path(__file__).resolve().parents[2]


def load(text: str) -> WorkflowSpec:
    return load_yaml_text(textwrap.dedent(text), source="wf.yaml")


def docs_example() -> str:
    """The full example of docs/yaml.md: the docs must stay true."""
    doc = (ROOT / "docs" / "yaml.md").read_text(encoding="utf-8")
    section = doc.split("## A full example", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


# --------------------------------------------------------------------------- full example


def test_docs_example_compiles_to_the_expected_spec() -> None:
    spec = load_yaml_text(docs_example(), source="docs/yaml.md")
    assert spec.name == "nightly_etl"
    assert spec.timeout == 7200.0
    assert spec.max_active_runs == 1
    assert spec.tags == ("etl", "orders")
    assert spec.params["day"].type is ParamType.DATE
    assert spec.params["region"].default == "eu"
    assert spec.params["region"].enum == ("eu", "us")
    assert spec.params["dry_run"].default is False
    assert [(s.cron, s.timezone, s.params) for s in spec.schedules] == [
        ("0 3 * * *", "Europe/Paris", {"region": "eu"}),
        ("0 9 * * 1-5", "America/New_York", {"region": "us", "dry_run": True}),
    ]
    assert [t.name for t in spec.tasks] == [
        "extract", "partitions", "transform", "load", "report", "cleanup",
    ]  # fmt: skip

    extract = spec.task("extract")
    assert extract.action == PythonAction(ref="etl.orders:extract")
    assert extract.inputs == {
        "day": InputSpec(expr="params.day"),
        "region": InputSpec(expr="params.region"),
        "note": InputSpec(value="NO"),
    }
    assert extract.retry.retries == 3
    assert extract.retry.backoff == 10.0
    assert extract.retry.max_delay == 300.0
    assert extract.retry.retry_on == ("ConnectionError",)
    assert extract.timeout == 1800.0
    assert extract.queue == "io"

    partitions = spec.task("partitions")
    assert partitions.depends_on == ("extract",)
    assert isinstance(partitions.action, ShellAction)
    assert partitions.action.argv == (
        "etl-partitions", "--rows", "{{ tasks.extract.rows }}", "--region={{ params.region }}",
    )  # fmt: skip
    assert partitions.action.env == {"LIMIT": "{{ default(params.limit, 1000) }}"}
    assert partitions.action.json_output is True

    transform = spec.task("transform")
    assert transform.map_over == "tasks.partitions.names"
    assert transform.depends_on == ("partitions",)
    assert transform.retry.retries == 2
    assert transform.concurrency == 4
    assert transform.inputs["partition"] == InputSpec(expr="item")

    load_task = spec.task("load")
    assert load_task.depends_on == ("transform", "extract")
    assert load_task.when is not None and load_task.when.expr == "not params.dry_run"
    assert load_task.action == HttpAction(
        method="POST",
        url="https://warehouse.example/api/{{ params.region }}/load",
        headers={"Authorization": "Bearer {{ params.region }}"},
        json_body={"rows": "{{ tasks.extract.rows }}", "day": "{{ params.day }}"},
        expect_status=(200, 202),
        timeout=60.0,
    )
    assert isinstance(load_task.undo, HttpAction)
    assert load_task.undo.method == "DELETE"

    report = spec.task("report")
    assert report.action == SubWorkflowAction(
        workflow="send_report",
        params={"day": "{{ params.day }}", "count": "{{ tasks.extract.rows }}"},
    )
    assert report.depends_on == ("extract",)
    assert report.trigger_rule is TriggerRule.ALL_DONE
    assert report.priority == 5

    cleanup = spec.task("cleanup")
    assert isinstance(cleanup.action, ShellAction)
    assert cleanup.action.script == 'rm -rf "/tmp/etl/$DAY"\n'
    assert cleanup.depends_on == ("report",)


def test_load_yaml_file_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "etl.yaml"
    path.write_text(docs_example(), encoding="utf-8")
    by_path = load_yaml_file(path)
    by_str = load_yaml_file(str(path))
    by_bytes = load_yaml_text(b"\xef\xbb\xbf" + docs_example().encode(), source="x")
    assert by_path == by_str == by_bytes


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: w\ntasks:\n  a: {python: m:f, retry: {retries: x}}\n")
    with pytest.raises(SpecError) as info:
        load_yaml_file(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}:3:")
    with pytest.raises(SpecError, match="cannot read the file"):
        load_yaml_file(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- scalars


def test_plain_scalars_resolve_strictly() -> None:
    spec = load(
        """
        name: w
        tasks:
          a:
            python: m:f
            inputs:
              int: 12
              neg: -3
              plus: +4
              hex: 0x1f
              octal: 0o17
              float: 1.5
              exp: 1e3
              half: .5
              inf: -.inf
              tilde: ~
              null_word: null
              empty:
              true_word: true
              true_title: True
              false_upper: FALSE
              yes_word: yes
              no_upper: NO
              on_word: on
              off_word: off
              leading_zero: 0755
              sexagesimal: 1:30
              date: 2026-11-26
              underscore: 1_000
              quoted_int: '12'
              quoted_true: "true"
              quoted_null: 'null'
              nan_title: Nan
        """
    )
    got = {k: v.value for k, v in spec.task("a").inputs.items()}
    assert got == {
        "int": 12, "neg": -3, "plus": 4, "hex": 31, "octal": 15, "float": 1.5, "exp": 1000.0,
        "half": 0.5, "inf": -math.inf, "tilde": None, "null_word": None, "empty": None,
        "true_word": True, "true_title": True, "false_upper": False, "yes_word": "yes",
        "no_upper": "NO", "on_word": "on", "off_word": "off", "leading_zero": "0755",
        "sexagesimal": "1:30", "date": "2026-11-26", "underscore": "1_000", "quoted_int": "12",
        "quoted_true": "true", "quoted_null": "null", "nan_title": "Nan",
    }  # fmt: skip
    assert type(got["exp"]) is float and type(got["hex"]) is int


def test_nan_resolves_to_float() -> None:
    spec = load("name: w\ntasks:\n  a: {python: m:f, inputs: {x: .nan}}\n")
    assert math.isnan(spec.task("a").inputs["x"].value)


def test_yaml_11_traps_stay_strings_where_strings_are_expected() -> None:
    spec = load(
        """
        name: w
        description: 1:30
        tags: [on, off, yes, no, 0755]
        params:
          answer: {type: string, default: NO, enum: [NO, yes, on]}
          mode: {type: string, default: 0755}
          day: {type: date, default: 2026-11-26}
        tasks:
          a:
            python: m:f
            description: NO
        """
    )
    assert spec.description == "1:30"
    assert spec.tags == ("on", "off", "yes", "no", "0755")
    assert spec.params["answer"].default == "NO"
    assert spec.params["answer"].enum == ("NO", "yes", "on")
    assert spec.params["mode"].default == "0755"
    assert spec.params["day"].default == "2026-11-26"
    assert spec.task("a").description == "NO"


# --------------------------------------------------------------------------- shapes


def test_shorthands() -> None:
    spec = load(
        """
        name: w
        params:
          n: integer
        schedule: "*/5 * * * *"
        tasks:
          a:
            shell: [echo, "{{ params.n }}"]
            retry: 4
          b:
            depends_on: a
            workflow: child
          c:
            http: {method: patch, url: "https://x.example", expect_status: 204}
        """
    )
    assert spec.params["n"].type is ParamType.INTEGER
    assert [(s.cron, s.timezone) for s in spec.schedules] == [("*/5 * * * *", "UTC")]
    a = spec.task("a")
    assert a.action == ShellAction(argv=("echo", "{{ params.n }}"))
    assert a.retry.retries == 4
    assert spec.task("b").depends_on == ("a",)
    assert spec.task("b").action == SubWorkflowAction(workflow="child")
    c = spec.task("c").action
    assert isinstance(c, HttpAction) and c.method == "PATCH" and c.expect_status == (204,)


def test_single_schedule_mapping() -> None:
    spec = load(
        """
        name: w
        params: {region: {type: string, required: true}}
        schedule: {cron: "0 0 * * *", timezone: Asia/Tokyo, params: {region: jp}}
        tasks:
          a: {python: pkg.mod:Class.run}
        """
    )
    assert spec.schedules[0].timezone == "Asia/Tokyo"
    assert spec.schedules[0].params == {"region": "jp"}
    assert spec.task("a").action == PythonAction(ref="pkg.mod:Class.run")


def test_python_file_reference() -> None:
    spec = load("name: w\ntasks:\n  a: {python: jobs/etl.py:main}\n")
    assert spec.task("a").action == PythonAction(ref="jobs/etl.py:main")


def test_when_with_or_without_braces() -> None:
    spec = load(
        """
        name: w
        params: {n: integer}
        tasks:
          a: {python: m:f, when: "{{ params.n > 1 }}"}
          b: {python: m:f, when: params.n > 1}
        """
    )
    assert spec.task("a").when == spec.task("b").when


def test_tasks_keep_file_order() -> None:
    names = [f"t{i:02d}" for i in range(30, 0, -1)]
    body = "".join(f"  {n}: {{python: m:f}}\n" for n in names)
    spec = load_yaml_text("name: w\ntasks:\n" + body)
    assert [t.name for t in spec.tasks] == names


# --------------------------------------------------------------------------- dependencies


def test_implied_dependencies_from_every_templated_field() -> None:
    spec = load(
        """
        name: w
        tasks:
          a: {python: m:f}
          b: {python: m:f}
          c: {python: m:f}
          d: {python: m:f}
          e: {python: m:f}
          f: {python: m:f}
          g: {python: m:f}
          h: {python: m:f}
          i: {python: m:f}
          shell_task:
            depends_on: [b]
            shell:
              argv: [run, "{{ tasks.a.x }}", "{{ tasks.b.y }}"]
              env: {X: "{{ tasks['c'].z }}"}
              cwd: "/data/{{ tasks.d.dir }}"
            when: tasks.e.ok
            inputs: {v: "{{ tasks.f }}"}
          http_task:
            http:
              url: "https://x.example/{{ tasks.g.id }}"
              headers: {H: "{{ tasks.h.token }}"}
              json: {deep: [{k: "{{ tasks.i.v }}"}]}
          child:
            map: tasks.a.items
            workflow: {name: kid, params: {p: "{{ tasks.b.p }}", q: "{{ item }}"}}
        """
    )
    assert spec.task("shell_task").depends_on == ("b", "a", "c", "d", "f", "e")
    assert spec.task("http_task").depends_on == ("g", "h", "i")
    assert spec.task("child").depends_on == ("b", "a")


def test_undo_may_read_its_own_and_its_dependencies_results() -> None:
    spec = load(
        """
        name: w
        tasks:
          create: {python: m:create}
          attach:
            depends_on: create
            python: m:attach
            undo:
              shell: [detach, "{{ tasks.attach.id }}", "{{ tasks.create.id }}"]
        """
    )
    assert spec.task("attach").depends_on == ("create",)
    assert isinstance(spec.task("attach").undo, ShellAction)


def test_item_in_mapped_task() -> None:
    spec = load(
        """
        name: w
        tasks:
          list: {python: m:f}
          each:
            map: "{{ tasks.list }}"
            python: m:g
            inputs: {x: "{{ item }}"}
            when: len(tasks.list) > 0
        """
    )
    assert spec.task("each").map_over == "tasks.list"
    assert spec.task("each").depends_on == ("list",)


# --------------------------------------------------------------------------- inputs


def test_inputs_with_text_around_templates_render_like_templates() -> None:
    inputs = {
        "path": "s3://{{ params.bucket }}/{{ params.n }}/{{ params.flag }}.csv",
        "mixed": {"a": ["x-{{ params.n }}", 1, None, True, 2.5], "b": "{{ params.xs }}"},
        "quoted": 'it\'s "{{ params.bucket }}"\n',
        "whole": "{{ params.xs }}",
        "plain": {"a": [1, "no template"]},
    }
    text = json.dumps(
        {
            "name": "w",
            "params": {"bucket": "string", "n": "integer", "flag": "boolean", "xs": "array"},
            "tasks": {"a": {"python": "m:f", "inputs": inputs}},
        }
    )
    spec = load_yaml_text(text)  # JSON is YAML
    scope = {"params": {"bucket": "b'k", "n": 3, "flag": False, "xs": [1, "y"]}}
    for name, original in inputs.items():
        spec_input = spec.task("a").inputs[name]
        if spec_input.expr is None:
            assert spec_input.value == original
        else:
            assert compile_expression(spec_input.expr).evaluate(scope) == render(original, scope)
    assert spec.task("a").inputs["whole"] == InputSpec(expr="params.xs")
    assert spec.task("a").inputs["plain"] == InputSpec(value={"a": [1, "no template"]})


# --------------------------------------------------------------------------- versions


def test_version_is_stable_across_loads_and_formatting() -> None:
    block = """
        name: w  # comment
        params:
          n: {type: integer, default: 1}
        tasks:
          a:
            python: m:f
            retry: {retries: 2, backoff: 1m}
          b:
            python: m:g
            inputs: {x: "{{ tasks.a.out }}"}
        """
    flow = (
        '{"name": "w", "params": {"n": {"default": 1, "type": "integer"}}, "tasks": {'
        '"a": {"retry": {"backoff": 60, "retries": 2}, "python": "m:f"},'
        '"b": {"inputs": {"x": "{{tasks.a.out}}"}, "python": "m:g", "depends_on": ["a"]}}}'
    )
    first, second, third = load(block), load(block), load_yaml_text(flow)
    assert first.version == second.version == third.version
    assert re.fullmatch(r"[0-9a-f]{16}", first.version)
    changed = load(block.replace("retries: 2", "retries: 3"))
    assert changed.version != first.version


def test_spec_round_trips_through_json() -> None:
    spec = load_yaml_text(docs_example())
    assert WorkflowSpec.from_json(spec.to_json()) == spec


# --------------------------------------------------------------------------- JSON Schema


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schemas" / "workflow.schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), (
        "regenerate: python -m orchestrion.spec.json_schema > schemas/workflow.schema.json"
    )


def _properties(node: dict[str, Any]) -> set[str]:
    for option in [node, *node.get("oneOf", [])]:
        if "properties" in option:
            return set(option["properties"])
    raise AssertionError(node)


def test_schema_fields_match_the_loader() -> None:
    schema = yaml_json_schema()
    defs = schema["$defs"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == set(yaml_loader.TOP_LEVEL_KEYS)
    assert schema["additionalProperties"] is False
    kinds = tuple(builtin_kinds().names())  # the task kinds' keys (sql), beside the core ones
    expected = {
        "task": (*yaml_loader.TASK_KEYS, *kinds),
        "param": yaml_loader.PARAM_KEYS,
        "schedule": yaml_loader.SCHEDULE_KEYS,
        "retry": yaml_loader.RETRY_KEYS,
        "shell": yaml_loader.SHELL_KEYS,
        "http": yaml_loader.HTTP_KEYS,
        "workflow": yaml_loader.WORKFLOW_KEYS,
        "undo": (*yaml_loader.ACTION_KEYS, *kinds),
    }
    for name, keys in expected.items():
        assert _properties(defs[name]) == set(keys), name
    actions = (*yaml_loader.ACTION_KEYS, *kinds)
    # A task has one action, or uses a template that gives it one.
    assert defs["task"]["oneOf"] == [{"required": [k]} for k in (*actions, "uses")]


def test_schema_closes_every_object() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml_json_schema())
