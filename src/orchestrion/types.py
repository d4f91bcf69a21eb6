"""Shared type aliases and ids."""

from __future__ import annotations

from typing import Any, NewType, NoReturn, TypeAlias

__all__ = ["JSON", "NO_RICH_REPR", "AttemptId", "RunId", "TaskRunId", "WorkerId", "repr_hiding"]

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"

RunId = NewType("RunId", str)
TaskRunId = NewType("TaskRunId", int)
AttemptId = NewType("AttemptId", int)
WorkerId = NewType("WorkerId", str)


def repr_hiding(value: Any, *hidden: str) -> str:
    """The ``repr`` of a msgspec `Struct` without its `hidden` fields: what holds a secret
    stays out of a repr, which may reach a log or a traceback. A class using it also sets
    ``__rich_repr__ = NO_RICH_REPR``."""
    shown = ", ".join(
        f"{name}={getattr(value, name)!r}" for name in value.__struct_fields__ if name not in hidden
    )
    return f"{type(value).__name__}({shown})"


def _no_rich_repr(value: Any) -> NoReturn:
    raise AttributeError("__rich_repr__")


#: ``__rich_repr__ = NO_RICH_REPR`` in a Struct that hides fields in its ``__repr__``:
#: msgspec gives every Struct a ``__rich_repr__`` listing every field, which rich (a
#: pretty-printed value, a traceback's locals) would use instead; absent, rich uses repr.
NO_RICH_REPR: property = property(_no_rich_repr)
