"""Task kinds as plugins (issue 15, part 1): the registry finds the built-in ``sql`` kind and
the example plugin installed in the test environment (``examples/plugins/greet``, a path
dependency of the dev group) through its entry point; both validate at load time with
line-numbered errors, author from Python, store as `PluginAction` (leaving the core kinds'
JSON as it was), show in the JSON Schema, and run through the worker's dispatch."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrion.errors import CancelRequested, SpecError, TaskError, TaskTimeout
from orchestrion.spec.json_schema import yaml_json_schema
from orchestrion.spec.kinds import (
    ENTRY_POINT_GROUP,
    KindRegistry,
    builtin_kinds,
    installed_kinds,
)
from orchestrion.spec.model import PluginAction, WorkflowSpec
from orchestrion.spec.python import plugin, shell, sql, task, workflow
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.worker.context import TaskContext
from orchestrion.worker.kinds import connection_names, run_plugin
from tests.helpers import task_context

GREET = "example-greet"


def load(body: str) -> WorkflowSpec:
    return load_yaml_text(textwrap.dedent(body))


def test_the_example_plugin_is_found_through_its_entry_point() -> None:
    from importlib.metadata import entry_points

    points = {p.name: p.value for p in entry_points(group=ENTRY_POINT_GROUP)}
    assert points[GREET] == "orchestrion_greet:GreetKind"
    registry = installed_kinds()
    assert registry.names() == [GREET, "sql"]
    assert "orchestrion-example-greet" in registry.origins[GREET]
    assert registry.get(GREET).name == GREET
    assert builtin_kinds().names() == ["sql"]


def test_a_broken_or_unknown_kind_is_a_spec_error() -> None:
    registry = KindRegistry({"bad": "no_such_module_xyz:Kind", "odd": "json:dumps"})
    with pytest.raises(SpecError, match=r"'bad'.*does not load"):
        registry.get("bad")
    with pytest.raises(SpecError, match=r"not an orchestrion\.spec\.kinds\.TaskKind"):
        registry.get("odd")
    with pytest.raises(SpecError, match=r"unknown task kind 'nope' \(installed: bad, odd\)"):
        registry.get("nope")


def test_yaml_plugin_and_sql_tasks_store_as_plugin_actions() -> None:
    spec = load(
        """
        name: kinds
        params: {name: {type: string}, day: {type: string}}
        tasks:
          hello:
            example-greet: {who: "{{ params.name }}", pause: 1s}
          load:
            sql:
              connection: warehouse
              query: "insert into sales select * from staging where day = :day"
              params: {day: "{{ params.day }}", note: "{{ tasks.hello.message }}"}
            undo:
              sql: {connection: warehouse, query: "delete from sales where day = :d",
                    params: {d: "{{ params.day }}"}}
        """.replace(':day"', ':day and note = :note"')
    )
    hello, load_task = spec.tasks
    assert hello.action == PluginAction(
        plugin=GREET, options={"who": "{{ params.name }}", "pause": 1.0}
    )
    assert isinstance(load_task.action, PluginAction) and load_task.action.plugin == "sql"
    assert load_task.depends_on == ("hello",)  # implied by the template in params
    assert isinstance(load_task.undo, PluginAction)
    data = json.loads(spec.to_json())
    assert data["tasks"][0]["action"] == {
        "kind": "plugin",
        "plugin": GREET,
        "options": {"who": "{{ params.name }}", "pause": 1.0},
    }
    assert WorkflowSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("task_body", "line", "message"),
    [
        ("example-greet: {who: x, greeting: 'Hi there'}", 5, "'greeting' is one word"),
        ("example-greet: {who: x, colour: red}", 5, "colour: Extra inputs are not permitted"),
        ("example-greet: {greeting: '{{ params.x }}', who: y}", 5, "'greeting' of a example-greet"),
        ("sql: {connection: w, query: 'select :a'}", 5, "binds :a but params has no 'a'"),
        ("sql: {connection: w, query: 'select 1', params: {b: 1}}", 5, "'b' is not used"),
        ("sql: {connection: w, query: 'select {{ params.x }}'}", 5, "not templated"),
        ("sql: {connection: w, query: 'select 1', result: all}", 5, "result: Input should be"),
        ("exmple-greet: {who: x}", 5, "did you mean 'example-greet'?"),
        ("example-greet: {who: x}\n    shell: [ls]", 6, "more than one action"),
    ],
)
def test_bad_kind_options_fail_at_load_time_with_a_line(
    task_body: str, line: int, message: str
) -> None:
    text = "name: w\nparams: {x: {type: string}}\ntasks:\n  t:\n    " + task_body + "\n"
    with pytest.raises(SpecError) as caught:
        load_yaml_text(text)
    assert message in str(caught.value)
    assert caught.value.line == line


def test_core_kinds_keep_their_json() -> None:
    """Adding PluginAction to the union changes nothing for specs without one."""
    spec = load("""
        name: core
        tasks:
          a: {shell: [echo, hi]}
          b: {http: {url: "https://example.com"}, depends_on: a}
        """)
    assert '"kind":"plugin"' not in spec.to_json()
    assert json.loads(spec.to_json())["tasks"][0]["action"]["kind"] == "shell"


def test_python_authoring_of_sql_and_plugin_tasks() -> None:
    @task
    def pick(day: str) -> dict[str, Any]:
        return {"who": day}

    @workflow
    def flow(day: str) -> None:
        picked = pick(day)
        plugin("hello", GREET, {"who": picked["who"], "greeting": "Hi"}, retries=2)
        sql("load", connection="wh", query="insert into t values (:d)", params={"d": day})

    spec = flow.spec
    hello, load_task = spec.task("hello"), spec.task("load")
    assert hello.action == PluginAction(
        plugin=GREET, options={"who": "{{ tasks.pick.who }}", "greeting": "Hi"}
    )
    assert hello.depends_on == ("pick",) and hello.retry.retries == 2
    assert load_task.action == PluginAction(
        plugin="sql",
        options={"connection": "wh", "query": "insert into t values (:d)",
                 "params": {"d": "{{ params.day }}"}},
    )  # fmt: skip


def test_python_authoring_refuses_refs_where_the_kind_renders_none() -> None:
    @workflow
    def bad(day: str) -> None:
        sql("load", connection="wh", query=f"select '{day}'")

    with pytest.raises(SpecError, match="formatted into the text"):
        _ = bad.spec

    @workflow
    def typo(day: str) -> None:
        plugin("hello", GREET, {"whom": day})

    with pytest.raises(SpecError, match=r"not templated|whom"):
        _ = typo.spec

    @workflow
    def unknown() -> None:
        shell("a", ["true"])
        plugin("x", "no-such-kind", {})

    with pytest.raises(SpecError, match="unknown task kind 'no-such-kind'"):
        _ = unknown.spec


def test_the_schema_shows_installed_kinds() -> None:
    committed = yaml_json_schema()
    assert "sql" in committed["$defs"] and GREET not in committed["$defs"]
    schema = yaml_json_schema(installed_kinds())
    greet = schema["$defs"][GREET]
    assert greet["additionalProperties"] is False
    assert set(greet["properties"]) == {"who", "greeting", "pause", "sign_with"}
    assert greet["required"] == ["who"]
    assert {"required": [GREET]} in schema["$defs"]["task"]["oneOf"]
    assert schema["$defs"]["task"]["properties"][GREET] == {"$ref": f"#/$defs/{GREET}"}


def test_the_cli_schema_and_validate_see_the_plugin(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrion.cli.main import main

    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert GREET in json.loads(result.output)["$defs"]
    good = tmp_path / "g.yaml"
    good.write_text("name: g\ntasks:\n  hi:\n    example-greet: {who: you}\n")
    bad = tmp_path / "b.yaml"
    bad.write_text("name: b\ntasks:\n  hi:\n    example-greet: {who: you, greeting: '1'}\n")
    result = CliRunner().invoke(main, ["validate", str(good), str(bad)])
    assert result.exit_code != 0
    assert f"ok {good}" in result.output
    assert "b.yaml:4:5" in result.output and "one word" in result.output
    listed = CliRunner().invoke(main, ["kinds", "-o", "json"])
    assert [k["name"] for k in json.loads(listed.output)] == [GREET, "sql"]
    shown = json.loads(CliRunner().invoke(main, ["kinds", GREET, "-o", "json"]).output)
    assert shown["templated"] == ["who"] and "orchestrion-example-greet" in shown["origin"]
    who = next(o for o in shown["options"] if o["name"] == "who")
    assert who["required"] and who["templated"] and "Whom to greet" in who["description"]
    missing = CliRunner().invoke(main, ["kinds", "nope"])
    assert missing.exit_code == 2 and "unknown task kind 'nope'" in missing.output


# ------------------------------------------------------------------------- running


def _ctx(cancel: threading.Event | None = None, **params: Any) -> TaskContext:
    return task_context(
        task_name="hello", attempt=2, params=params, cancel_event=cancel or threading.Event()
    )


def _greet(options: dict[str, Any], ctx: TaskContext, timeout: float | None = None) -> Any:
    scope = {"params": dict(ctx.params), "tasks": {}, "item": None}
    return run_plugin(PluginAction(plugin=GREET, options=options), ctx, scope, {}, timeout)


def test_the_plugin_runs_with_rendered_options() -> None:
    result = _greet({"who": "{{ params.name }}", "greeting": "Hi"}, _ctx(name="Ada"))
    assert result == {"message": "Hi, Ada!", "attempt": 2}


def test_the_plugin_raises_typed_errors() -> None:
    with pytest.raises(TaskError, match="nobody to greet"):
        _greet({"who": "{{ params.name }}"}, _ctx(name=" "))
    with pytest.raises(TaskTimeout):
        _greet({"who": "x", "pause": 5}, _ctx(), timeout=0.2)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(CancelRequested):
        _greet({"who": "x", "pause": 5}, _ctx(cancel))
    with pytest.raises(TaskError, match="bad example-greet options"):
        _greet({"who": "x", "greeting": "{{ params.g }}"}, _ctx(g="two words"))


def test_a_kind_this_worker_lacks_fails_the_attempt() -> None:
    action = PluginAction(plugin="not-installed", options={})
    with pytest.raises(TaskError, match="this worker cannot run the task"):
        connection_names(action)
    assert connection_names(PluginAction(plugin="sql", options={
        "connection": "wh", "query": "select 1"})) == ("wh",)  # fmt: skip


def test_the_plugin_reads_a_declared_secret() -> None:
    from orchestrion.auth.secret_box import Secret

    ctx = task_context(task_name="hello", secret_values={"sig": Secret("s3cr3t")})
    assert _greet({"who": "x", "sign_with": "sig"}, ctx)["message"] == "Hello, x! (s3cr3t)"
    with pytest.raises(Exception, match="did not declare the secret 'other'"):
        _greet({"who": "x", "sign_with": "other"}, ctx)
