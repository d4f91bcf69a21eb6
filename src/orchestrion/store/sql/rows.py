"""Records built from rows: one reader per record type, derived from the record's fields.

A reader copies each field of a record from the column of the same name, decoded by the
field's type: a state enum from its value, a ``bool`` from its stored integer, ``bytes``
as bytes, a tuple or mapping (or ``Any``) from its canonical JSON text, a spec through its
``from_json``; a plain ``str``, ``int`` or ``float`` as it comes. What differs from that is
declared once, in the reader's table below: a column named otherwise (`columns`), or a field
that is not a column and that the caller gives (`given`). A new column is then one edit to
the record plus its migration.

Readers are built once, at first use, as a function per record that does exactly what a
hand-written one would (``Record(id=row["id"], state=TaskState(row["state"]), ...)``), so
that the hot reads (`list_task_runs`, `list_events`) pay nothing per row for being
derived: the code is generated from the fields, as `dataclasses` generates ``__init__``.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, Final, TypeVar

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.record import field_names
from orchestrion.store.records import (
    AttemptRecord,
    AuditRecord,
    BackfillRecord,
    ConnectionRecord,
    EventRecord,
    FireRecord,
    LogRecord,
    QueueLimit,
    RetentionPolicy,
    RunMark,
    RunRecord,
    ScheduleState,
    SealedRow,
    SecretMeta,
    SessionRecord,
    TaskRunRecord,
    TokenRecord,
    UserRecord,
    WorkerRecord,
    WorkflowRecord,
)
from orchestrion.store.sql.jsontext import loads
from orchestrion.store.template_records import StoredLibrary

__all__ = [
    "ATTEMPT",
    "AUDIT",
    "BACKFILL",
    "CONNECTION",
    "EVENT",
    "FIRE",
    "LIBRARY",
    "LOG",
    "QUEUE_LIMIT",
    "RETENTION",
    "RUN",
    "RUN_MARK",
    "SCHEDULE_STATE",
    "SEALED",
    "SECRET_META",
    "SESSION",
    "TASK_RUN",
    "TOKEN",
    "USER",
    "WORKER",
    "WORKFLOW",
    "column_list",
    "reader",
    "row_reader",
]

R = TypeVar("R")

Decode = Callable[[Any], Any]


def _json_object(text: str | None) -> Any:
    """A mapping that is never None: an absent value reads as empty."""
    return json.loads(text) if text else {}


def _json_tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


def _optional(decode: Decode) -> Decode:
    def maybe(value: Any) -> Any:
        return None if value is None else decode(value)

    return maybe


def decoder(hint: Any) -> Decode | None:
    """How a column value becomes a field of type `hint` (None: as it comes)."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else Any
    origin = typing.get_origin(hint) or hint
    found: Decode | None
    if hint in (str, int, float) or origin is typing.Literal:
        return None
    if hint is bool:
        found = bool
    elif hint is bytes:
        found = bytes
    elif isinstance(hint, type) and issubclass(hint, Enum):
        found = hint
    elif isinstance(hint, type) and hasattr(hint, "from_json"):
        found = hint.from_json
    elif origin is tuple:
        found = _json_tuple
    elif origin in (dict, Mapping) and not optional:
        return _json_object
    else:  # Any, an optional mapping, a list: canonical JSON text
        return loads
    return _optional(found) if optional else found


def row_reader(
    record: type[R],
    *,
    columns: Mapping[str, str] | None = None,
    given: Iterable[str] = (),
) -> Callable[..., R]:
    """The function ``(row, **given) -> record`` for `record`: each field from its column
    (`columns` renames some), decoded by its type (`decoder`); the `given` fields are the
    caller's keyword arguments."""
    renames = dict(columns or {})
    supplied = tuple(given)
    fields = list(field_names(record))
    unknown = (set(renames) | set(supplied)) - set(fields)
    if unknown:
        raise TypeError(f"{record.__name__} has no fields {sorted(unknown)}")
    # records.py names the spec for type checkers only (see there): resolved here.
    hints = typing.get_type_hints(record, localns={"WorkflowSpec": WorkflowSpec})
    scope: dict[str, Any] = {"record": record}
    parts: list[str] = []
    for name in fields:
        if name in supplied:
            parts.append(f"{name}={name}")
            continue
        column = renames.get(name, name)
        if not column.isidentifier():
            raise TypeError(f"{record.__name__}.{name}: column {column!r} is not a name")
        value = f"row[{column!r}]"
        decode = decoder(hints[name])
        if decode is not None:
            scope[f"decode_{name}"] = decode
            value = f"decode_{name}({value})"
        parts.append(f"{name}={value}")
    keywords = "".join(f", {name}" for name in supplied)
    star = ", *" if supplied else ""
    source = f"def read(row{star}{keywords}):\n    return record({', '.join(parts)})\n"
    exec(source, scope)  # the fields are identifiers, checked above
    read: Callable[..., R] = scope["read"]
    read.__name__ = read.__qualname__ = f"read_{record.__name__}"
    read.__doc__ = f"A `{record.__name__}` from a row (`orchestrion.store.sql.rows`)."
    return read


_KEPT: dict[type[Any], Callable[..., Any]] = {}


def reader(record: type[R]) -> Callable[..., R]:
    """`row_reader(record)` (each field from its column of the same name), built at its
    first use and kept: for the readers of other modules, which a run imports and mostly
    never calls (metrics, broker consumers, policies). Two threads that race build equal
    readers."""
    found = _KEPT.get(record)
    if found is None:
        found = _KEPT[record] = row_reader(record)
    return found


def column_list(record: type[Any], *, columns: Mapping[str, str] | None = None) -> str:
    """The columns a reader of `record` reads, comma-separated, for a SELECT list."""
    renames = columns or {}
    return ", ".join(renames.get(n, n) for n in field_names(record))


# ------------------------------------------------------------------ the readers

#: The run counts by state come from the backfill's fires (a query of their own).
BACKFILL_COLUMNS: Final = {"start": "range_start", "end": "range_end"}

#: Each reader: its record, the columns it reads under another name, the fields its caller
#: gives. Built at first use (`__getattr__`): building one resolves the record's type hints
#: and compiles its source, about 0.2 ms, and `orchestrion run` uses three or four of them.
_READERS: Final[dict[str, tuple[type[Any], Mapping[str, str] | None, tuple[str, ...]]]] = {
    "WORKFLOW": (WorkflowRecord, None, ("spec",)),  # parsed once per version
    "RUN": (RunRecord, None, ()),
    "RUN_MARK": (RunMark, None, ()),
    "TASK_RUN": (TaskRunRecord, None, ()),
    "ATTEMPT": (AttemptRecord, None, ()),
    "EVENT": (EventRecord, None, ()),
    "LOG": (LogRecord, None, ("task_name",)),  # with its map index
    "WORKER": (WorkerRecord, None, ()),
    "QUEUE_LIMIT": (QueueLimit, None, ()),
    "SCHEDULE_STATE": (ScheduleState, None, ()),
    "FIRE": (FireRecord, None, ()),
    "BACKFILL": (BackfillRecord, BACKFILL_COLUMNS, ("counts",)),
    "USER": (UserRecord, None, ()),
    "TOKEN": (TokenRecord, None, ()),
    "SESSION": (SessionRecord, None, ()),
    "AUDIT": (AuditRecord, None, ()),
    "SECRET_META": (SecretMeta, None, ()),
    "CONNECTION": (ConnectionRecord, None, ()),
    "LIBRARY": (StoredLibrary, None, ()),
    "SEALED": (SealedRow, None, ()),
    "RETENTION": (RetentionPolicy, None, ()),
}

# Declared for type checkers; the module's `__getattr__` makes each at its first use.
WORKFLOW: Callable[..., WorkflowRecord]
RUN: Callable[..., RunRecord]
RUN_MARK: Callable[..., RunMark]
TASK_RUN: Callable[..., TaskRunRecord]
ATTEMPT: Callable[..., AttemptRecord]
EVENT: Callable[..., EventRecord]
LOG: Callable[..., LogRecord]
WORKER: Callable[..., WorkerRecord]
QUEUE_LIMIT: Callable[..., QueueLimit]
SCHEDULE_STATE: Callable[..., ScheduleState]
FIRE: Callable[..., FireRecord]
BACKFILL: Callable[..., BackfillRecord]
USER: Callable[..., UserRecord]
TOKEN: Callable[..., TokenRecord]
SESSION: Callable[..., SessionRecord]
AUDIT: Callable[..., AuditRecord]
SECRET_META: Callable[..., SecretMeta]
CONNECTION: Callable[..., ConnectionRecord]
LIBRARY: Callable[..., StoredLibrary]
SEALED: Callable[..., SealedRow]
RETENTION: Callable[..., RetentionPolicy]


def __getattr__(name: str) -> Any:
    """The reader called `name`, built now and kept as a module global (PEP 562), so the
    next use finds it without coming here. Two threads that race build equal readers."""
    try:
        record, columns, given = _READERS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    reader = row_reader(record, columns=columns, given=given)
    globals()[name] = reader
    return reader
