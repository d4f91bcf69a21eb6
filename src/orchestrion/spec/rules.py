"""The rules a spec's values follow, without pydantic: the name patterns, the numeric bounds,
what text and JSON may hold, the kinds of connection, and ``namespace/name`` references.

The models' field types (`orchestrion.spec.fields`) are built on these, and the loaders,
the JSON Schema, the API and the CLI check by them, so that a name is checked everywhere
exactly as the models check it. They are a module of their own so that an edge that checks
a value without validating a spec (a ``--server`` command parsing its arguments) does not
load pydantic and the spec's models to do so (issue 20: a command imports only what it
needs).

Integers are bounded to the narrowest database column they may reach (`INT_MIN`/`INT_MAX`:
PostgreSQL ``INTEGER``; `ID_MAX`: a ``BIGINT`` row id or cursor), so an out-of-range number
is a field error, not a database overflow. Text that can reach a terminal or a log line
(names, descriptions, labels, tags, keys) may not hold control characters (`check_text`):
an escape sequence in a workflow's description would otherwise repaint the terminal of
whoever lists it, and a newline in a name would forge a log line. JSON from outside is
decoded by `load_json`, which refuses what no store or serializer takes (a NUL, a lone
surrogate, NaN, nesting past `MAX_JSON_DEPTH`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from orchestrion.auth.principals import NAMESPACE_RE
from orchestrion.errors import InvalidValue, ParameterError, SecretError

__all__ = [
    "BROKER_KINDS",
    "CONNECTION_KINDS",
    "CONTROL_RE",
    "DESTINATIONS",
    "ENV_NAME_PATTERN",
    "ID_MAX",
    "INT_MAX",
    "INT_MIN",
    "LABEL_PATTERN",
    "MAX_JSON_DEPTH",
    "MAX_LABELS",
    "NAME_PATTERN",
    "SECRET_NAME_PATTERN",
    "SQL_KINDS",
    "check_ref",
    "check_text",
    "json_problem",
    "load_json",
    "parse_ref",
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


#: The message brokers a `publish` task (and a broker trigger) speaks to.
BROKER_KINDS: Final = ("redis", "rabbitmq", "nats", "mqtt")

#: Where each broker takes a message: the one destination field a publish names.
DESTINATIONS: Final[dict[str, str]] = {
    "redis": "stream",
    "rabbitmq": "queue",
    "nats": "subject",
    "mqtt": "topic",
}

#: The databases a `sql` task speaks to (SQLAlchemy Core).
SQL_KINDS: Final = ("postgres", "mysql", "sqlite")

#: What a named connection may connect to.
CONNECTION_KINDS: Final = (*BROKER_KINDS, *SQL_KINDS)


def check_ref(namespace: str, name: str, kind: str) -> None:
    """Unless ``namespace/name`` names something a task could refer to, `SecretError` for a
    secret, and `ParameterError` naming the `kind` for anything else named the same way
    (``connection``, ``notification``)."""
    if not NAMESPACE_RE.fullmatch(namespace):
        problem = f"bad namespace {namespace!r}: lowercase letters, digits, '_', '.' and '-'"
    elif not re.fullmatch(SECRET_NAME_PATTERN, name):
        problem = f"bad {kind} name {name!r}: letters, digits, '_', '.' and '-', at most 200"
    else:
        return
    raise SecretError(problem) if kind == "secret" else ParameterError(problem)


def parse_ref(ref: str, kind: str) -> tuple[str, str]:
    """``namespace/name`` -> (namespace, name), checked as `check_ref` checks it."""
    namespace, sep, name = ref.partition("/")
    if not sep:
        problem = f"expected <namespace>/<name>, got {ref!r}"
        raise SecretError(problem) if kind == "secret" else ParameterError(problem)
    check_ref(namespace, name, kind)
    return namespace, name
