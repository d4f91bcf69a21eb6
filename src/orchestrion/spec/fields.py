"""The field types every spec model is built from: strict scalars, names and the base model.

Lists must be accepted for tuples (YAML and JSON have no tuples), but scalars are strict:
``"3"`` is not an int and ``"no"`` is not a bool, whatever YAML 1.1 thought. The name
patterns live here too, so that the loaders, the JSON Schema and the CLI check a name
exactly as the models do.

The rules every edge shares are defined here once. Integers are bounded to the narrowest
database column they may reach (`Int`: PostgreSQL ``INTEGER``; `ID_MAX`: a ``BIGINT`` row id or
cursor), so an out-of-range number is a field error, not a database overflow. Text that can
reach a terminal or a log line (names, descriptions, labels, tags, keys) may not hold control
characters (`check_text`, the `Line` and `Text` types): an escape sequence in a workflow's
description would otherwise repaint the terminal of whoever lists it, and a newline in a name
would forge a log line. JSON from outside is decoded by `load_json`, which refuses what no
store or serializer takes (a NUL, a lone surrogate, NaN, nesting past `MAX_JSON_DEPTH`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from orchestrion.auth.principals import NAMESPACE_PATTERN, check_namespace
from orchestrion.errors import InvalidValue
from orchestrion.spec.durations import parse_duration

__all__ = [
    "CONTROL_RE",
    "ENV_NAME_PATTERN",
    "ID_MAX",
    "INT_MAX",
    "INT_MIN",
    "LABEL_PATTERN",
    "MAX_JSON_DEPTH",
    "MAX_LABELS",
    "NAME_PATTERN",
    "SECRET_NAME_PATTERN",
    "Bool",
    "Duration",
    "Float",
    "FrozenModel",
    "Int",
    "Label",
    "Line",
    "Name",
    "Namespace",
    "NamespaceOrAll",
    "Str",
    "Text",
    "check_text",
    "json_problem",
    "load_json",
]

#: A workflow, task or parameter name.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$"
#: A secret's name inside its namespace (no ``/``: a task can only name its own namespace's).
SECRET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"
#: An environment variable a task's secret is handed in.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A worker label's key or value (``orchestrion worker --label gpu=a100``).
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$"
#: Most labels a task may require (a worker's claims enumerate subsets of its labels).
MAX_LABELS = 8

#: The range of a PostgreSQL ``INTEGER`` (SQLite's integers are wider): every count, limit
#: and priority a spec or a request body carries fits the columns that store it.
INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
#: The largest row id (a ``BIGINT`` on both databases): the bound of every id and cursor
#: (``after``, ``before``, ``Last-Event-ID``) a request may carry.
ID_MAX: Final = 2**63 - 1

#: C0 and C1 control characters and DEL: what may rewrite a terminal (``\x1b[``), end a
#: string early (``\x00``) or forge a line in a log (``\r``, ``\n``).
#: Also the Unicode bidirectional overrides and isolates and the line and paragraph
#: separators, which reorder or break what a terminal shows without being seen.
CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: What a multi-line text (a description) may hold besides: tab and newline.
_TEXT_ALLOWED: Final = frozenset("\t\n")


def check_text(value: str, *, field: str = "text", multiline: bool = False) -> str:
    """`value` unless it holds a control character (tab and newline allowed when `multiline`);
    else `InvalidValue` naming the field, the character and where it is."""
    for match in CONTROL_RE.finditer(value):
        char = match.group()
        if multiline and char in _TEXT_ALLOWED:
            continue
        raise InvalidValue(
            f"{field} holds control character {char!r} at position {match.start()}:"
            " control characters are refused where text reaches a terminal or a log"
        )
    return value


#: How deep JSON input (a request body, a parameter's JSON) may nest. Deeper input is
#: refused: it would exceed the serializers' depth limits (pydantic's, the decoder's
#: recursion) further in, a 500 rather than a 4xx; no workflow or payload needs more.
MAX_JSON_DEPTH: Final = 64


def json_problem(data: Any) -> tuple[str, str] | None:
    """(path, problem) of the first thing in decoded JSON that no database can store or
    no serializer can write: a string or key holding a NUL (PostgreSQL text cannot) or a
    lone surrogate (not Unicode text), NaN or Infinity, or nesting past `MAX_JSON_DEPTH`.
    None when clean."""
    todo: list[tuple[str, Any, int]] = [("", data, 0)]
    while todo:
        path, value, depth = todo.pop()
        if isinstance(value, str):
            problem = _storable(value)
            if problem:
                return path or "(the body)", problem
        elif isinstance(value, float) and not math.isfinite(value):
            # Python's decoder takes NaN and Infinity, which are not JSON: echoed back, they
            # would make a response no client can parse.
            return path or "(the body)", f"{value} (not a JSON number)"
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return path or "(the body)", f"nesting deeper than {MAX_JSON_DEPTH} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                inner = f"{path}.{key}" if path else str(key)
                problem = _storable(key) if isinstance(key, str) else None
                if problem:
                    return f"{inner!r} (a key)", problem
                todo.append((inner, item, depth + 1))
    return None


def load_json(text: str | bytes, *, what: str = "the JSON") -> Any:
    """Decoded JSON that `json_problem` finds nothing in; `ValueError` when it is not JSON,
    `InvalidValue` (a `ValueError` too) naming the problem and where."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidValue(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    found = json_problem(data)
    if found is not None:
        where = found[0] if len(found[0]) <= 80 else found[0][:77] + "..."
        raise InvalidValue(f"{found[1]} in {what} at {where}")
    return data


def _storable(text: str) -> str | None:
    if "\x00" in text:
        return "NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone surrogate (not Unicode text)"
    return None


def _line(value: str) -> str:
    return check_text(value, field="the value")


def _text(value: str) -> str:
    return check_text(value, field="the text", multiline=True)


def _int_range(value: int) -> int:
    # A validator, not Field(ge=, le=): a field's own Field(ge=0, ...) must still apply, and
    # pydantic lets one of two such bounds replace the other.
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"{str(value)[:30]} is out of range ({INT_MIN} to {INT_MAX})")
    return value


Int = Annotated[int, Strict(), AfterValidator(_int_range)]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
#: Seconds, written as a number or as a duration string (``90s``, ``5m``, ``1h30m``).
Duration = Annotated[float, BeforeValidator(parse_duration)]
#: A one-line text that is shown or logged (a tag, a key): no control character.
Line = Annotated[str, Strict(), AfterValidator(_line)]
#: A text that may span lines (a description): no control character but tab and newline.
Text = Annotated[str, Strict(), AfterValidator(_text)]
Name = Annotated[str, Strict(), Field(pattern=NAME_PATTERN)]
#: A namespace (``auth.principals.NAMESPACE_PATTERN``, the one definition), checked by
#: `check_namespace` for its message; the pattern is published in the schemas.
Namespace = Annotated[
    str,
    Strict(),
    AfterValidator(lambda value: check_namespace(value, wildcard=False)),
    Field(json_schema_extra={"pattern": NAMESPACE_PATTERN}),
]
#: A namespace or ``*`` (every namespace): a key of a user's or a token's role bindings.
NamespaceOrAll = Annotated[
    str,
    Strict(),
    AfterValidator(check_namespace),
    Field(json_schema_extra={"pattern": r"^(\*|" + NAMESPACE_PATTERN[1:-1] + ")$"}),
]
Label = Annotated[str, Strict(), Field(pattern=LABEL_PATTERN)]


class FrozenModel(BaseModel):
    """The base of every spec model: immutable (a spec is a value, hashed for its
    version), and an unknown field is an error rather than silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
