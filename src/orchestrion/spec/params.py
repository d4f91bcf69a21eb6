"""Run parameters checked against a workflow's parameter schema, with defaults applied."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from orchestrion.errors import ParameterError
from orchestrion.spec.model import ParamSpec, ParamType, WorkflowSpec
from orchestrion.spec.rules import load_json

__all__ = ["parse_cli_params", "resolve_params"]


def parse_cli_params(spec: WorkflowSpec, pairs: list[str]) -> dict[str, Any]:
    """``name=value`` strings from the command line, typed by the parameter schema."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"bad parameter {pair!r}: use name=value")
        param = spec.params.get(name)
        if param is None:
            raise ParameterError(_unknown(spec, name))
        out[name] = _from_text(name, param, text)
    return out


def resolve_params(spec: WorkflowSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Validated parameters: unknown names, missing required values, wrong types and values
    outside an enum are `ParameterError`s naming the parameter."""
    for name in given:
        if name not in spec.params:
            raise ParameterError(_unknown(spec, name))
    out: dict[str, Any] = {}
    for name, param in spec.params.items():
        if name in given:
            out[name] = _check(name, param, given[name])
        elif param.default is not None:
            out[name] = param.default
        elif param.required:
            raise ParameterError(f"parameter {name!r} is required ({param.type.value})")
        else:
            out[name] = None
    return out


def _unknown(spec: WorkflowSpec, name: str) -> str:
    known = ", ".join(sorted(spec.params)) or "none"
    return f"unknown parameter {name!r} for workflow {spec.name!r} (known: {known})"


def _from_text(name: str, param: ParamSpec, text: str) -> Any:
    kind = param.type
    try:
        if kind is ParamType.INTEGER:
            return int(text)
        if kind is ParamType.NUMBER:
            return float(text)
        if kind is ParamType.BOOLEAN:
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError("use true or false")
            return lowered == "true"
        if kind in (ParamType.ARRAY, ParamType.OBJECT):
            return load_json(text, what=f"parameter {name!r}")
    except (ValueError, json.JSONDecodeError) as exc:
        raise ParameterError(
            f"parameter {name!r}: {text!r} is not a valid {kind.value} ({exc})"
        ) from None
    return text


_CHECKS: dict[ParamType, tuple[type, ...]] = {
    ParamType.STRING: (str,),
    ParamType.INTEGER: (int,),
    ParamType.NUMBER: (int, float),
    ParamType.BOOLEAN: (bool,),
    ParamType.ARRAY: (list,),
    ParamType.OBJECT: (dict,),
    ParamType.DATE: (str,),
    ParamType.DATETIME: (str,),
}


def _check(name: str, param: ParamSpec, value: Any) -> Any:
    kind = param.type
    if value is None and not param.required:
        return None
    ok = isinstance(value, _CHECKS[kind]) and not (
        isinstance(value, bool) and kind in (ParamType.INTEGER, ParamType.NUMBER)
    )
    if not ok:
        raise ParameterError(
            f"parameter {name!r} must be {kind.value}, got {type(value).__name__} {value!r}"
        )
    if kind is ParamType.DATE:
        _parse(name, value, dt.date.fromisoformat, "a date like 2026-11-26")
    elif kind is ParamType.DATETIME:
        _parse(name, value, dt.datetime.fromisoformat, "an ISO datetime")
    if param.enum is not None and value not in param.enum:
        allowed = ", ".join(repr(v) for v in param.enum)
        raise ParameterError(f"parameter {name!r} must be one of {allowed}; got {value!r}")
    return value


def _parse(name: str, value: str, parser: Any, what: str) -> None:
    try:
        parser(value)
    except ValueError:
        raise ParameterError(f"parameter {name!r} must be {what}; got {value!r}") from None
