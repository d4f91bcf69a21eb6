"""Turning the arguments of task calls into spec data: literals, expressions and templates.

Three targets, one walk:

* a Python task argument becomes an `InputSpec`: a JSON literal (``value``), or an
  expression (``expr``) when refs are involved. A list or dict that contains refs becomes a
  list or dict expression, e.g. ``[tasks.a, tasks.b, "x"]``; its literals are written in the
  expression language's Python-like syntax (``True``, ``None``, double-quoted strings).
* a shell, HTTP or sub-workflow field becomes a template: each ref is replaced by the string
  ``{{ expr }}``, and literals stay as they are.
* every ref met on the way adds its task to the dependencies of the task being recorded.

Literals must be JSON values (None, bool, int, finite float, str, list/tuple, dict with string
keys); tuples become lists so that a spec survives a JSON round trip unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import msgspec

from orchestrion.spec.model import InputSpec
from orchestrion.spec.python.build import BuildState, Ref

__all__ = [
    "ITEM",
    "Collector",
    "expression_source",
    "input_spec",
    "json_literal",
    "template",
    "template_str",
]


class _Item:
    """Marks the argument of a mapped task that receives the current element."""

    def __repr__(self) -> str:
        return "ITEM"


ITEM: Any = _Item()


class _Expr(msgspec.Struct, frozen=True):
    text: str


class Collector(msgspec.Struct):
    """Collects the upstream tasks of the refs met while converting one task's fields."""

    state: BuildState
    task: str
    deps: list[str] = msgspec.field(default_factory=list)

    def add(self, ref: Ref) -> None:
        """Depend on the task that `ref` is the result of (after checking it belongs to this
        build)."""
        self.state.check_owner(ref, self.task)
        if ref.task is not None and ref.task not in self.deps:
            self.deps.append(ref.task)

    def scan_text(self, text: str) -> None:
        """Find refs formatted into `text` (``f"--day={day}"``) and depend on their tasks."""
        for formatted, ref in self.state.formatted.items():
            if formatted in text:
                self.add(ref)

    def formatted_in(self, text: str) -> Ref | None:
        """The ref whose formatted placeholder appears in `text`, if any."""
        for formatted, ref in self.state.formatted.items():
            if formatted in text:
                return ref
        return None


def _convert(value: Any, on_ref: Callable[[Ref], Any], fail: Callable[[str], Exception]) -> Any:
    """`value` as plain JSON data, each ref replaced by ``on_ref(ref)``; `fail` on bad data."""

    def walk(item: Any, path: str) -> Any:
        if isinstance(item, Ref):
            return on_ref(item)
        if item is None or isinstance(item, bool | int | str):
            return item
        if isinstance(item, float):
            if not math.isfinite(item):
                raise fail(f"{_at(path)}{item!r} is not a JSON number")
            return item
        if isinstance(item, list | tuple):
            return [walk(x, f"{path}[{i}]") for i, x in enumerate(item)]
        if isinstance(item, dict):
            return {_key(k, path, fail): walk(v, f"{path}[{k!r}]") for k, v in item.items()}
        raise fail(
            f"{_at(path)}a value of type {type(item).__name__} is not JSON-serialisable "
            "(use None, bool, int, float, str, list or dict)"
        )

    return walk(value, "")


def _at(path: str) -> str:
    return f"at {path}: " if path else ""


def _key(key: Any, path: str, fail: Callable[[str], Exception]) -> str:
    if not isinstance(key, str):
        raise fail(f"{_at(path)}dict key {key!r} is not a string (JSON keys are strings)")
    return key


def expression_source(value: Any) -> str:
    """Expression text for converted data whose refs were replaced by `_Expr` markers."""
    if isinstance(value, _Expr):
        return value.text
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(expression_source(x) for x in value) + "]"
    items = (f"{json.dumps(k)}: {expression_source(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def input_spec(value: Any, col: Collector, arg: str) -> InputSpec:
    """The input of Python task argument `arg`: a literal, or an expression over refs."""
    if value is ITEM:
        return InputSpec(expr="item")
    if isinstance(value, Ref):
        col.add(value)
        return InputSpec(expr=value.expr)
    found: list[Ref] = []

    def on_ref(ref: Ref) -> _Expr:
        col.add(ref)
        found.append(ref)
        return _Expr(ref.expr)

    def fail(problem: str) -> Exception:
        return col.state.error(col.task, f"argument {arg!r}: {problem}")

    data = _convert(value, on_ref, fail)
    if found:
        return InputSpec(expr=expression_source(data))
    _refuse_formatted(data, col, fail)
    return InputSpec(value=data)


def _refuse_formatted(data: Any, col: Collector, fail: Callable[[str], Exception]) -> None:
    """A Python input is passed as is, never rendered: a formatted ref in it would be inert."""
    if isinstance(data, str):
        ref = col.formatted_in(data)
        if ref is not None:
            raise fail(
                f"{ref.expr} was formatted into a string (f-string or str()); that only works "
                "in shell, HTTP and sub-workflow fields. Pass the reference itself and build "
                "the string inside the task"
            )
    elif isinstance(data, list):
        for item in data:
            _refuse_formatted(item, col, fail)
    elif isinstance(data, dict):
        for item in data.values():
            _refuse_formatted(item, col, fail)


def template(value: Any, col: Collector, what: str) -> Any:
    """JSON data for a templated field: refs become ``{{ expr }}`` strings."""

    def on_ref(ref: Ref) -> str:
        col.add(ref)
        return "{{ " + ref.expr + " }}"

    def fail(problem: str) -> Exception:
        return col.state.error(col.task, f"{what}: {problem}")

    data = _convert(value, on_ref, fail)
    _scan(data, col)
    return data


def _scan(data: Any, col: Collector) -> None:
    if isinstance(data, str):
        col.scan_text(data)
    elif isinstance(data, list):
        for item in data:
            _scan(item, col)
    elif isinstance(data, dict):
        for item in data.values():
            _scan(item, col)


def template_str(value: Any, col: Collector, what: str) -> str:
    """A templated string field (argv element, env value, URL, header): numbers are written
    out; anything else that is not a string or a ref is refused."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str | Ref):
        raise col.state.error(
            col.task, f"{what}: expected a string or a reference, got {type(value).__name__}"
        )
    text = template(value, col, what)
    assert isinstance(text, str)
    return text


def json_literal(value: Any, fail: Callable[[str], Exception]) -> Any:
    """`value` as plain JSON data (tuples become lists); refs are not allowed here."""

    def on_ref(ref: Ref) -> Any:
        raise fail(f"{ref.expr} is a reference, but only a literal value is allowed here")

    return _convert(value, on_ref, fail)
