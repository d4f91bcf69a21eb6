"""The functions an expression may call (`FUNCTIONS`): the only callables it can reach."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from orchestrion.spec.expressions.values import (
    EvalError,
    check_size,
    contains,
    is_number,
    kind_of,
    orderable,
    short,
    text_of,
)

__all__ = ["FUNCTIONS"]


def _need(name: str, value: Any, types: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, types):
        raise EvalError(f"{name}() expects {what}, got {kind_of(value)}")


def _fn_len(value: Any) -> int:
    _need("len", value, (str, list, tuple, Mapping), "a string, list or mapping")
    return len(value)


def _fn_int(value: Any) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EvalError(f"int() cannot convert {value!r}")
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,100}\s*", value):
        return int(value)
    raise EvalError(f"int() cannot convert {kind_of(value)} {short(repr(value), 40)}")


def _fn_float(value: Any) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str) and len(value) <= 100:
        try:
            return float(value)
        except ValueError:
            pass
    raise EvalError(f"float() cannot convert {kind_of(value)} {short(repr(value), 40)}")


def _fn_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise EvalError(f"bool() of a string needs 'true' or 'false', got {short(value, 40)!r}")
    return bool(value)


def _string_method(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def apply(value: Any, *args: Any) -> Any:
        _need(name, value, str, "a string")
        for arg in args:
            if arg is not None:
                _need(name, arg, str, "string arguments")
        return method(value, *args)

    return apply


def _fn_extreme(name: str, pick: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        items = args[0] if len(args) == 1 else args
        _need(name, items, (list, tuple), "a list or several values")
        if not items:
            raise EvalError(f"{name}() of an empty list")
        if not all(orderable(items[0], other) for other in items):
            raise EvalError(f"{name}() needs values of one comparable type")
        return pick(items)

    return apply


def _fn_sum(items: Any) -> Any:
    _need("sum", items, (list, tuple), "a list of numbers")
    if not all(is_number(item) for item in items):
        raise EvalError("sum() expects a list of numbers")
    return sum(items)


def _fn_abs(value: Any) -> Any:
    if not is_number(value):
        raise EvalError(f"abs() expects a number, got {kind_of(value)}")
    return abs(value)


def _fn_round(value: Any, digits: Any = None) -> Any:
    if not is_number(value):
        raise EvalError(f"round() expects a number, got {kind_of(value)}")
    if digits is None:
        return round(value)
    if not isinstance(digits, int) or isinstance(digits, bool) or abs(digits) > 100:
        raise EvalError("round() digits must be an integer between -100 and 100")
    return round(value, digits)


def _mapping_view(name: str, view: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def apply(value: Any) -> list[Any]:
        _need(name, value, Mapping, "a mapping")
        return list(view(value))

    return apply


def _fn_join(items: Any, separator: Any = "") -> str:
    _need("join", items, (list, tuple), "a list")
    _need("join", separator, str, "a string separator")
    parts = [text_of(item) for item in items]
    check_size(sum(len(part) for part in parts) + len(separator) * max(len(parts) - 1, 0))
    return str(separator).join(parts)


def _fn_split(value: Any, separator: Any = None, limit: Any = -1) -> list[str]:
    _need("split", value, str, "a string")
    if separator is not None:
        _need("split", separator, str, "a string separator")
        if not separator:
            raise EvalError("split() separator cannot be empty")
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise EvalError("split() limit must be an integer")
    return list(value.split(separator, limit))


#: name -> (min args, max args, implementation). The only callables an expression can reach.
FUNCTIONS: Final[Mapping[str, tuple[int, int, Callable[..., Any]]]] = {
    "len": (1, 1, _fn_len),
    "str": (1, 1, text_of),
    "int": (1, 1, _fn_int),
    "float": (1, 1, _fn_float),
    "bool": (1, 1, _fn_bool),
    "lower": (1, 1, _string_method("lower", str.lower)),
    "upper": (1, 1, _string_method("upper", str.upper)),
    "strip": (1, 2, _string_method("strip", str.strip)),
    "startswith": (2, 2, _string_method("startswith", str.startswith)),
    "endswith": (2, 2, _string_method("endswith", str.endswith)),
    "contains": (2, 2, contains),
    "min": (1, 100, _fn_extreme("min", min)),
    "max": (1, 100, _fn_extreme("max", max)),
    "sum": (1, 1, _fn_sum),
    "abs": (1, 1, _fn_abs),
    "round": (1, 2, _fn_round),
    "keys": (1, 1, _mapping_view("keys", lambda m: m.keys())),
    "values": (1, 1, _mapping_view("values", lambda m: m.values())),
    "join": (1, 2, _fn_join),
    "split": (1, 3, _fn_split),
    "default": (2, 2, lambda value, fallback: value),  # special-cased in _eval_call
}
