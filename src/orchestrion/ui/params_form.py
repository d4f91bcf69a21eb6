"""The trigger form, generated from a workflow's parameter schema, and its server-side
parsing. The values are then checked by the same `App.runs.trigger` as the API's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrion.errors import ParameterError
from orchestrion.spec.model import ParamSpec, ParamType, WorkflowSpec
from orchestrion.spec.rules import load_json

__all__ = ["Field", "fields", "parse_params"]

_INPUT = {
    ParamType.STRING: "text",
    ParamType.INTEGER: "number",
    ParamType.NUMBER: "number",
    ParamType.DATE: "date",
    ParamType.DATETIME: "text",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One input of the trigger form, made from a declared parameter: the HTML widget, the value to
    show (the given one, else the default) and the choices of an enum."""

    name: str
    type: str
    #: text, number, date, select, json
    widget: str
    required: bool
    value: str
    options: tuple[str, ...]
    description: str
    step: str = ""
    placeholder: str = ""


def _text(value: Any, kind: ParamType) -> str:
    if value is None:
        return ""
    if kind in (ParamType.ARRAY, ParamType.OBJECT):
        return json.dumps(value, indent=2)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field(name: str, p: ParamSpec, given: Mapping[str, str] | None) -> Field:
    value = given[name] if given is not None and name in given else _text(p.default, p.type)
    if p.enum is not None:
        widget, options = "select", tuple(_text(v, p.type) for v in p.enum)
    elif p.type == ParamType.BOOLEAN:
        widget, options = "select", ("true", "false")
    elif p.type in (ParamType.ARRAY, ParamType.OBJECT):
        widget, options = "json", ()
    else:
        widget, options = _INPUT[p.type], ()
    return Field(
        name=name,
        type=p.type.value,
        widget=widget,
        required=p.required and p.default is None,
        value=value,
        options=options,
        description=p.description,
        step="1" if p.type == ParamType.INTEGER else "any",
        placeholder="2026-01-31T12:00:00Z" if p.type == ParamType.DATETIME else "",
    )


def fields(spec: WorkflowSpec, given: Mapping[str, str] | None = None) -> list[Field]:
    """The trigger form's fields for `spec`'s parameters, filled with `given` values where a
    submitted form is shown again."""
    return [_field(name, p, given) for name, p in spec.params.items()]


def _convert(name: str, p: ParamSpec, raw: str) -> Any:
    try:
        if p.enum is not None:
            for option in p.enum:
                if _text(option, p.type) == raw:
                    return option
            raise ParameterError(f"{name}: {raw!r} is not one of the allowed values")
        if p.type == ParamType.INTEGER:
            return int(raw)
        if p.type == ParamType.NUMBER:
            return float(raw)
        if p.type == ParamType.BOOLEAN:
            if raw not in ("true", "false"):
                raise ParameterError(f"{name}: choose true or false")
            return raw == "true"
        if p.type in (ParamType.ARRAY, ParamType.OBJECT):
            return load_json(raw, what=name)
    except ValueError as exc:
        raise ParameterError(
            f"{name}: {raw[:60]!r} is not a valid {p.type.value} ({exc})"
        ) from None
    return raw


def parse_params(spec: WorkflowSpec, form: Mapping[str, str]) -> dict[str, Any]:
    """Typed values from the form's `param.<name>` fields; empty fields are left out so that
    defaults apply and missing required ones are reported by `App.runs.trigger`."""
    out: dict[str, Any] = {}
    for name, p in spec.params.items():
        raw = form.get(f"param.{name}", "")
        if raw.strip() == "" and p.type != ParamType.STRING:
            continue
        if raw == "":
            continue
        out[name] = _convert(name, p, raw)
    return out
