"""`Record`, the base of the store's records, and the generic operations the edges use on
them (`replace`, `as_dict`, `field_names`, `is_record`).

A record is a frozen msgspec ``Struct``, not a frozen dataclass: the store defines some
sixty record types, every process imports them at start, and ``@dataclass`` writes and
compiles the source of each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
and frozen ``__setattr__``/``__delattr__`` when the class is made. A ``Struct`` class is
made in C: importing the records took 42 to 55 ms of an ``orchestrion run`` of a
three-task file as dataclasses, 9 ms as Structs (issue 20's machine,
``docs/performance.md``). What a caller sees is the same: keyword (or positional)
construction, frozen attributes, field equality, a hash, a repr naming the fields,
``__post_init__``.

The helpers also take dataclasses, so that an edge formatting records need not know
which kind of value it was handed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn, TypeVar

import msgspec
from msgspec import field

__all__ = ["Record", "as_dict", "field", "field_names", "is_record", "replace"]

R = TypeVar("R")


class Record(msgspec.Struct, frozen=True):
    """A frozen record; a subclass adds ``kw_only=True`` for keyword-only construction."""

    @property
    def __rich_repr__(self) -> NoReturn:
        """Absent. msgspec gives every ``Struct`` one that lists every field, so rich (a
        pretty-printed value, a traceback's locals) would show a password or token hash
        past the ``__repr__`` of the records that hide them; without it, rich uses
        ``repr``."""
        raise AttributeError("__rich_repr__")


def is_record(value: Any) -> bool:
    """Whether `value` is a record instance (or a dataclass instance)."""
    if isinstance(value, msgspec.Struct):
        return True
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def field_names(record: Any) -> tuple[str, ...]:
    """The field names of a record type or instance, in definition order."""
    if isinstance(record, msgspec.Struct) or (
        isinstance(record, type) and issubclass(record, msgspec.Struct)
    ):
        return tuple(record.__struct_fields__)
    return tuple(f.name for f in dataclasses.fields(record))


def replace(record: R, **changes: Any) -> R:
    """A copy of `record` with `changes` (``dataclasses.replace`` for records): a Struct's
    ``__post_init__`` runs on the copy, as a dataclass's does (msgspec's own `replace`
    skips it, which would let a principal's bindings or a master key go unchecked)."""
    if isinstance(record, msgspec.Struct):
        copy = msgspec.structs.replace(record, **changes)
        post_init = getattr(copy, "__post_init__", None)
        if post_init is not None:
            post_init()
        return copy
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def as_dict(record: Any) -> dict[str, Any]:
    """`record`'s fields as a dict, every record in them (at any depth: in lists, tuples
    and dicts too) a dict of its own, as ``dataclasses.asdict`` does; unlike it, other
    values are not deep-copied (the containers are new, what they hold is shared)."""
    plain = _plain(record)
    if not isinstance(plain, dict):
        raise TypeError(f"not a record: {type(record).__name__}")
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return {name: _plain(getattr(value, name)) for name in value.__struct_fields__}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_plain(v) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
