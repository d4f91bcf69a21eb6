"""The sandboxed expression language: what it computes, what it refuses, how it fails."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions import (
    MAX_LENGTH,
    MAX_SIZE,
    TEMPLATE_RE,
    Expression,
    compile_expression,
    is_template,
    render,
    render_url,
    template_references,
    to_text,
    whole_template,
)

SCOPE: dict[str, Any] = {
    "params": {"n": 3, "name": "Ada", "xs": [3, 1, 2], "flag": False, "none": None, "f": 2.5},
    "tasks": {"extract": {"rows": 10, "names": ["a", "b"]}, "load": {"ok": True}},
    "item": {"id": 7, "tags": ["x"]},
}


def ev(text: str, scope: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(SCOPE if scope is None else scope)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("-2.5", -2.5),
        ("'a'", "a"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("True and not False", True),
        ("None is None", True),
        ("[1, 'a', null]", [1, "a", None]),
        ("(1, 2)", [1, 2]),
        ("{'a': 1, 'b': [true]}", {"a": 1, "b": [True]}),
        ("params.n", 3),
        ("params['name']", "Ada"),
        ("tasks.extract.rows", 10),
        ("tasks['extract']['names'][0]", "a"),
        ("tasks.extract.names[-1]", "b"),
        ("params.xs[1:]", [1, 2]),
        ("params.xs[::-1]", [2, 1, 3]),
        ("params.name[:2]", "Ad"),
        ("item.id", 7),
        ("params.n + 1", 4),
        ("params.n - 5", -2),
        ("params.n * 2", 6),
        ("params.n / 2", 1.5),
        ("params.n // 2", 1),
        ("params.n % 2", 1),
        ("-params.n", -3),
        ("+params.f", 2.5),
        ("'a' + 'b'", "ab"),
        ("[1] + [2]", [1, 2]),
        ("'ab' * 2", "abab"),
        ("2 * [0]", [0, 0]),
        ("params.n == 3", True),
        ("params.n != 3", False),
        ("1 < params.n <= 3", True),
        ("params.n > 5", False),
        ("params.n >= 3", True),
        ("'a' < 'b'", True),
        ("'d' in params.name", True),
        ("2 in params.xs", True),
        ("'n' in params", True),
        ("'zz' not in params", True),
        ("params.none is None", True),
        ("params.n is not None", True),
        ("params.flag or 'fallback'", "fallback"),
        ("params.n and 'yes'", "yes"),
        ("params.flag and 1/0", False),
        ("not params.flag", True),
        ("'big' if params.n > 2 else 'small'", "big"),
        ("'big' if params.n > 5 else 'small'", "small"),
        ("len(params.xs)", 3),
        ("len('abc')", 3),
        ("len(params)", 6),
        ("str(params.n)", "3"),
        ("str(true)", "true"),
        ("str(null)", "null"),
        ("str([1, 'a'])", '[1,"a"]'),
        ("int('42')", 42),
        ("int(' -7 ')", -7),
        ("int(3.9)", 3),
        ("float('1.5')", 1.5),
        ("float(2)", 2.0),
        ("bool('false')", False),
        ("bool('TRUE')", True),
        ("bool([])", False),
        ("bool(1)", True),
        ("lower(params.name)", "ada"),
        ("upper('x')", "X"),
        ("strip('  x ')", "x"),
        ("strip('--x-', '-')", "x"),
        ("startswith(params.name, 'A')", True),
        ("endswith(params.name, 'z')", False),
        ("contains(params.xs, 3)", True),
        ("contains('abc', 'bc')", True),
        ("contains(params, 'n')", True),
        ("min(params.xs)", 1),
        ("max(params.xs)", 3),
        ("min(4, 2, 9)", 2),
        ("max('a', 'b')", "b"),
        ("sum(params.xs)", 6),
        ("sum([1.5, 1])", 2.5),
        ("abs(-3)", 3),
        ("round(2.567, 1)", 2.6),
        ("round(2.5)", 2),
        ("keys({'a': 1, 'b': 2})", ["a", "b"]),
        ("values({'a': 1})", [1]),
        ("join(['a', 'b'], '-')", "a-b"),
        ("join([1, true, null])", "1truenull"),
        ("split('a,b,c', ',')", ["a", "b", "c"]),
        ("split('a b  c')", ["a", "b", "c"]),
        ("split('a,b,c', ',', 1)", ["a", "b,c"]),
        ("default(params.missing, 5)", 5),
        ("default(params.none, 'x')", "x"),
        ("default(params.n, 5)", 3),
        ("default(params.xs[10], 0)", 0),
        ("default(nothing_here, 1)", 1),
        ("default(params.flag, true)", False),
        ("len(tasks.extract.names) > 1 and tasks.load.ok", True),
        ("{'k': item.id}['k']", 7),
        ("(1 +\n 2)", 3),
    ],
)
def test_evaluates(text: str, expected: Any) -> None:
    value = ev(text)
    assert value == expected
    assert type(value) is type(expected)


def test_expression_metadata() -> None:
    expr = compile_expression("  tasks.extract.rows + len(tasks['load']) + params.n + item  ")
    assert isinstance(expr, Expression)
    assert expr.text == "tasks.extract.rows + len(tasks['load']) + params.n + item"
    assert expr.referenced_tasks == frozenset({"extract", "load"})
    assert expr.referenced_params == frozenset({"n"})
    assert expr.names == frozenset({"tasks", "params", "item"})


def test_function_names_and_constants_are_not_scope_names() -> None:
    assert compile_expression("len(x) + default(null, true)").names == frozenset({"x"})


def test_compiled_expressions_are_values() -> None:
    assert compile_expression("a + 1") == compile_expression(" a + 1")
    assert hash(compile_expression("a")) == hash(compile_expression("a"))


def test_names_from_any_scope_key() -> None:
    assert ev("run.id", {"run": {"id": "r1"}}) == "r1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("().__class__.__bases__", "attribute '__bases__' is not allowed"),
        ("params.__class__", "attribute '__class__' is not allowed"),
        ("params._private", "attribute '_private' is not allowed"),
        ("__import__('os')", "function '__import__' is not allowed"),
        ("_x", "name '_x' is not allowed"),
        ("open('/etc/passwd')", "function 'open' is not allowed"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("getattr(params, 'n')", "function 'getattr' is not allowed"),
        ("params.name.lower()", "method call 'params.name.lower()' is not allowed"),
        ("(lambda: 1)()", "method call"),
        ("lambda: 1", "lambda is not allowed"),
        ("[x for x in params.xs]", "comprehensions are not allowed"),
        ("{x: 1 for x in 'ab'}", "comprehensions are not allowed"),
        ("(x for x in 'ab')", "generator expressions are not allowed"),
        ("(y := 1)", "assignment (:=) is not allowed"),
        ("f'{params}'", "f-strings are not allowed"),
        ("[*params.xs]", "'*' unpacking is not allowed"),
        ("{**params}", "'**' unpacking is not allowed"),
        ("{1, 2}", "set literals are not allowed"),
        ("2 ** 8", "operator '**' is not allowed"),
        ("1 << 2", "operator '<<' is not allowed"),
        ("1 | 2", "operator '|' is not allowed"),
        ("~1", "operator '~' is not allowed"),
        ("b'x'", "bytes literals are not allowed"),
        ("1j", "complex literals are not allowed"),
        ("...", "ellipsis literals are not allowed"),
        ("x is 1", "'is' and 'is not' only compare with None"),
        ("tasks", "'tasks' must be followed by a task name"),
        ("tasks[0]", "'tasks' must be followed by a task name"),
        ("tasks[params.which]", "'tasks' must be followed by a task name"),
        ("len(tasks)", "'tasks' must be followed by a task name"),
        ("len(1, 2)", "len() takes 1 argument, got 2"),
        ("default(1)", "default() takes 2 arguments, got 1"),
        ("split()", "split() takes 1 to 3 arguments, got 0"),
        ("len(x=1)", "len() takes no keyword arguments"),
        ("a +", "syntax error at column"),
        ("a = 1", "syntax error"),
        ("import os", "syntax error"),
        ("x;y", "syntax error"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("a\x00", "null bytes"),
        ("x" * (MAX_LENGTH + 1), "expression is too long"),
        ("-" * 150 + "1", "nested too deeply"),
        ("[" + ",".join(["1"] * 600) + "]", "too complex"),
    ],
)
def test_refuses_at_compile_time(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert message in str(info.value)


def test_compile_error_names_column() -> None:
    with pytest.raises(ExpressionError, match=r"at column 9"):
        compile_expression("1 + 2 + open(1)")
    with pytest.raises(ExpressionError, match=r"syntax error at column 7"):
        compile_expression("  a + * b")


def test_compile_rejects_non_strings() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "unknown name 'nope'"),
        ("params.missing", "params has no key 'missing'"),
        ("tasks.absent.rows", "tasks has no key 'absent'"),
        ("params.n.x", "cannot read key 'x' of integer"),
        ("params.xs[9]", "index 9 is out of range"),
        ("params.xs['a']", "list index must be an integer"),
        ("params.xs[true]", "list index must be an integer"),
        ("params.n[0]", "cannot index integer"),
        ("params.n[1:]", "cannot slice integer"),
        ("params.xs[::0]", "slice step cannot be zero"),
        ("params.xs['a':]", "slice bounds must be integers"),
        ("params[[1]]", "cannot be a mapping key"),
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("'a' + 1", "cannot add string and integer"),
        ("[1] - [1]", "cannot subtract list and list"),
        ("'a' * 'b'", "cannot multiply string and string"),
        ("'a' < 1", "cannot compare string with integer"),
        ("1 in 'abc'", "needs a string on the left"),
        ("1 in 5", "needs a string, list or mapping on the right"),
        ("-'a'", "unary minus or plus needs a number"),
        ("{[1]: 2}", "mapping keys must be strings or numbers"),
        ("len(5)", "len() expects a string, list or mapping, got integer"),
        ("lower(5)", "lower() expects a string"),
        ("startswith('a', 1)", "startswith() expects string arguments"),
        ("int('x')", "int() cannot convert string 'x'"),
        ("int(1e999)", "int() cannot convert inf"),
        ("float('x')", "float() cannot convert"),
        ("bool('maybe')", "bool() of a string needs 'true' or 'false'"),
        ("min([])", "min() of an empty list"),
        ("max(1, 'a')", "max() needs values of one comparable type"),
        ("min(5)", "min() expects a list or several values"),
        ("sum(['a'])", "sum() expects a list of numbers"),
        ("abs('a')", "abs() expects a number"),
        ("round('a')", "round() expects a number"),
        ("round(1.5, 1000)", "round() digits must be an integer"),
        ("keys([])", "keys() expects a mapping"),
        ("values(1)", "values() expects a mapping"),
        ("join('abc')", "join() expects a list"),
        ("join([], 1)", "join() expects a string separator"),
        ("split(1)", "split() expects a string"),
        ("split('a', '')", "split() separator cannot be empty"),
        ("split('a', ',', 'x')", "split() limit must be an integer"),
        ("'a' * 2000000", "result is too large"),
        ("['a'] * 2000000", "result is too large"),
        ("str(['x' * 600000, 'y' * 600000])", "longer than the 1,000,000-character limit"),
        ("join(['x' * 600000, 'y' * 600000])", "result is too large"),
    ],
)
def test_evaluation_errors_are_expression_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        ev(text)
    assert message in str(info.value)
    assert "failed" in str(info.value) and repr(text)[1:20] in str(info.value)


def test_attribute_access_never_uses_getattr() -> None:
    class Secret:
        token = "s3cr3t"

    with pytest.raises(ExpressionError, match="cannot read key 'token' of Secret"):
        ev("obj.token", {"obj": Secret()})


def test_scope_object_errors_are_wrapped() -> None:
    class Bad:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("boom")

        __hash__ = object.__hash__

    with pytest.raises(ExpressionError, match="RuntimeError: boom"):
        ev("x == 1", {"x": Bad()})


def test_size_caps_are_checked_before_building() -> None:
    start = time.monotonic()
    with pytest.raises(ExpressionError, match="too large"):
        ev("'x' * 1000000000000")
    assert time.monotonic() - start < 1
    assert len(ev("'x' * 1000000")) == MAX_SIZE


# --------------------------------------------------------------------------- templates


def test_template_regex_and_helpers() -> None:
    assert TEMPLATE_RE.findall("a {{ x }} b {{y}}") == [" x ", "y"]
    assert is_template("{{ x }}") and is_template("a{{x}}b")
    assert not is_template("{ x }") and not is_template("{{ x")
    assert whole_template("  {{ params.n }} ") == "params.n"
    assert whole_template("{{ a }} {{ b }}") is None
    assert whole_template("x{{ a }}") is None
    assert whole_template("plain") is None


def test_render_keeps_types_of_whole_templates() -> None:
    value = {
        "n": "{{ params.n }}",
        "xs": " {{ params.xs }} ",
        "none": "{{ params.none }}",
        "nested": [{"deep": "{{ tasks.extract.rows }}"}],
        "text": "n={{ params.n }}, flag={{ params.flag }}, xs={{ params.xs }}, z={{ null }}",
        "plain": "no templates",
        "number": 5,
        "{{ key }}": "keys are not templated",
    }
    assert render(value, SCOPE) == {
        "n": 3,
        "xs": [3, 1, 2],
        "none": None,
        "nested": [{"deep": 10}],
        "text": "n=3, flag=false, xs=[3,1,2], z=null",
        "plain": "no templates",
        "number": 5,
        "{{ key }}": "keys are not templated",
    }


def test_render_literal_braces() -> None:
    assert render("{{ '{{' }}.State}}", SCOPE) == "{{.State}}"


def test_render_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r"params\.nope"):
        render({"a": ["x {{ params.nope }}"]}, SCOPE)
    with pytest.raises(ExpressionError, match="function 'open' is not allowed"):
        render("{{ open('x') }}", SCOPE)


def test_render_caps_total_text() -> None:
    with pytest.raises(ExpressionError, match="longer than"):
        render("{{ 'x' * 600000 }}-{{ 'y' * 600000 }}", SCOPE)


def test_render_url_percent_encodes_embedded_values() -> None:
    scope = {"params": {"user": "a/b?c=d&e", "url": "https://x.example/p?q=1"}}
    assert render_url("https://api.example/u/{{ params.user }}", scope) == (
        "https://api.example/u/a%2Fb%3Fc%3Dd%26e"
    )
    assert render_url("{{ params.url }}", scope) == "https://x.example/p?q=1"
    assert render_url("https://plain.example/", scope) == "https://plain.example/"


def test_template_references() -> None:
    value = {
        "a": "{{ tasks.extract.rows }}",
        "b": ["x {{ tasks['load'].ok }} {{ params.n }}"],
        "c": 5,
        "d": "{{ tasks.extract.names }}",
    }
    assert template_references(value) == frozenset({"extract", "load"})
    assert template_references("no templates") == frozenset()
    with pytest.raises(ExpressionError):
        template_references("{{ lambda: 1 }}")


@pytest.mark.parametrize(
    ("value", "text"),
    [("s", "s"), (True, "true"), (False, "false"), (None, "null"), (3, "3"), (1.5, "1.5"),
     ({"a": [1, "é"]}, '{"a":[1,"é"]}'), ([], "[]")],
)  # fmt: skip
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_escapes_the_sandbox(text: str) -> None:
    """Any input either compiles and evaluates to a value, or raises ExpressionError."""
    try:
        expr = compile_expression(text)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        expr.evaluate(SCOPE)


_ATOMS = st.sampled_from(
    ["1", "'a'", "params.n", "params.xs", "tasks.extract", "item", "null", "[1, 2]", "{'k': 1}",
     "params.name", "-2.5", "true"]
)  # fmt: skip
_OPS = st.sampled_from(
    ["+", "-", "*", "/", "//", "%", "==", "<", "in", "and", "or", "if true else", "[0] +"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ATOMS, _OPS), min_size=1, max_size=8), _ATOMS)
def test_random_well_formed_expressions_fail_cleanly(
    pairs: list[tuple[str, str]], last: str
) -> None:
    text = " ".join(f"{atom} {op}" for atom, op in pairs) + f" {last}"
    with contextlib.suppress(ExpressionError):
        compile_expression(text).evaluate(SCOPE)
