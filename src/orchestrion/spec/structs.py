"""The base of the spec's models: frozen msgspec `Struct`s, validated by `msgspec.convert`.

Why msgspec and not pydantic (issue 20): every process that reads a spec (``orchestrion
run``, a worker, the server) paid for importing pydantic (0.10 s) and for building a
validator per model at import (66 ms for the spec's models), more than half of a short
run. A `Struct` class is made in C at import and validation is a C walk over the data,
as for the store's records (`orchestrion.store.record`).

What this module adds to msgspec:

- **Validation on construction.** msgspec's constructor checks nothing; a spec model made
  directly (``TaskSpec(name=..., action=...)``) is converted once more, through the same
  validation as data, by `SpecModel.__post_init__`, so that authoring and data are held to
  the same rules (and nested dicts become models, durations seconds).
- **Field checks** msgspec has no constraint for, declared in a field's type with `Check`
  (a name's namespace rule, a text's control characters, a duration's parsing and bounds),
  and cross-field rules in a model's `check` method. Both run after msgspec's own checks,
  on every conversion.
- **Errors with a location**: `Invalid` and `FieldProblem`, in
  `orchestrion.spec.struct_errors` (re-exported here).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar, Union

import msgspec
from msgspec.structs import force_setattr

from orchestrion.auth.principals import check_namespace
from orchestrion.spec.durations import parse_duration
from orchestrion.spec.rules import INT_MAX, INT_MIN, LABEL_PATTERN, NAME_PATTERN, check_text
from orchestrion.spec.struct_errors import FieldProblem, Invalid, register_pattern

__all__ = [
    "ActionModel",
    "Bool",
    "Check",
    "Duration",
    "FieldProblem",
    "Float",
    "Int",
    "Invalid",
    "Label",
    "Line",
    "Name",
    "Namespace",
    "Pattern",
    "Range",
    "SpecModel",
    "Str",
    "Text",
]


class Check(msgspec.Struct, frozen=True):
    """A field check msgspec has no constraint for: `func` gets the converted value and
    returns it (or a normalised one) or raises `ValueError` naming the problem."""

    func: Callable[[Any], Any]


class Range(msgspec.Struct, frozen=True):
    """Numeric bounds for a field whose value a `Check` makes a number (a duration)."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def __call__(self, value: float) -> float:
        """`value` within the bounds; `ValueError` saying which it is not."""
        if self.gt is not None and not value > self.gt:
            raise ValueError(f"must be greater than {self.gt:g}, got {value:g}")
        if self.ge is not None and not value >= self.ge:
            raise ValueError(f"must be at least {self.ge:g}, got {value:g}")
        if self.le is not None and not value <= self.le:
            raise ValueError(f"must be at most {self.le:g}, got {value:g}")
        return value


def _int_range(value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"{str(value)[:30]} is out of range ({INT_MIN} to {INT_MAX})")
    return value


def _line(value: str) -> str:
    return check_text(value, field="the value")


def _text(value: str) -> str:
    return check_text(value, field="the text", multiline=True)


# The field types. Scalars are strict (msgspec's default): ``"3"`` is not an int and
# ``"no"`` is not a bool; lists are accepted for tuples (YAML and JSON have no tuples).
if TYPE_CHECKING:
    Duration = float
else:
    #: Seconds, written as a number or as a duration string (``90s``, ``5m``, ``1h30m``).
    Duration = Annotated[Any, Check(parse_duration)]
Int = Annotated[int, Check(_int_range)]
Float = float
Bool = bool
Str = str
#: A one-line text that is shown or logged (a tag, a key): no control character.
Line = Annotated[str, Check(_line)]
#: A text that may span lines (a description): no control character but tab and newline.
Text = Annotated[str, Check(_text)]


def Pattern(regex: str, **bounds: Any) -> msgspec.Meta:
    r"""msgspec's pattern constraint for `regex`, anchored at the very end: msgspec matches
    with `re.search`, where ``$`` also matches before a final newline (a name ending in a
    newline would pass), so the trailing ``$`` of our patterns becomes ``\Z``."""
    anchored = regex[:-1] + r"\Z" if regex.endswith("$") and not regex.endswith(r"\$") else regex
    register_pattern(anchored, regex)
    return msgspec.Meta(pattern=anchored, **bounds)


Name = Annotated[str, Pattern(NAME_PATTERN)]
#: A namespace (``auth.principals.NAMESPACE_PATTERN``), checked for its message.
Namespace = Annotated[str, Check(lambda value: check_namespace(value, wildcard=False))]
Label = Annotated[str, Pattern(LABEL_PATTERN)]

#: Set while `msgspec.convert` builds models: their `__post_init__` then only checks.
_CONVERTING: ContextVar[bool] = ContextVar("_CONVERTING", default=False)
#: A field's checks: applied to its value, they return it (normalised) or raise.
_Applier = Callable[[Any], Any]


_M = TypeVar("_M", bound="SpecModel")


class SpecModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The base of every spec model: immutable (a spec is a value, hashed for its version),
    and an unknown field is an error rather than silently dropped."""

    def __post_init__(self) -> None:
        if not _CONVERTING.get():
            # Made directly: convert the given values, then keep what the conversion made.
            made = _convert({f: getattr(self, f) for f in self.__struct_fields__}, type(self))
            for name in self.__struct_fields__:
                force_setattr(self, name, getattr(made, name))
            return
        for name, applier in _checks(type(self)):
            value = getattr(self, name)
            try:
                checked = applier(value)
            except ValueError as exc:
                raise FieldProblem.of((name,), exc) from None
            if checked is not value:
                force_setattr(self, name, checked)
        self.check()

    def check(self) -> None:
        """The model's rules across fields; raise `ValueError` (or `FieldProblem`)."""

    # ------------------------------------------------------------------ data in and out

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A model from data (a mapping, as YAML or JSON decode it); `Invalid` otherwise."""
        return _convert(data, cls)

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        """A model from JSON text; `Invalid` otherwise."""
        token = _CONVERTING.set(True)
        try:
            return msgspec.json.decode(text, type=cls)
        except msgspec.ValidationError as exc:
            raise Invalid(cls, _decoded(text), exc, again=_convert) from None
        except (msgspec.DecodeError, RecursionError, TypeError) as exc:
            raise Invalid.single("json_invalid", (), f"not JSON: {exc}", None) from None
        finally:
            _CONVERTING.reset(token)

    def model_dump(self, *, mode: Literal["json", "python"] = "json") -> dict[str, Any]:
        """The model as plain data, every field included. ``json`` (the default): what its
        JSON holds (lists for tuples, enum values, string keys, NaN and infinities as null,
        as the spec's canonical JSON has always had them); ``python``: the same shapes with
        the values as they are."""
        if mode == "python":
            kept: dict[str, Any] = msgspec.to_builtins(self, str_keys=True)
            return kept
        data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        return data

    def model_dump_json(self) -> str:
        """`model_dump` as JSON text."""
        return msgspec.json.encode(self).decode()

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with the fields in `update` replaced (not validated again, as a model's
        copy with pydantic was not: pass values of the field's type)."""
        return msgspec.structs.replace(self, **(update or {}))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The model's fields, in order."""
        return cls.__struct_fields__


#: Model class -> (field, checks) of the fields whose types carry a `Check`: found at a
#: class's first validation, not at import (a run imports every model, and most of them
#: are never validated by it) and after the module's forward references exist.
_CHECKS: dict[type[Any], tuple[tuple[str, _Applier], ...]] = {}


def _checks(cls: type[Any]) -> tuple[tuple[str, _Applier], ...]:
    found = _CHECKS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        pairs = ((name, _applier(hints[name])) for name in cls.__struct_fields__)
        found = _CHECKS[cls] = tuple((n, a) for n, a in pairs if a is not None)
    return found


class ActionModel(SpecModel, frozen=True, tag_field="kind"):
    """The base of what a task runs: its ``kind`` (msgspec's tag, set by each action with
    ``tag=...``) tells the actions apart in data."""

    @property
    def kind(self) -> str:
        """The action's kind: ``python``, ``shell``, ``http``, ..."""
        return str(type(self).__struct_config__.tag)


def _decoded(text: str | bytes) -> Any:
    """`text` decoded without a type (for an error's values), or None if it cannot be."""
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def _convert(data: Any, cls: type[_M]) -> _M:
    token = _CONVERTING.set(True)
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise Invalid(cls, data, exc, again=_convert) from None
    finally:
        _CONVERTING.reset(token)


# ---------------------------------------------------------------------- field checks


def _applier(tp: Any) -> _Applier | None:
    """The checks of a field of type `tp` (in it or in its elements), or None."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *meta = typing.get_args(tp)
        funcs = [
            m.func if isinstance(m, Check) else m for m in meta if isinstance(m, Check | Range)
        ]
        below = _applier(inner)
        if below is not None:
            funcs.insert(0, below)
        if not funcs:
            return None
        return funcs[0] if len(funcs) == 1 else _chain(funcs)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        checked = [(m, f) for m in members if (f := _applier(m)) is not None]
        if not checked:
            return None
        func = checked[0][1] if len(members) == 1 else _union(checked)
        return _unless_none(func) if len(members) < len(typing.get_args(tp)) else func
    if origin is tuple:
        args = typing.get_args(tp)
        each = _applier(args[0]) if args else None
        return None if each is None else _each(each)
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        keys, values = _applier(key_type), _applier(value_type)
        if keys is None and values is None:
            return None
        return _mapping(keys, values)
    return None


def _unless_none(func: _Applier) -> _Applier:
    def apply(value: Any) -> Any:
        return None if value is None else func(value)

    return apply


def _chain(funcs: list[_Applier]) -> _Applier:
    def apply(value: Any) -> Any:
        for func in funcs:
            value = func(value)
        return value

    return apply


def _union(checked: list[tuple[Any, _Applier]]) -> _Applier:
    def apply(value: Any) -> Any:
        for member, func in checked:
            base = typing.get_args(member)[0] if typing.get_origin(member) is Annotated else member
            if not isinstance(base, type) or isinstance(value, base):
                return func(value)
        return value

    return apply


def _each(func: _Applier) -> _Applier:
    def apply(values: tuple[Any, ...]) -> tuple[Any, ...]:
        out = []
        for i, value in enumerate(values):
            out.append(_at(i, func, value))
        return tuple(out) if any(a is not b for a, b in zip(out, values, strict=True)) else values

    return apply


def _mapping(keys: _Applier | None, values: _Applier | None) -> _Applier:
    def apply(mapping: dict[Any, Any]) -> dict[Any, Any]:
        for key, value in mapping.items():
            if keys is not None:
                _at(key, keys, key)
            if values is not None:
                checked = _at(key, values, value)
                if checked is not value:
                    mapping[key] = checked
        return mapping

    return apply


def _at(where: str | int, func: _Applier, value: Any) -> Any:
    try:
        return func(value)
    except ValueError as exc:
        raise FieldProblem.of((where,), exc) from None
