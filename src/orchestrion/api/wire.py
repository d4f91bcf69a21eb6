"""The records as the REST API publishes them: for each, only how its JSON differs.

Every field of a record is on the wire under its own name, with its own type, unless its
`Wire` says otherwise: a field may be renamed (``task_name`` is ``task``), hidden (lease
and scheduling internals), or converted (a state is its value; ``map_index`` -1 is null).
Tuples travel as lists and mappings as objects. The API's response models
(`api.schemas`) are built from these tables and the CLI's `Remote` decodes responses back
into records with the same ones, so a new record field is one edit (plus its migration)
and reaches both.
"""

from __future__ import annotations

import collections.abc
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import GenericAlias
from typing import Any, Final, Generic, TypeVar

from orchestrion.states import RunState, TaskState
from orchestrion.store.notification_records import ChannelRecord, DeliveryRecord, RuleRecord
from orchestrion.store.record import field_names
from orchestrion.store.records import (
    AttemptRecord,
    ConnectionRecord,
    ConsumerRecord,
    EventRecord,
    LogRecord,
    RetentionPolicy,
    RunRecord,
    SecretMeta,
    TaskRunRecord,
    WorkerRecord,
)

__all__ = [
    "ATTEMPT",
    "CHANNEL",
    "CONNECTION",
    "CONSUMER",
    "DELIVERY",
    "EVENT",
    "GIVEN",
    "LOG_LINE",
    "RETENTION",
    "RULE",
    "RUN",
    "SECRET",
    "TASK_RUN",
    "WORKER",
    "Convert",
    "Field",
    "Wire",
    "enum_value",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Convert:
    """A field whose JSON value differs from the record's: its JSON type, both directions."""

    json_type: Any
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def enum_value(kind: type[Enum]) -> Convert:
    """An enum (a run's or task's state) travels as its value, typed as a plain string."""
    return Convert(str, lambda member: member.value, kind)


#: -1 (a task that is not an item of a mapped task) is null on the wire.
_MAP_INDEX = Convert(
    int | None,
    lambda index: index if index >= 0 else None,
    lambda index: -1 if index is None else index,
)


class _Given:
    def __repr__(self) -> str:
        return "GIVEN"


#: A hidden field that decoding cannot fill in: the caller gives it (the run id asked about).
GIVEN: Final = _Given()


@dataclass(frozen=True, slots=True)
class Field:
    """One record field on the wire."""

    name: str
    wire: str
    json_type: Any
    convert: Convert | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Wire(Generic[R]):
    """How one record type is shown as JSON. Names in the tables must be record fields."""

    record: type[R]
    #: Record field -> its JSON key.
    renames: Mapping[str, str] = field(default_factory=dict)
    #: Fields not shown -> the value decoding gives them (`GIVEN`: the caller's).
    hidden: Mapping[str, Any] = field(default_factory=dict)
    #: Fields whose JSON value is not the record's.
    convert: Mapping[str, Convert] = field(default_factory=dict)
    fields: tuple[Field, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = list(field_names(self.record))
        unknown = (set(self.renames) | set(self.hidden) | set(self.convert)) - set(names)
        if unknown:
            raise TypeError(f"{self.record.__name__} has no fields {sorted(unknown)}")
        hints = typing.get_type_hints(self.record)
        shown = tuple(self._field(n, hints[n]) for n in names if n not in self.hidden)
        object.__setattr__(self, "fields", shown)

    def _field(self, name: str, hint: Any) -> Field:
        convert = self.convert.get(name) or _plain(hint)
        json_type = convert.json_type if convert else hint
        return Field(
            name=name, wire=self.renames.get(name, name), json_type=json_type, convert=convert
        )

    def encode(self, record: R) -> dict[str, Any]:
        """The record's JSON object (before serialisation), in the record's field order."""
        out: dict[str, Any] = {}
        for f in self.fields:
            value = getattr(record, f.name)
            out[f.wire] = f.convert.encode(value) if f.convert else value
        return out

    def decode(self, data: Mapping[str, Any], **given: Any) -> R:
        """The record back from its JSON object; `given` fills the `GIVEN` hidden fields."""
        values: dict[str, Any] = {}
        for f in self.fields:
            value = data[f.wire]
            values[f.name] = f.convert.decode(value) if f.convert else value
        for name, default in self.hidden.items():
            if name in given:
                values[name] = given[name]
            elif default is GIVEN:
                raise TypeError(f"decoding {self.record.__name__} needs {name}=")
            else:
                values[name] = default
        return self.record(**values)


def _plain(hint: Any) -> Convert | None:
    """Tuples travel as lists and read-only mappings as objects (JSON has only those)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return Convert(GenericAlias(list, args[:1]), list, tuple)
    if origin is collections.abc.Mapping:
        return Convert(GenericAlias(dict, args), dict, dict)
    return None


RUN: Final = Wire(
    record=RunRecord,
    hidden={"deadline": None},
    convert={"state": enum_value(RunState)},
)
TASK_RUN: Final = Wire(
    record=TaskRunRecord,
    renames={"task_name": "task"},
    hidden={"ready_at": 0.0, "lease_owner": None, "lease_epoch": 0},
    convert={"state": enum_value(TaskState), "map_index": _MAP_INDEX},
)
ATTEMPT: Final = Wire(record=AttemptRecord, hidden={"run_id": GIVEN, "epoch": 0})
EVENT: Final = Wire(record=EventRecord)
LOG_LINE: Final = Wire(record=LogRecord, renames={"task_name": "task"}, hidden={"run_id": GIVEN})
WORKER: Final = Wire(record=WorkerRecord)
SECRET: Final = Wire(record=SecretMeta)
CONNECTION: Final = Wire(record=ConnectionRecord)
CONSUMER: Final = Wire(record=ConsumerRecord)
RETENTION: Final = Wire(record=RetentionPolicy)
CHANNEL: Final = Wire(record=ChannelRecord)
RULE: Final = Wire(record=RuleRecord)
DELIVERY: Final = Wire(record=DeliveryRecord)
