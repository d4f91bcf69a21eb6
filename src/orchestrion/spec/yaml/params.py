"""Type checks for a workflow file's declared parameters and the values runs set for them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, Final

from orchestrion.spec.expressions import TEMPLATE_RE
from orchestrion.spec.yaml.errors import LoadContext
from orchestrion.spec.yaml.reader import Path, describe

__all__ = ["check_param", "check_run_params"]


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_PARAM_TYPES: Final[dict[str, Callable[[Any], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "date": _is_date,
    "datetime": _is_datetime,
}


def check_param(ctx: LoadContext, path: Path, body: dict[str, Any]) -> None:
    """A declared parameter's default and enum values fit its type, with a line, before the
    model sees them."""
    kind, default, enum = body.get("type", "string"), body.get("default"), body.get("enum")
    fits = _PARAM_TYPES.get(kind) if isinstance(kind, str) else None
    if fits is None:
        return  # the model names the valid types
    if default is not None and not fits(default):
        raise ctx.error((*path, "default"), f"default {describe(default)} is not a valid {kind}")
    if default is not None and body.get("required") is True:
        raise ctx.error((*path, "required"), "a required parameter cannot have a default")
    if enum is None:
        return
    if not isinstance(enum, list) or not enum:
        raise ctx.error((*path, "enum"), f"enum must be a non-empty list, got {describe(enum)}")
    for i, choice in enumerate(enum):
        if not fits(choice):
            raise ctx.error(
                (*path, "enum", i), f"enum value {describe(choice)} is not a valid {kind}"
            )
    if default is not None and default not in enum:
        raise ctx.error(
            (*path, "default"), f"default {describe(default)} is not one of the enum values"
        )


def _check_param_value(ctx: LoadContext, path: Path, name: str, value: Any) -> None:
    if name not in ctx.params:
        declared = ", ".join(ctx.params) or "none"
        raise ctx.error(path, f"unknown parameter '{name}' (declared: {declared})", at_key=True)
    body = ctx.params[name]
    kind = body.get("type", "string")
    fits = _PARAM_TYPES.get(kind) if isinstance(kind, str) else None
    if fits is not None and not fits(value):
        raise ctx.error(path, f"{describe(value)} is not a valid {kind}")
    if isinstance(body.get("enum"), list) and value not in body["enum"]:
        raise ctx.error(path, f"{describe(value)} is not one of the enum values")


def check_run_params(ctx: LoadContext, path: Path, params: Any, what: str) -> None:
    """Run params set by a schedule or trigger: declared, typed unless a template, and
    every required one set (templates are checked by the spec model and at fire time)."""
    if isinstance(params, dict):
        for name, value in params.items():
            if not (isinstance(value, str) and TEMPLATE_RE.search(value) and name in ctx.params):
                _check_param_value(ctx, (*path, "params", name), name, value)
    given = params if isinstance(params, dict) else {}
    for name, spec in ctx.params.items():
        if spec.get("required") is True and name not in given:
            raise ctx.error(path, f"{what} does not set required parameter '{name}'")
