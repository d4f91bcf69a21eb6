"""The Python authoring API: decorators and builders compile to the right WorkflowSpec."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.model import (
    HttpAction,
    ParamType,
    PythonAction,
    ShellAction,
    SubWorkflowAction,
    TaskSpec,
    TriggerRule,
    WorkflowSpec,
)
from orchestrion.spec.python import (
    MappedTaskRef,
    Task,
    TaskRef,
    Workflow,
    http,
    load_python_file,
    load_python_module,
    shell,
    task,
    workflow,
)
from orchestrion.worker.context import TaskContext

MOD = __name__


class TransientError(Exception):
    pass


@task
def extract(day: str) -> list[int]:
    """Extract the day's rows."""
    return [1, 2, 3]


@task(retries=3, backoff="2s", max_delay="1m", jitter=0.0, retry_on=[ValueError, "Boom"])
def transform(rows: list[int], factor: int = 2) -> list[int]:
    return [r * factor for r in rows]


@task
def load(rows: Any, ctx: Any) -> int:
    return len(rows)


@task
def square(x: int, offset: int = 0) -> int:
    return x * x + offset


@task
async def fetch(url: str) -> str:
    return url.upper()


@task
def combine(a: Any = None, b: Any = None, **more: Any) -> dict[str, Any]:
    return {"a": a, "b": b, **more}


def full_only(params: dict[str, Any]) -> bool:
    return bool(params.get("full"))


def undo_extract(day: str) -> None:
    return None


def bad_when(day: str) -> bool:
    return True


def task_of(wf: Workflow, name: str) -> TaskSpec:
    return wf.spec.task(name)


def inputs(spec: TaskSpec) -> dict[str, Any]:
    """Input name -> ("expr", text) or ("value", literal), for compact assertions."""
    return {
        k: ("expr", v.expr) if v.expr is not None else ("value", v.value)
        for k, v in spec.inputs.items()
    }


# ------------------------------------------------------------------ graph building


def test_chain_records_tasks_inputs_and_implied_dependencies() -> None:
    @workflow
    def etl(day: str) -> None:
        rows = extract(day)
        doubled = transform(rows, factor=3)
        load(doubled)

    spec = etl.spec
    assert [t.name for t in spec.tasks] == ["extract", "transform", "load"]
    assert inputs(task_of(etl, "extract")) == {"day": ("expr", "params.day")}
    assert inputs(task_of(etl, "transform")) == {
        "rows": ("expr", "tasks.extract"),
        "factor": ("value", 3),
    }
    assert inputs(task_of(etl, "load")) == {"rows": ("expr", "tasks.transform")}
    assert task_of(etl, "extract").depends_on == ()
    assert task_of(etl, "transform").depends_on == ("extract",)
    assert task_of(etl, "load").depends_on == ("transform",)
    assert task_of(etl, "load").action == PythonAction(ref=f"{MOD}:load")


def test_positional_and_keyword_arguments_bind_to_parameter_names() -> None:
    @workflow
    def wf() -> None:
        square(4, 1)
        square(offset=2, x=5)

    assert inputs(task_of(wf, "square")) == {"x": ("value", 4), "offset": ("value", 1)}
    assert inputs(task_of(wf, "square_2")) == {"x": ("value", 5), "offset": ("value", 2)}


def test_defaults_are_not_recorded_as_inputs() -> None:
    @workflow
    def wf() -> None:
        square(3)

    assert inputs(task_of(wf, "square")) == {"x": ("value", 3)}


def test_subscripted_refs_name_part_of_a_result() -> None:
    @workflow
    def wf() -> None:
        rows = extract("2024-01-01")
        combine(rows["count"], rows[0], odd=rows["my-key"], kw=rows["class"])

    assert inputs(task_of(wf, "combine")) == {
        "a": ("expr", "tasks.extract.count"),
        "b": ("expr", "tasks.extract[0]"),
        "odd": ("expr", 'tasks.extract["my-key"]'),
        "kw": ("expr", 'tasks.extract["class"]'),
    }
    assert task_of(wf, "combine").depends_on == ("extract",)


def test_lists_and_dicts_holding_refs_become_expressions() -> None:
    @workflow
    def wf(day: str) -> None:
        a = extract(day)
        b = extract(day)
        combine([a, b, 1, True, None], {"x": a, "s": 'q"uote'})

    spec = task_of(wf, "combine")
    assert inputs(spec) == {
        "a": ("expr", "[tasks.extract, tasks.extract_2, 1, True, None]"),
        "b": ("expr", '{"x": tasks.extract, "s": "q\\"uote"}'),
    }
    assert spec.depends_on == ("extract", "extract_2")


def test_literal_containers_are_normalised_json() -> None:
    @workflow
    def wf() -> None:
        combine((1, 2), {"k": (3.5, "x", None)})

    assert inputs(task_of(wf, "combine")) == {
        "a": ("value", [1, 2]),
        "b": ("value", {"k": [3.5, "x", None]}),
    }


def test_var_keyword_arguments_become_inputs() -> None:
    @workflow
    def wf(day: str) -> None:
        combine(extra=day, n=1)

    assert inputs(task_of(wf, "combine")) == {"extra": ("expr", "params.day"), "n": ("value", 1)}


def test_after_adds_ordering_only_dependencies() -> None:
    @workflow
    def wf() -> None:
        first = extract("d")
        other = square(2)
        combine.options(after=[first, other])(a=1)

    spec = task_of(wf, "combine")
    assert spec.depends_on == ("extract", "square")
    assert inputs(spec) == {"a": ("value", 1)}


def test_return_value_may_be_a_ref_or_nothing() -> None:
    @workflow
    def wf() -> TaskRef:
        return extract("d")  # type: ignore[no-any-return]

    assert [t.name for t in wf.spec.tasks] == ["extract"]


def test_task_names_in_hyphen_form_are_indexed_in_expressions() -> None:
    @workflow
    def wf() -> None:
        rows = extract.options(name="get-rows")("d")
        load(rows)

    assert inputs(task_of(wf, "load")) == {"rows": ("expr", 'tasks["get-rows"]')}


# ------------------------------------------------------------------ naming


def test_repeated_calls_are_auto_numbered() -> None:
    @workflow
    def wf() -> None:
        for day in ["a", "b", "c"]:
            extract(day)

    assert [t.name for t in wf.spec.tasks] == ["extract", "extract_2", "extract_3"]


def test_explicit_names_and_decorator_names() -> None:
    @task(name="named")
    def fn(x: int) -> int:
        return x

    @workflow
    def wf() -> None:
        fn(1)
        fn(2)
        extract.options(name="extract")("x")
        extract("y")

    assert [t.name for t in wf.spec.tasks] == ["named", "named_2", "extract", "extract_2"]


# ------------------------------------------------------------------ options


def test_decorator_options_become_retry_policy_and_fields() -> None:
    @task(
        timeout="5m",
        queue="io",
        priority=5,
        concurrency=2,
        trigger_rule="all_done",
        description="explicit",
        factor=3.0,
    )
    def opt(x: int) -> int:
        return x

    @workflow
    def wf() -> None:
        transform([1])
        opt(1)

    retry = task_of(wf, "transform").retry
    assert retry.retries == 3
    assert retry.backoff == 2.0
    assert retry.max_delay == 60.0
    assert retry.jitter == 0.0
    assert retry.retry_on == ("builtins.ValueError", "Boom")
    spec = task_of(wf, "opt")
    assert spec.timeout == 300.0
    assert spec.queue == "io"
    assert spec.priority == 5
    assert spec.concurrency == 2
    assert spec.trigger_rule is TriggerRule.ALL_DONE
    assert spec.description == "explicit"
    assert spec.retry.factor == 3.0


def test_description_defaults_to_the_docstring_first_line() -> None:
    @workflow
    def wf() -> None:
        """Daily ETL.

        More text.
        """
        extract("d")

    assert task_of(wf, "extract").description == "Extract the day's rows."
    assert wf.spec.description == "Daily ETL."


def test_options_override_for_one_call_only() -> None:
    @workflow
    def wf() -> None:
        transform.options(retries=7, retry_on=[TransientError], queue="q")([1])
        transform([2])

    first, second = task_of(wf, "transform"), task_of(wf, "transform_2")
    assert first.retry.retries == 7
    assert first.retry.retry_on == (f"{MOD}.TransientError",)
    assert first.retry.backoff == 2.0
    assert first.queue == "q"
    assert second.retry.retries == 3
    assert second.queue == "default"


def test_when_and_undo_refs_are_in_the_callables_map() -> None:
    @task(when=full_only, undo=undo_extract)
    def guarded(day: str) -> None:
        return None

    @workflow
    def wf(day: str, full: bool = False) -> None:
        guarded(day)
        square.options(undo=extract, when="params.full")(2)

    spec = task_of(wf, "guarded")
    assert spec.when is not None and spec.when.ref == f"{MOD}:full_only"
    assert spec.undo == PythonAction(ref=f"{MOD}:undo_extract")
    sq = task_of(wf, "square")
    assert sq.when is not None and sq.when.expr == "params.full"
    assert sq.undo == PythonAction(ref=f"{MOD}:extract")
    assert wf.callables == {
        f"{MOD}:{guarded.fn.__qualname__}": guarded.fn,
        f"{MOD}:full_only": full_only,
        f"{MOD}:undo_extract": undo_extract,
        f"{MOD}:square": square.fn,
        f"{MOD}:extract": extract.fn,
    }


def test_async_tasks_are_detected() -> None:
    @workflow
    def wf() -> None:
        fetch("http://x")
        extract("d")

    assert task_of(wf, "fetch").action == PythonAction(ref=f"{MOD}:fetch", is_async=True)
    assert fetch.is_async and not extract.is_async
    assert task_of(wf, "extract").action == PythonAction(ref=f"{MOD}:extract", is_async=False)


# ------------------------------------------------------------------ parameters


def test_parameter_types_defaults_and_required() -> None:
    @workflow
    def wf(  # type: ignore[no-untyped-def]
        s: str,
        i: int,
        f: float,
        b: bool,
        arr: list[int],
        obj: dict[str, Any],
        d: dt.date,
        ts: dt.datetime,
        opt: Optional[int],  # noqa: UP045 - the old spelling must work too
        opt2: str | None = None,
        n: int = 3,
        day: dt.date = dt.date(2024, 1, 2),
        tags: tuple[str, ...] = ("a", "b"),
        untyped=1.5,
        plain="x",
    ) -> None:
        extract(s)

    p = wf.spec.params
    expect = {
        "s": ParamType.STRING,
        "i": ParamType.INTEGER,
        "f": ParamType.NUMBER,
        "b": ParamType.BOOLEAN,
        "arr": ParamType.ARRAY,
        "obj": ParamType.OBJECT,
        "d": ParamType.DATE,
        "ts": ParamType.DATETIME,
        "opt": ParamType.INTEGER,
        "opt2": ParamType.STRING,
        "n": ParamType.INTEGER,
        "day": ParamType.DATE,
        "tags": ParamType.ARRAY,
        "untyped": ParamType.NUMBER,
        "plain": ParamType.STRING,
    }
    assert {k: v.type for k, v in p.items()} == expect
    assert list(p) == list(expect)
    assert [k for k, v in p.items() if v.required] == ["s", "i", "f", "b", "arr", "obj", "d", "ts"]
    assert p["n"].default == 3
    assert p["day"].default == "2024-01-02"
    assert p["tags"].default == ["a", "b"]
    assert p["opt"].default is None and not p["opt"].required


def test_literal_parameters_become_enums() -> None:
    @workflow
    def wf(
        mode: Literal["fast", "slow"] = "fast",
        level: Literal[1, 2, 3] = 2,
        ratio: Literal[0.5, 1] = 1,  # type: ignore[valid-type]
        flag: Literal[True] = True,
        pick: Literal["x", "y"] | None = None,
    ) -> None:
        extract(mode)

    p = wf.spec.params
    assert (p["mode"].type, p["mode"].enum, p["mode"].default) == (
        ParamType.STRING,
        ("fast", "slow"),
        "fast",
    )
    assert (p["level"].type, p["level"].enum) == (ParamType.INTEGER, (1, 2, 3))
    assert (p["ratio"].type, p["ratio"].enum) == (ParamType.NUMBER, (0.5, 1))
    assert (p["flag"].type, p["flag"].enum) == (ParamType.BOOLEAN, (True,))
    assert (p["pick"].type, p["pick"].required) == (ParamType.STRING, False)


def test_annotated_text_is_the_parameter_description() -> None:
    @workflow
    def wf(day: Annotated[str, "The day to process"]) -> None:
        extract(day)

    assert wf.spec.params["day"].description == "The day to process"
    assert wf.spec.params["day"].type is ParamType.STRING


def test_workflow_settings() -> None:
    @workflow(
        name="nightly",
        description="d",
        timeout="2h",
        max_active_runs=1,
        schedule="0 3 * * *",
        schedules=["30 4 * * 1", {"cron": "0 0 1 * *", "params": {"full": True}}],
        timezone="Europe/Paris",
        tags=["etl", "daily"],
    )
    def wf(full: bool = False) -> None:
        extract("d")

    spec = wf.spec
    assert (spec.name, spec.description, spec.timeout, spec.max_active_runs) == (
        "nightly",
        "d",
        7200.0,
        1,
    )
    assert [(s.cron, s.timezone, s.params) for s in spec.schedules] == [
        ("0 3 * * *", "Europe/Paris", {}),
        ("30 4 * * 1", "Europe/Paris", {}),
        ("0 0 1 * *", "Europe/Paris", {"full": True}),
    ]
    assert spec.tags == ("etl", "daily")
    assert wf.name == "nightly"


# ------------------------------------------------------------------ mapping


def test_map_over_a_task_result_positionally() -> None:
    @workflow
    def wf() -> None:
        rows = extract("d")
        squares = square.map(rows, offset=1)
        load(squares)

    sq = task_of(wf, "square")
    assert sq.map_over == "tasks.extract"
    assert inputs(sq) == {"x": ("expr", "item"), "offset": ("value", 1)}
    assert sq.depends_on == ("extract",)
    downstream = task_of(wf, "load")
    assert inputs(downstream) == {"rows": ("expr", "tasks.square")}
    assert downstream.depends_on == ("square",)


def test_map_positional_binds_first_parameter_not_given_by_name() -> None:
    @task
    def upload(bucket: str, path: str) -> str:
        return f"{bucket}/{path}"

    @workflow
    def wf(bucket: str) -> None:
        files = extract("d")
        upload.map(files, bucket=bucket)

    spec = task_of(wf, "upload")
    assert inputs(spec) == {"bucket": ("expr", "params.bucket"), "path": ("expr", "item")}
    assert spec.map_over == "tasks.extract"


def test_map_by_keyword_and_over_array_params() -> None:
    @workflow
    def wf(items: list[int], cfg: dict[str, Any], n: int = 1) -> None:
        square.map(x=items, offset=n)
        square.map(cfg["values"])
        rows = extract("d")
        square.map(rows["list"])

    first = task_of(wf, "square")
    assert first.map_over == "params.items"
    assert inputs(first) == {"x": ("expr", "item"), "offset": ("expr", "params.n")}
    assert first.depends_on == ()
    assert task_of(wf, "square_2").map_over == "params.cfg.values"
    assert task_of(wf, "square_3").map_over == "tasks.extract.list"


def test_gathered_results_can_be_indexed_by_position() -> None:
    @workflow
    def wf() -> None:
        results = square.map(extract("d"))
        assert isinstance(results, MappedTaskRef) and results.mapped
        load(results[0])

    assert inputs(task_of(wf, "load")) == {"rows": ("expr", "tasks.square[0]")}


def test_map_over_a_mapped_result() -> None:
    @workflow
    def wf() -> None:
        squares = square.map(extract("d"))
        square.map(squares)

    assert task_of(wf, "square_2").map_over == "tasks.square"


# ------------------------------------------------------------------ sub-workflows


@workflow
def child(n: int, label: str = "x", extra: dict[str, Any] | None = None) -> None:
    square(n)


def test_sub_workflow_call_records_templates_and_literals() -> None:
    @workflow
    def parent(day: str) -> None:
        rows = extract(day)
        result = child(n=rows["count"], label=day, extra={"k": [rows, 1]})
        load(result)

    spec = task_of(parent, "child")
    assert spec.action == SubWorkflowAction(
        workflow="child",
        params={
            "n": "{{ tasks.extract.count }}",
            "label": "{{ params.day }}",
            "extra": {"k": ["{{ tasks.extract }}", 1]},
        },
    )
    assert spec.depends_on == ("extract",)
    assert inputs(task_of(parent, "load")) == {"rows": ("expr", "tasks.child")}
    assert parent.subworkflows == {"child": child}


def test_sub_workflow_positional_params_and_options() -> None:
    @workflow
    def parent() -> None:
        first = child(5)
        child.options(name="again", retries=2, after=[first])(6, "lbl")

    assert task_of(parent, "child").action == SubWorkflowAction(workflow="child", params={"n": 5})
    again = task_of(parent, "again")
    assert again.action == SubWorkflowAction(workflow="child", params={"n": 6, "label": "lbl"})
    assert again.retry.retries == 2
    assert again.depends_on == ("child",)


# ------------------------------------------------------------------ shell and http


def test_shell_builder_templates_refs_and_depends_on_them() -> None:
    @workflow
    def wf(day: str, n: int = 2) -> None:
        rows = extract(day)
        shell(
            "report",
            argv=["report", "--day", day, rows["path"], f"--n={n}", 7],
            env={"DAY": day, "LIMIT": 10},
            cwd="/tmp",
            json_output=True,
            retries=2,
            timeout="1m",
        )

    spec = task_of(wf, "report")
    assert spec.action == ShellAction(
        argv=(
            "report",
            "--day",
            "{{ params.day }}",
            "{{ tasks.extract.path }}",
            "--n={{ params.n }}",
            "7",
        ),
        env={"DAY": "{{ params.day }}", "LIMIT": "10"},
        cwd="/tmp",
        json_output=True,
    )
    assert spec.depends_on == ("extract",)
    assert spec.retry.retries == 2
    assert spec.timeout == 60.0


def test_shell_script_gets_values_through_env() -> None:
    @workflow
    def wf() -> None:
        rows = extract("d")
        shell("sum", script='echo "$ROWS" | wc -l', env={"ROWS": rows})

    spec = task_of(wf, "sum")
    assert spec.action == ShellAction(
        script='echo "$ROWS" | wc -l', env={"ROWS": "{{ tasks.extract }}"}
    )
    assert spec.depends_on == ("extract",)


def test_formatted_ref_in_a_string_adds_its_dependency() -> None:
    @workflow
    def wf() -> None:
        rows = extract("d")
        shell("echo", argv=["echo", f"rows={rows['n']}!"])

    spec = task_of(wf, "echo")
    assert isinstance(spec.action, ShellAction)
    assert spec.action.argv == ("echo", "rows={{ tasks.extract.n }}!")
    assert spec.depends_on == ("extract",)


def test_http_builder() -> None:
    @workflow
    def wf(token: str, base: str = "https://api.example.com") -> None:
        rows = extract("d")
        http(
            "post",
            f"{base}/items",
            method="post",
            headers={"Authorization": f"Bearer {token}"},
            json={"rows": rows, "n": [1, rows["count"]], "ok": True},
            expect_status=[200, 201],
            timeout="10s",
            queue="net",
        )

    spec = task_of(wf, "post")
    assert spec.action == HttpAction(
        method="POST",
        url="{{ params.base }}/items",
        headers={"Authorization": "Bearer {{ params.token }}"},
        json_body={
            "rows": "{{ tasks.extract }}",
            "n": [1, "{{ tasks.extract.count }}"],
            "ok": True,
        },
        expect_status=(200, 201),
        timeout=10.0,
    )
    assert spec.depends_on == ("extract",)
    assert spec.queue == "net"


def test_http_url_may_be_a_whole_ref() -> None:
    @workflow
    def wf(url: str) -> None:
        http("get", url)

    spec = task_of(wf, "get")
    assert isinstance(spec.action, HttpAction)
    assert spec.action.url == "{{ params.url }}"
    assert spec.action.method == "GET"


# ------------------------------------------------------------------ outside a build


def test_calling_a_task_outside_a_workflow_runs_the_function() -> None:
    assert extract("d") == [1, 2, 3]
    assert transform([1, 2]) == [2, 4]
    assert square(3, offset=1) == 10
    assert asyncio.run(fetch("abc")) == "ABC"


def test_a_task_declaring_ctx_needs_it_outside_a_workflow() -> None:
    with pytest.raises(TypeError):
        load([1, 2])
    assert load([1, 2], ctx=object()) == 2


def test_task_context_is_found_by_annotation_and_is_not_an_input() -> None:
    @task
    def uses_context(n: int, context: TaskContext) -> int:
        return n

    @workflow
    def wf() -> None:
        uses_context(1)

    assert inputs(task_of(wf, "uses_context")) == {"n": ("value", 1)}


def test_when_callable_may_take_results_and_kwargs() -> None:
    def when_any(results: dict[str, Any], **rest: Any) -> bool:
        return bool(results)

    @workflow
    def wf() -> None:
        square.options(when=when_any)(1)

    spec = task_of(wf, "square")
    assert spec.when is not None and spec.when.ref == f"{MOD}:{when_any.__qualname__}"
    assert wf.callables[spec.when.ref] is when_any


def test_task_keeps_the_function_identity() -> None:
    assert isinstance(extract, Task)
    assert extract.__name__ == "extract"
    assert extract.__doc__ == "Extract the day's rows."
    assert extract.__wrapped__ is extract.fn
    assert extract.ref == f"{MOD}:extract"


# ------------------------------------------------------------------ spec as data


def test_spec_json_round_trip_and_version() -> None:
    @workflow(schedule="0 3 * * *")
    def wf(day: str, mode: Literal["a", "b"] = "a", when: dt.date = dt.date(2024, 5, 1)) -> None:
        rows = extract(day)
        out = transform.options(retry_on=[TransientError])(rows)
        square.map(out, offset=1)
        combine((1, 2), {"k": (rows, 2)})
        shell("sh", argv=["echo", rows])
        http("h", "https://x", json={"a": (1, 2)})
        child(n=3)

    spec = wf.spec
    again = WorkflowSpec.from_json(spec.to_json())
    assert again == spec
    assert again.version == spec.version
    assert wf.spec is spec  # cached


def test_builds_are_independent_across_threads() -> None:
    def make(i: int) -> Workflow:
        def body() -> None:
            for _ in range(50):
                extract(str(i))

        body.__name__ = f"wf{i}"
        body.__qualname__ = f"wf{i}"
        return workflow(body)

    flows = [make(i) for i in range(8)]
    errors: list[BaseException] = []

    def build(wf: Workflow) -> None:
        try:
            assert len(wf.spec.tasks) == 50
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(wf,)) for wf in flows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, wf in enumerate(flows):
        assert {inputs(t)["day"] for t in wf.spec.tasks} == {("value", str(i))}


def test_nested_builds_do_not_mix() -> None:
    @workflow
    def inner() -> None:
        square(1)

    @workflow
    def outer() -> None:
        extract("d")
        assert [t.name for t in inner.spec.tasks] == ["square"]
        load(1)

    assert [t.name for t in outer.spec.tasks] == ["extract", "load"]


def test_importing_the_authoring_api_is_cheap() -> None:
    code = (
        "import sys, orchestrion.spec.python\n"
        "heavy = {'click', 'rich', 'httpx', 'sqlite3', 'sqlalchemy', 'yaml', 'asyncio'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ build errors


def _build_error(body: Any, **kwargs: Any) -> SpecError:
    wf = workflow(**kwargs)(body) if kwargs else workflow(body)
    with pytest.raises(SpecError) as info:
        _ = wf.spec
    return info.value


def test_truthiness_of_a_ref_is_refused_with_advice() -> None:
    def wf(day: str) -> None:
        rows = extract(day)
        if rows:
            load(rows)

    err = _build_error(wf)
    assert "tasks.extract has no value while the workflow is being built" in err.message
    assert "when=" in err.message
    assert err.source == __file__
    assert err.line is not None


def test_param_truthiness_and_iteration_are_refused() -> None:
    def wf(full: bool = False) -> None:
        if not full:
            extract("d")

    assert "params.full has no value" in _build_error(wf).message

    def wf2() -> None:
        for row in extract("d"):
            load(row)

    assert "use task.map(...)" in _build_error(wf2).message


def test_comparing_a_ref_is_refused() -> None:
    def wf(day: str) -> None:
        if day == "monday":
            extract(day)

    err = _build_error(wf)
    assert "params.day cannot be compared while the workflow is being built" in err.message
    assert err.line == wf.__code__.co_firstlineno + 1


def test_bad_per_call_option_points_at_the_call() -> None:
    def wf() -> None:
        square.options(retrys=1)(2)  # type: ignore[call-arg]

    err = _build_error(wf)
    assert err.detail.startswith("workflow 'wf': task 'square': unknown option 'retrys'")
    assert err.line == wf.__code__.co_firstlineno + 1

    def wf2() -> None:
        square.options(name="no spaces")(2)

    assert "task name 'no spaces' is invalid" in _build_error(wf2).message


def test_two_sub_workflows_with_one_name() -> None:
    def other() -> None:
        square(1)

    impostor = workflow(name="child")(other)

    def wf() -> None:
        child(n=1)
        impostor()

    assert "two different workflows are named 'child'" in _build_error(wf).message


def test_unknown_keyword_argument() -> None:
    def wf() -> None:
        square(x=1, ofset=2)

    err = _build_error(wf)
    assert err.detail == (
        "workflow 'wf': task 'square': unknown argument 'ofset' (parameters: x, offset)"
    )


def test_missing_required_argument() -> None:
    def wf() -> None:
        square(offset=2)

    assert (
        "task 'square': bad arguments: missing a required argument: 'x'" in _build_error(wf).message
    )


def test_too_many_positional_arguments() -> None:
    def wf() -> None:
        square(1, 2, 3)

    assert "task 'square': bad arguments: too many positional arguments" in _build_error(wf).message


def test_non_json_literal_names_task_and_argument() -> None:
    def wf() -> None:
        square({1, 2})

    assert _build_error(wf).detail == (
        "workflow 'wf': task 'square': argument 'x': a value of type set is not "
        "JSON-serialisable (use None, bool, int, float, str, list or dict)"
    )


def test_non_json_nested_literal_names_its_position() -> None:
    def wf() -> None:
        combine(a=[1, {"k": object()}])

    assert (
        "argument 'a': at [1]['k']: a value of type object is not JSON" in _build_error(wf).message
    )


def test_non_string_dict_key_and_nan_are_refused() -> None:
    def wf() -> None:
        combine(a={1: "x"})

    assert "argument 'a': dict key 1 is not a string" in _build_error(wf).message

    def wf2() -> None:
        combine(b=float("nan"))

    assert "argument 'b': nan is not a JSON number" in _build_error(wf2).message


def test_duplicate_explicit_names() -> None:
    def wf() -> None:
        extract.options(name="x")("a")
        square.options(name="x")(1)

    assert _build_error(wf).detail == (
        "workflow 'wf': task 'x': duplicate task name (names given explicitly must be unique)"
    )


def test_duplicate_shell_names() -> None:
    def wf() -> None:
        shell("s", argv=["a"])
        shell("s", argv=["b"])

    assert "task 's': duplicate task name" in _build_error(wf).message


def test_ref_from_another_workflow() -> None:
    leaked: list[Any] = []

    @workflow
    def first() -> None:
        leaked.append(extract("d"))

    _ = first.spec

    def second() -> None:
        load(leaked[0])

    err = _build_error(second)
    assert err.detail == (
        "workflow 'second': task 'load': tasks.extract belongs to workflow 'first', not to "
        "this one; pass values between workflows as sub-workflow parameters"
    )


def test_passing_ctx_is_refused() -> None:
    def wf() -> None:
        load([1], ctx=None)

    assert (
        "task 'load': 'ctx' is passed by the worker at run time; omit it"
        in _build_error(wf).message
    )


def test_map_needs_exactly_one_list() -> None:
    def wf() -> None:
        a, b = extract("a"), extract("b")
        combine.map(a=a, b=b)

    assert "map() needs exactly one list argument" in _build_error(wf).message
    assert "found 2: a, b" in _build_error(wf).message


def test_map_over_a_non_array_parameter_or_a_literal() -> None:
    def wf(day: str) -> None:
        square.map(day)

    assert (
        "map(): argument 'x' must be a task result or an array parameter, not <ParamRef "
        "params.day>" in _build_error(wf).message
    )

    def wf2() -> None:
        square.map([1, 2, 3])

    assert "must be a task result or an array parameter" in _build_error(wf2).message


def test_map_with_two_positional_arguments() -> None:
    def wf() -> None:
        rows = extract("a")
        square.map(rows, 1)

    assert "map() takes the mapped list as its only positional arg" in _build_error(wf).message


def test_indexing_a_gathered_list_by_key() -> None:
    def wf() -> None:
        results = square.map(extract("a"))
        load(results["x"])

    assert (
        "is the list of a mapped task's results; index it with an int" in _build_error(wf).message
    )


def test_formatted_ref_passed_to_a_python_task() -> None:
    def wf(day: str) -> None:
        extract(f"day={day}")

    err = _build_error(wf)
    assert "argument 'day': params.day was formatted into a string" in err.message
    assert "Pass the reference itself" in err.message


def test_after_takes_task_refs_only() -> None:
    def wf(day: str) -> None:
        extract.options(after=[day])("x")  # type: ignore[list-item]

    assert "after= takes task references" in _build_error(wf).message


def test_bad_retry_value_at_build_time() -> None:
    def wf() -> None:
        square.options(retries=-1)(1)

    err = _build_error(wf)
    assert "bad retry option: retries: must be at least 0" in err.message


def test_bad_task_field_value() -> None:
    def wf() -> None:
        square.options(priority=5000, queue="q")(1)

    assert "task 'square': priority: must be at most 1000" in (_build_error(wf).message)


def test_workflow_without_tasks() -> None:
    def wf() -> None:
        return None

    assert "workflow 'wf': it defines no tasks" in _build_error(wf).message


def test_workflow_returning_a_value() -> None:
    def wf() -> int:
        extract("d")
        return 3

    assert "the workflow function returned 3; return nothing or a task" in (
        _build_error(wf).message
    )


def test_user_exception_in_the_body_becomes_a_spec_error_at_its_line() -> None:
    def wf() -> None:
        extract("d")
        raise KeyError("oops")

    err = _build_error(wf)
    assert err.detail == "workflow 'wf': building failed: KeyError: 'oops'"
    assert err.source == __file__
    assert err.line == wf.__code__.co_firstlineno + 2
    assert isinstance(err.__cause__, KeyError)


def test_sub_workflow_parameter_errors() -> None:
    def wf() -> None:
        child(n=1, lable="x")

    assert "task 'child': workflow 'child' has no parameter 'lable' (parameters: n, label, " in (
        _build_error(wf).message
    )

    def wf2() -> None:
        child(label="x")

    assert "missing required parameter 'n' of workflow 'child'" in _build_error(wf2).message


def test_workflow_cannot_call_itself() -> None:
    @workflow
    def loop() -> None:
        extract("d")
        loop()

    with pytest.raises(SpecError, match="a workflow cannot run itself as a sub-workflow"):
        _ = loop.spec


def test_shell_errors() -> None:
    def wf() -> None:
        shell("s", argv="echo hi")

    assert "argv is a list of arguments; for a command line use script=" in (
        _build_error(wf).message
    )

    def wf2() -> None:
        shell("s", argv=["echo"], script="echo")

    assert "a shell task needs exactly one of 'argv' or 'script'" in _build_error(wf2).message

    def wf3(day: str) -> None:
        shell("s", script=f"echo {day}")

    assert "script must be plain text" in _build_error(wf3).message

    def wf4() -> None:
        shell("s", argv=["echo", None])

    assert "argv[1]: expected a string or a reference, got NoneType" in _build_error(wf4).message

    def wf5() -> None:
        shell("bad name", argv=["x"])

    assert "shell task name 'bad name' is invalid" in _build_error(wf5).message

    def wf6() -> None:
        shell("s", argv=["x"], retrys=3)  # type: ignore[call-arg]

    assert "task 's': unknown option 'retrys'" in _build_error(wf6).message


def test_http_errors() -> None:
    def wf() -> None:
        http("h", "https://x", method="FETCH")

    assert "task 'h': method: expected one of 'GET'" in _build_error(wf).message

    def wf2() -> None:
        http("h", "https://x", json={"a": {1, 2}})

    assert "task 'h': json: at ['a']: a value of type set" in _build_error(wf2).message


def test_two_callables_sharing_a_reference() -> None:
    def make() -> Task:
        @task
        def same(x: int) -> int:
            return x

        return same

    a, b = make(), make()

    def wf() -> None:
        a(1)
        b(2)

    assert "two different callables share the reference" in _build_error(wf).message


# ------------------------------------------------------------------ definition errors


def test_task_decorator_errors() -> None:
    with pytest.raises(SpecError, match=r"after= is per call"):
        task(after=[])(lambda: None)
    with pytest.raises(SpecError, match=r"unknown option 'retrys' \(options: "):
        task(retrys=3)(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(SpecError, match=r"task name '<lambda>' is invalid"):
        task(lambda: None)
    with pytest.raises(SpecError, match=r"retry_on takes exception classes or their names"):
        task(retry_on=[int])(undo_extract)  # type: ignore[list-item]
    with pytest.raises(SpecError, match=r"already a task"):
        task(extract)


def test_task_option_errors_point_at_the_function() -> None:
    def f(x: int, /) -> int:
        return x

    with pytest.raises(SpecError, match=r"parameter 'x' is positional-only") as info:
        task(f)
    assert info.value.source == __file__
    assert info.value.line == f.__code__.co_firstlineno
    with pytest.raises(SpecError, match=r"bad retry option: jitter"):
        square.options(jitter=2.0)


def test_when_callable_signature_is_checked() -> None:
    with pytest.raises(SpecError, match=r"the when callable .*bad_when takes 'day'"):
        task(when=bad_when)(undo_extract)


def test_workflow_definition_errors() -> None:
    class Custom:
        pass

    def unsupported(x: Custom) -> None:
        extract("d")

    with pytest.raises(SpecError, match=r"cannot resolve its parameter annotations"):
        workflow(unsupported)  # Custom is local: the annotation string cannot be resolved

    def mixed(x: Literal["a", 1]) -> None:
        extract("d")

    with pytest.raises(SpecError, match=r"parameter 'x': Literal values \['a', 1\] must all be"):
        workflow(mixed)

    def wrong_default(n: int = "3") -> None:  # type: ignore[assignment]
        extract("d")

    with pytest.raises(SpecError, match=r"parameter 'n': default '3' is not of type integer"):
        workflow(wrong_default)

    def bad_enum(m: Literal["a", "b"] = "c") -> None:  # type: ignore[assignment]
        extract("d")

    with pytest.raises(SpecError, match=r"parameter 'm': default 'c' is not one of \['a', 'b'\]"):
        workflow(bad_enum)


def test_workflow_signature_errors() -> None:
    def union(x: int | str) -> None:
        extract("d")

    with pytest.raises(SpecError, match=r"parameter 'x': union .* is not supported"):
        workflow(union)

    def star(*args: int) -> None:
        extract("d")

    with pytest.raises(SpecError, match=r"\*args cannot be a workflow parameter"):
        workflow(star)

    def sets(x: set[int]) -> None:
        extract("d")

    with pytest.raises(SpecError, match=r"parameter 'x': type set\[int\] is not supported"):
        workflow(sets)


def test_workflow_settings_errors() -> None:
    def wf() -> None:
        extract("d")

    with pytest.raises(SpecError, match=r"bad schedule 'not a cron'"):
        workflow(schedule="not a cron")(wf)
    with pytest.raises(SpecError, match=r"unknown time zone 'Mars/Base'"):
        workflow(schedule="0 3 * * *", timezone="Mars/Base")(wf)
    with pytest.raises(SpecError, match=r"unknown setting 'schedul'"):
        workflow(schedul="0 3 * * *")(wf)  # type: ignore[call-overload]
    with pytest.raises(SpecError, match=r"name 'a b' is invalid"):
        workflow(name="a b")(wf)
    with pytest.raises(SpecError, match=r"max_active_runs: must be at least 1"):
        _ = workflow(max_active_runs=0)(wf).spec
    with pytest.raises(SpecError, match=r"@workflow decorates a plain function"):
        workflow(extract)


def test_calls_outside_a_build() -> None:
    with pytest.raises(SpecError, match=r"workflow 'child' was called outside a workflow build"):
        child(n=1)
    with pytest.raises(SpecError, match=r"map\(\) can only be used inside a @workflow"):
        square.map([1, 2])
    with pytest.raises(SpecError, match=r"shell\('s'\) can only be called inside a @workflow"):
        shell("s", argv=["x"])
    leaked: list[Any] = []

    @workflow
    def wf() -> None:
        leaked.append(extract("d"))

    _ = wf.spec
    with pytest.raises(SpecError, match=r"called outside a workflow build with <TaskRef"):
        load(leaked[0], ctx=None)


# ------------------------------------------------------------------ loading files


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Loading files adds modules and a sys.path entry; undo both after each test."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


GOOD = """
from __future__ import annotations

from orchestrion.spec.python import task, workflow
from wf_helpers import double


@task
def first(n: int) -> int:
    return double(n)


@workflow
def zeta(n: int = 1):
    first(n)


@workflow(name="alpha")
def alpha_flow():
    first(2)

alias = zeta
"""


def test_load_python_file(tmp_path: Path, clean_imports: None) -> None:
    (tmp_path / "wf_helpers.py").write_text("def double(n):\n    return n * 2\n")
    path = tmp_path / "flows_good.py"
    path.write_text(GOOD)
    flows = load_python_file(path)
    assert [w.name for w in flows] == ["zeta", "alpha"]
    zeta = flows[0]
    assert zeta.spec.task("first").action == PythonAction(ref="flows_good:first")
    fn = zeta.callables["flows_good:first"]
    assert fn(3) == 6
    assert sys.modules["flows_good"].zeta is zeta
    again = load_python_file(str(path))
    assert again[0] is not zeta
    assert again[0].spec.version == zeta.spec.version
    assert again[0].spec.to_json() == zeta.spec.to_json()


def test_load_python_file_syntax_error_names_file_and_line(
    tmp_path: Path, clean_imports: None
) -> None:
    path = tmp_path / "flows_syntax.py"
    path.write_text("x = 1\n\ndef broken(:\n    pass\n")
    with pytest.raises(SpecError) as info:
        load_python_file(path)
    err = info.value
    assert err.source == str(path)
    assert err.line == 3
    assert err.detail.startswith("syntax error:")
    assert "flows_syntax" not in sys.modules


def test_load_python_file_import_error_names_file_and_line(
    tmp_path: Path, clean_imports: None
) -> None:
    path = tmp_path / "flows_import.py"
    path.write_text("import os\n\nimport no_such_module_xyz\n")
    with pytest.raises(SpecError) as info:
        load_python_file(path)
    err = info.value
    assert err.source == str(path)
    assert err.line == 3
    assert "import failed: ModuleNotFoundError: No module named 'no_such_module_xyz'" in err.detail
    assert "flows_import.py" in err.detail  # the traceback summary
    assert "flows_import" not in sys.modules


def test_load_python_file_definition_error_keeps_its_location(
    tmp_path: Path, clean_imports: None
) -> None:
    path = tmp_path / "flows_bad_def.py"
    path.write_text(
        textwrap.dedent(
            """
            from orchestrion.spec.python import task

            @task(retries=-2)
            def f():
                pass
            """
        )
    )
    with pytest.raises(SpecError, match=r"bad retry option: retries") as info:
        load_python_file(path)
    assert info.value.source == str(path)
    assert info.value.line == 4  # the decorator's line: where the bad option is


def test_load_python_file_errors_for_missing_file_and_taken_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no such file"):
        load_python_file(tmp_path / "absent.py")
    clash = tmp_path / "json.py"
    clash.write_text("x = 1\n")
    with pytest.raises(SpecError, match=r"module name 'json' is already taken"):
        load_python_file(clash)


def test_load_python_module(tmp_path: Path, clean_imports: None) -> None:
    (tmp_path / "wf_helpers.py").write_text("def double(n):\n    return n * 2\n")
    (tmp_path / "flows_by_name.py").write_text(GOOD)
    sys.path.insert(0, str(tmp_path))
    flows = load_python_module("flows_by_name")
    assert [w.name for w in flows] == ["zeta", "alpha"]
    with pytest.raises(SpecError, match=r"import failed: ModuleNotFoundError"):
        load_python_module("no_such_module_xyz")


def test_shell_argv_by_position() -> None:
    """``shell(name, [argv])`` is the natural call; it must not raise a TypeError (issue 12)."""

    @workflow
    def positional() -> None:
        shell("echo", ["echo", "hi"])

    action = positional.spec.tasks[0].action
    assert isinstance(action, ShellAction) and action.argv == ("echo", "hi")

    def wf() -> None:
        shell("s", "echo hi")

    assert "argv is a list of arguments; for a command line use script=" in (
        _build_error(wf).message
    )

    def wf2() -> None:
        shell("s", ["echo"], "x")

    message = _build_error(wf2).message
    assert "task 's'" in message and "shell(name, argv) takes 2 arguments by position" in message

    def wf3() -> None:
        http("h", "https://example.com", "POST")

    assert "http(name, url) takes 2 arguments by position, got 3" in _build_error(wf3).message


def test_a_ref_shows_as_its_expression_to_rich_too() -> None:
    """Not the whole build it belongs to (every task and callable so far)."""
    from rich.pretty import pretty_repr

    @workflow
    def wf() -> None:
        ref = step()
        assert pretty_repr(ref) == repr(ref) == "<TaskRef tasks.step>"

    @task
    def step() -> int:
        return 1

    wf.spec  # noqa: B018  # builds the workflow, running the assertions inside it
