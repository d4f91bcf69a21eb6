"""The values an expression works with: kinds, ordering, membership, size caps and text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from orchestrion.errors import ExpressionError

__all__ = [
    "MAX_SIZE", "SCALARS", "EvalError", "MissingValue", "check_size", "contains", "is_number",
    "kind_of", "orderable", "short", "text_of", "to_text",
]  # fmt: skip

#: Longest string (characters) or list (elements) an expression may build.
MAX_SIZE: Final = 1_000_000

SCALARS: Final = (str, int, float, bool, type(None))


class EvalError(Exception):
    """A reason evaluation failed; `Expression.evaluate` wraps it into ExpressionError."""


class MissingValue(EvalError):
    """A key, index or name is absent: the one failure `default(x, fallback)` absorbs."""


def short(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters, for an error message that quotes a value or an
    expression."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_number(value: Any) -> bool:
    """True for ints and floats but not bools, which Python counts as ints and expressions
    do not."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def kind_of(value: Any) -> str:
    """The expression language's name for the kind of `value` (``string``, ``list``, ``null``...),
    for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for types, name in _KIND_NAMES:
        if isinstance(value, types):
            return name
    return type(value).__name__


_KIND_NAMES: Final = (
    (str, "string"), (int, "integer"), (float, "number"), (list | tuple, "list"),
    (Mapping, "mapping"),
)  # fmt: skip


def check_size(size: int) -> None:
    """Refuse a built string or list longer than `MAX_SIZE`, before it is built."""
    if size > MAX_SIZE:
        raise EvalError(f"result is too large ({size:,} items; the limit is {MAX_SIZE:,})")


def _check_text_size(value: Any) -> None:
    """Bound the JSON text of `value` before building it: the C encoder builds it whole."""
    budget = MAX_SIZE
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            budget -= len(item) + 2
        elif isinstance(item, Mapping):
            budget -= len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            budget -= len(item) + 2
            stack.extend(item)
        else:
            budget -= 24
        if budget < 0:
            raise EvalError(f"text would be longer than the {MAX_SIZE:,}-character limit")


def to_text(value: Any) -> str:
    """The text a template puts in place of a value: what a YAML author expects to see.

    Strings stay as they are, booleans become ``true``/``false``, null becomes ``null``,
    lists and mappings become compact JSON; numbers use Python's usual spelling.

    Raises:
        ExpressionError: when the text would exceed `MAX_SIZE` characters.
    """
    try:
        return text_of(value)
    except EvalError as exc:
        raise ExpressionError(str(exc)) from None


def text_of(value: Any) -> str:
    """`to_text`, raising `EvalError` rather than `ExpressionError`, for use inside an
    evaluation."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping | list | tuple):
        _check_text_size(value)
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError) as exc:
            raise EvalError(f"cannot convert {kind_of(value)} to text: {exc}") from None
    try:
        return str(value)
    except ValueError as exc:  # ints beyond Python's digit limit
        raise EvalError(str(exc)) from None


def orderable(left: Any, right: Any) -> bool:
    """Whether ``<`` and its kin may compare `left` and `right`: two numbers, two strings or two
    lists; anything else is an error rather than Python's answer."""
    if is_number(left) and is_number(right):
        return True
    return (isinstance(left, str) and isinstance(right, str)) or (
        isinstance(left, list | tuple) and isinstance(right, list | tuple)
    )


def contains(container: Any, item: Any) -> bool:
    """``item in container`` over a string (substring), list or mapping (key); any other container
    is an error."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise EvalError(f"'in <string>' needs a string on the left, got {kind_of(item)}")
        return item in container
    if isinstance(container, Mapping | list | tuple):
        try:
            return item in container
        except TypeError:
            return False  # an unhashable key cannot be in a mapping
    raise EvalError(f"'in' needs a string, list or mapping on the right, got {kind_of(container)}")
