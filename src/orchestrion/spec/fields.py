"""The field types every spec model is built from: strict scalars, names and the base model.

Lists must be accepted for tuples (YAML and JSON have no tuples), but scalars are strict:
``"3"`` is not an int and ``"no"`` is not a bool, whatever YAML 1.1 thought.

The rules these types apply (the name patterns, the integer bounds, what text and JSON may
hold) are `orchestrion.spec.rules`, without pydantic; they are re-exported here, where the
loaders, the JSON Schema and the API have always imported them. `Int` bounds an integer to
PostgreSQL's ``INTEGER``; `Line` and `Text` refuse control characters (`check_text`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from orchestrion.auth.principals import NAMESPACE_PATTERN, check_namespace
from orchestrion.spec.durations import parse_duration
from orchestrion.spec.rules import (
    CONTROL_RE,
    ENV_NAME_PATTERN,
    ID_MAX,
    INT_MAX,
    INT_MIN,
    LABEL_PATTERN,
    MAX_JSON_DEPTH,
    MAX_LABELS,
    NAME_PATTERN,
    SECRET_NAME_PATTERN,
    check_text,
    json_problem,
    load_json,
)

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
