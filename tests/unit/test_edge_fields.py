"""The shared field rules of `orchestrion.spec.fields` (issue 12, findings 1 and 7): control
characters refused in text that reaches a terminal or a log, integers bounded to the columns
they reach, one namespace rule; in the models, from YAML (escaped characters in quoted
strings, with the line) and from Python authoring alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrion.errors import InvalidValue, ParameterError, SpecError
from orchestrion.spec.fields import CONTROL_RE, ID_MAX, INT_MAX, INT_MIN, check_text
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.yaml.loader import load_yaml_text

CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]] + [
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
]


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_is_refused_in_a_line(char: str) -> None:
    with pytest.raises(InvalidValue, match="the tag holds control character") as info:
        check_text(f"ab{char}c", field="the tag")
    assert "position 2" in str(info.value)
    assert isinstance(info.value, ParameterError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("char", [c for c in CONTROLS if c not in "\t\n"], ids=repr)
def test_a_multiline_text_allows_only_tab_and_newline(char: str) -> None:
    assert check_text("a\n\tb", multiline=True) == "a\n\tb"
    with pytest.raises(InvalidValue):
        check_text(f"a\n{char}", multiline=True)


@given(st.text())
def test_check_text_refuses_exactly_what_control_re_finds(text: str) -> None:
    try:
        check_text(text)
    except InvalidValue:
        assert CONTROL_RE.search(text)
    else:
        assert not CONTROL_RE.search(text)


def test_letters_of_any_script_are_not_control_characters() -> None:
    assert check_text("déjà vu — 日本語 ✓ €") == "déjà vu — 日本語 ✓ €"


def _spec(**extra: object) -> dict[str, object]:
    return {"name": "w", "tasks": [{"name": "a", "action": {"kind": "python", "ref": "m:f"}}]}


@pytest.mark.parametrize(
    ("yaml_value", "field"),
    [
        ('description: "a\\x1b[31mred"', "description"),
        ('description: "a\\0b"', "description"),
        ('description: "a\\rb"', "description"),
        ('description: "a\\u202eb"', "description"),
        ('tags: ["a\\x07"]', "tags"),
    ],
)
def test_escaped_control_characters_in_yaml_are_refused_with_their_line(
    yaml_value: str, field: str
) -> None:
    text = f"name: w\n{yaml_value}\ntasks:\n  a:\n    python: m:f\n"
    with pytest.raises(SpecError, match="control character") as info:
        load_yaml_text(text, source="w.yaml")
    assert field in str(info.value) and info.value.line == 2, str(info.value)


def test_a_yaml_block_description_keeps_its_newlines() -> None:
    text = "name: w\ndescription: |\n  one\n  two\ntasks:\n  a:\n    python: m:f\n"
    assert load_yaml_text(text).description == "one\ntwo\n"


def test_task_text_fields_are_checked_from_yaml() -> None:
    text = 'name: w\ntasks:\n  a:\n    python: m:f\n    description: "x\\x1b]0;pwned\\x07"\n'
    with pytest.raises(SpecError, match="control character") as info:
        load_yaml_text(text)
    assert info.value.line == 5


def test_python_authoring_refuses_control_characters() -> None:
    from orchestrion.spec.python import task, workflow

    @task()
    def a() -> None: ...

    @workflow(name="w", description="a\x1b[2Jb")
    def w() -> None:
        a()

    with pytest.raises(SpecError, match="control character"):
        w.spec  # noqa: B018 - built on first use


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_active_runs", INT_MAX + 1),
        ("max_active_runs", 2**63),
        ("max_active_runs", 10**400),
    ],
)
def test_spec_integers_fit_a_postgresql_integer(field: str, value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        WorkflowSpec.model_validate({**_spec(), field: value})
    assert WorkflowSpec.model_validate({**_spec(), field: INT_MAX}).max_active_runs == INT_MAX


def test_a_field_keeps_its_own_bounds_inside_the_integer_range() -> None:
    """`Int`'s range is a validator, so a field's own ge/le still apply."""
    with pytest.raises(ValueError, match="must be at least 0"):
        WorkflowSpec.model_validate(
            {**_spec(), "tasks": [{"name": "a", "action": {"kind": "python", "ref": "m:f"},
                                   "retry": {"retries": -1}}]}
        )  # fmt: skip


def test_the_ranges_are_the_columns() -> None:
    assert (INT_MIN, INT_MAX, ID_MAX) == (-(2**31), 2**31 - 1, 2**63 - 1)


def test_a_huge_duration_is_out_of_range_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="out of range"):
        WorkflowSpec.model_validate({**_spec(), "timeout": 10**400})


def test_load_json_refuses_what_no_store_or_serializer_takes() -> None:
    from orchestrion.spec.fields import MAX_JSON_DEPTH, json_problem, load_json

    assert load_json('{"a": ["b", {"c": "\\u00e9\\ud83d\\ude00"}]}') == {"a": ["b", {"c": "é😀"}]}
    with pytest.raises(InvalidValue, match=r"NUL character in the JSON at a\.1"):
        load_json('{"a": [1, "x\\u0000"]}')
    with pytest.raises(InvalidValue, match="lone surrogate"):
        load_json('{"\\ud800": 1}')
    with pytest.raises(InvalidValue, match=f"deeper than {MAX_JSON_DEPTH}"):
        load_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(InvalidValue, match=f"deeper than {MAX_JSON_DEPTH}"):
        load_json("[" * 100_000 + "]" * 100_000)  # past the decoder's own recursion
    with pytest.raises(ValueError):
        load_json("{")
    assert json_problem("[" * MAX_JSON_DEPTH) is None  # a string is not nesting
    nested: object = 1
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    assert json_problem(nested) is None
    assert json_problem([nested]) is not None


def test_a_parameter_given_as_json_text_is_checked_the_same() -> None:
    from orchestrion.spec.params import parse_cli_params

    spec = WorkflowSpec.model_validate({**_spec(), "params": {"p": {"type": "array"}}})
    assert parse_cli_params(spec, ["p=[1, 2]"]) == {"p": [1, 2]}
    with pytest.raises(ParameterError, match="deeper than"):
        parse_cli_params(spec, ["p=" + "[" * 5000 + "]" * 5000])
