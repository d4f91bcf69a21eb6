"""Workflow parameters from a function signature: annotations become `ParamSpec` types.

======================================  ==========================================
Annotation                              Parameter
======================================  ==========================================
``str`` ``int`` ``float`` ``bool``      string, integer, number, boolean
``list[...]`` ``tuple[...]``            array
``dict[...]``                           object
``datetime.date`` / ``.datetime``       date / datetime (defaults stored as ISO text)
``Literal["a", "b"]``                   enum, typed by its values
``X | None`` / ``Optional[X]``          X, not required
``Annotated[X, "text"]``                X, with "text" as the description
none or ``Any``                         the type of the default, else string
======================================  ==========================================

A parameter with a default is not required and keeps the default; one without a default
(and not Optional) is required.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime as dt
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from orchestrion.spec.model import ParamSpec, ParamType
from orchestrion.spec.python.options import Fail, validation_message
from orchestrion.spec.python.values import json_literal
from orchestrion.spec.structs import Invalid

__all__ = ["workflow_params"]

_EMPTY = inspect.Parameter.empty
_SIMPLE: dict[Any, ParamType] = {
    str: ParamType.STRING,
    int: ParamType.INTEGER,
    float: ParamType.NUMBER,
    bool: ParamType.BOOLEAN,
    list: ParamType.ARRAY,
    tuple: ParamType.ARRAY,
    dict: ParamType.OBJECT,
    dt.date: ParamType.DATE,
    dt.datetime: ParamType.DATETIME,
}
_ARRAYS = (list, tuple, cabc.Sequence)
_OBJECTS = (dict, cabc.Mapping)
_FITS: dict[ParamType, Callable[[Any], bool]] = {
    ParamType.STRING: lambda v: isinstance(v, str),
    ParamType.INTEGER: lambda v: isinstance(v, int) and not isinstance(v, bool),
    ParamType.NUMBER: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    ParamType.BOOLEAN: lambda v: isinstance(v, bool),
    ParamType.ARRAY: lambda v: isinstance(v, list),
    ParamType.OBJECT: lambda v: isinstance(v, dict),
    ParamType.DATE: lambda v: isinstance(v, str),
    ParamType.DATETIME: lambda v: isinstance(v, str),
}


def workflow_params(fn: Callable[..., Any], fail: Fail) -> dict[str, ParamSpec]:
    """Parameter name -> ParamSpec, in signature order."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        problem = f"cannot resolve its parameter annotations: {type(exc).__name__}: {exc}"
        raise fail(problem) from None
    out: dict[str, ParamSpec] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise fail(f"*{param.name} cannot be a workflow parameter; name each parameter")

        def fail_param(problem: str, name: str = param.name) -> Exception:
            return fail(f"parameter {name!r}: {problem}")

        out[param.name] = _param_spec(hints.get(param.name, _EMPTY), param.default, fail_param)
    return out


def _param_spec(annotation: Any, default: Any, fail: Fail) -> ParamSpec:
    annotation, description = _strip_annotated(annotation)
    annotation, optional = _strip_optional(annotation, fail)
    ptype, enum = _param_type(annotation, default, fail)
    has_default = default is not _EMPTY
    value = _default(default, fail) if has_default else None
    if value is not None and not _FITS[ptype](value):
        raise fail(f"default {default!r} is not of type {ptype.value}")
    if value is not None and enum is not None and value not in enum:
        raise fail(f"default {default!r} is not one of {list(enum)}")
    try:
        return ParamSpec(
            type=ptype,
            default=value,
            required=not has_default and not optional,
            enum=enum,
            description=description,
        )
    except Invalid as exc:
        raise fail(validation_message(exc)) from None


def _strip_annotated(annotation: Any) -> tuple[Any, str]:
    if get_origin(annotation) is not Annotated:
        return annotation, ""
    base, *extras = get_args(annotation)
    texts = [x for x in extras if isinstance(x, str)]
    return base, (texts[0] if texts else "")


def _strip_optional(annotation: Any, fail: Fail) -> tuple[Any, bool]:
    if get_origin(annotation) not in (Union, types.UnionType):
        return annotation, False
    members = get_args(annotation)
    rest = [m for m in members if m is not type(None)]
    if len(rest) != 1:
        raise fail(f"union {annotation} is not supported; use one type, optionally | None")
    return rest[0], len(rest) < len(members)


def _param_type(
    annotation: Any, default: Any, fail: Fail
) -> tuple[ParamType, tuple[Any, ...] | None]:
    if annotation is _EMPTY or annotation is Any:
        return _SIMPLE.get(type(default), ParamType.STRING), None
    if annotation in _SIMPLE:
        return _SIMPLE[annotation], None
    origin = get_origin(annotation)
    if origin is Literal:
        return _literal_type(get_args(annotation), fail)
    if origin in _ARRAYS:
        return ParamType.ARRAY, None
    if origin in _OBJECTS:
        return ParamType.OBJECT, None
    raise fail(
        f"type {annotation!r} is not supported (use str, int, float, bool, list, dict, "
        "datetime.date, datetime.datetime or Literal[...])"
    )


def _literal_type(values: tuple[Any, ...], fail: Fail) -> tuple[ParamType, tuple[Any, ...]]:
    """An enum's type follows its values; mixing kinds (``Literal["a", 1]``) is refused."""
    if all(isinstance(v, bool) for v in values):
        return ParamType.BOOLEAN, values
    if all(isinstance(v, str) for v in values):
        return ParamType.STRING, values
    if any(isinstance(v, bool) for v in values):
        raise fail(f"Literal values {list(values)} mix booleans with other kinds")
    if all(isinstance(v, int) for v in values):
        return ParamType.INTEGER, values
    if all(isinstance(v, int | float) for v in values):
        return ParamType.NUMBER, values
    raise fail(f"Literal values {list(values)} must all be strings, or all numbers, or all bools")


def _default(default: Any, fail: Fail) -> Any:
    """Dates as ISO text (the spec is JSON); everything else must already be JSON data."""
    if isinstance(default, dt.date):
        return default.isoformat()
    return json_literal(default, lambda problem: fail(f"default: {problem}"))
