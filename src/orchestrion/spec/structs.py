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
- **Errors with a location.** `Invalid` carries each problem's path in the input (``loc``),
  a kind (``type``: the names the YAML loader maps to its messages), the message and the
  offending value, as the loaders need to point at a line. msgspec stops at the first
  problem; `Invalid.errors` collects more by removing each bad field and converting again.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, Self, TypeVar, Union

import msgspec
from msgspec.structs import force_setattr

from orchestrion.auth.principals import check_namespace
from orchestrion.spec.durations import parse_duration
from orchestrion.spec.rules import INT_MAX, INT_MIN, LABEL_PATTERN, NAME_PATTERN, check_text

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


class FieldProblem(ValueError):
    """Raised by a model's `check` to place a problem on one of its fields (`path`: the
    field's name, then keys or indexes inside it) rather than on the model."""

    def __init__(
        self,
        path: str | tuple[str | int, ...],
        message: str,
        kind: str = "value_error",
        ctx: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.path = (path,) if isinstance(path, str) else path
        self.message = message
        self.kind = kind
        self.ctx = ctx if ctx is not None else {"error": message}
        #: The offending value, when a nested model's check saw it in another shape than
        #: the input has (a key given as ``asset:``).
        self.value: Any = _UNKNOWN

    @classmethod
    def of(cls, where: tuple[str | int, ...], exc: ValueError) -> FieldProblem:
        """`exc` (raised by a check of the value at `where`) placed there: a nested model's
        `Invalid` keeps its own path and kind below `where`."""
        if isinstance(exc, FieldProblem):
            moved = cls((*where, *exc.path), exc.message, exc.kind, exc.ctx)
            moved.value = exc.value
            return moved
        if isinstance(exc, Invalid) and exc.errors():
            first = exc.errors()[0]
            made = cls((*where, *first["loc"]), first["msg"], first["type"], first["ctx"])
            if isinstance(first["input"], str | int | float | bool) or first["input"] is None:
                made.value = first["input"]
            return made
        return cls(where, str(exc))

    def __str__(self) -> str:
        # msgspec reports a __post_init__ error as "<str(exc)> - at `$.where`": the path,
        # kind and context ride along in the text, and `_parse` takes them out again.
        value = [] if self.value is _UNKNOWN else [self.value]
        extra = json.dumps([self.kind, self.ctx, list(self.path), value], default=str)
        return f"{self.message}{_MARK}{extra}"


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
    _PATTERNS[repr(anchored)[1:-1]] = regex
    return msgspec.Meta(pattern=anchored, **bounds)


#: A pattern as msgspec's messages quote it -> as written (for errors and the YAML mapping).
_PATTERNS: dict[str, str] = {}


Name = Annotated[str, Pattern(NAME_PATTERN)]
#: A namespace (``auth.principals.NAMESPACE_PATTERN``), checked for its message.
Namespace = Annotated[str, Check(lambda value: check_namespace(value, wildcard=False))]
Label = Annotated[str, Pattern(LABEL_PATTERN)]

#: Set while `msgspec.convert` builds models: their `__post_init__` then only checks.
_CONVERTING: ContextVar[bool] = ContextVar("_CONVERTING", default=False)
_MARK: Final = "\x1f"
_VALUE: Final = "\x1fvalue"
_UNKNOWN: Final = object()
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
            raise Invalid(cls, _decoded(text), exc) from None
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
        raise Invalid(cls, data, exc) from None
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


# ---------------------------------------------------------------------- errors


class Invalid(ValueError):
    """A spec model's data did not validate. `errors()` lists the problems found, first
    one first, each a dict of ``loc`` (the path in the input: keys and indexes), ``type``
    (``missing``, ``extra_forbidden``, ``int_type``, ``greater_than_equal``, ...,
    ``value_error``), ``msg``, ``input`` (the offending value) and ``ctx`` (the bound or the
    allowed values)."""

    #: How many problems one error collects at most (each costs a validation of the whole
    #: input again, on the error path only).
    MOST: ClassVar[int] = 10

    def __init__(self, cls: type[Any] | None, data: Any, first: msgspec.ValidationError | None):
        self._cls = cls
        self._data = data
        self._errors: list[dict[str, Any]] | None = None
        self._first = None if first is None else _parse(str(first), cls, data)
        super().__init__(self._describe(self._first) if self._first else "invalid")

    @classmethod
    def single(cls, kind: str, loc: tuple[str | int, ...], msg: str, value: Any) -> Invalid:
        """An error of one problem, found without a model."""
        made = cls(None, value, None)
        made._first = {"type": kind, "loc": loc, "msg": msg, "input": value, "ctx": {}}
        made._errors = [made._first]
        made.args = (cls._describe(made._first),)
        return made

    @staticmethod
    def _describe(err: dict[str, Any]) -> str:
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])

    def errors(self) -> list[dict[str, Any]]:
        """The problems, up to `MOST`: the first found, then those found by converting the
        input again without each bad field (a problem across fields ends the search)."""
        if self._errors is None:
            self._errors = list(self._collect())
        return self._errors

    def _collect(self) -> Iterator[dict[str, Any]]:
        err = self._first
        data = self._data
        seen: set[tuple[Any, ...]] = set()
        while err is not None and len(seen) < self.MOST:
            yield err
            seen.add(tuple(err["loc"]))
            if self._cls is None or err["type"] == "missing" or not err["loc"]:
                return  # a missing field, or a rule across fields: nothing to leave out
            data = _without(data, err["loc"])
            if data is None:
                return
            try:
                _convert(data, self._cls)
            except Exception as exc:
                if not isinstance(exc, Invalid):
                    # A rule that raises its own error (a cycle) once a field is left out:
                    # the problems found so far are the author's.
                    return
                err = exc._first
                # The same place again, or a model holding a field left out: most likely
                # the leaving out's doing (a rule that needs the field), not the author's.
                if err is None or any(_within(seen_loc, tuple(err["loc"])) for seen_loc in seen):
                    return
            else:
                return


def _within(loc: tuple[Any, ...], outer: tuple[Any, ...]) -> bool:
    return loc[: len(outer)] == outer


def _without(data: Any, loc: tuple[str | int, ...]) -> Any:
    """A copy of `data` without the value at `loc` (a key of a mapping), or None when it
    cannot be left out."""
    if not isinstance(loc[-1], str):
        return None

    def cut(node: Any, rest: tuple[str | int, ...]) -> Any:
        if isinstance(node, dict):
            if len(rest) == 1:
                return {k: v for k, v in node.items() if k != rest[0]}
            return {**node, rest[0]: cut(node[rest[0]], rest[1:])}
        if isinstance(node, list | tuple) and isinstance(rest[0], int):
            copy = list(node)
            copy[rest[0]] = cut(node[rest[0]], rest[1:])
            return copy
        raise LookupError

    try:
        return cut(data, loc)
    except (LookupError, TypeError):
        return None


_AT: Final = re.compile(r"(?:(?P<key>key)` in `)?\$(?P<path>[^`]*)`", re.DOTALL)
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_EXPECTED: Final = re.compile(
    r"^Expected `(?P<what>[^`]+)`"
    r"(?:, got `(?P<got>[^`]+)`| (?P<op>>=|>|<=|<) (?P<bound>\S+)"
    r"| of length (?P<lop>>=|<=) (?P<length>\d+)| matching regex '(?P<pattern>.*)')$",
    re.DOTALL,
)
_FIELD_ERRORS: Final = (
    ("Object missing required field `", "missing"),
    ("Object contains unknown field `", "extra_forbidden"),
)
_TYPE_ERRORS: Final = {
    "int": "int_type",
    "float": "float_type",
    "bool": "bool_type",
    "str": "string_type",
    "object": "dict_type",
    "array": "list_type",
}
_BOUND_ERRORS: Final = {
    ">=": ("greater_than_equal", "ge"),
    ">": ("greater_than", "gt"),
    "<=": ("less_than_equal", "le"),
    "<": ("less_than", "lt"),
}


def _parse(text: str, cls: type[Any] | None, data: Any) -> dict[str, Any]:
    """A msgspec error message -> a problem dict (see `Invalid`); never raises (hostile
    input reaches here), at worst the message without a place."""
    try:
        return _parse_message(text, cls, data)
    except Exception:
        return {
            "type": "value_error",
            "loc": (),
            "msg": text,
            "input": data,
            "ctx": {"error": text},
        }


def _parse_message(text: str, cls: type[Any] | None, data: Any) -> dict[str, Any]:
    # msgspec puts the place last; searching the whole text would be quadratic in what a
    # hostile author can repeat (an unknown field's name).
    head, sep, tail = text.rpartition(" - at `")
    match = _AT.fullmatch(tail) if sep else None
    message = head if match else text
    loc: list[str | int] = []
    if match:
        for name, index in _STEP.findall(match.group("path")):
            loc.append(name if name else (index if index == "..." else int(index)))
    message, kind, ctx, more = _kind(message)
    loc.extend(more)
    if kind == "value_error":
        ctx = {"error": message}
    concrete, value, tp = _concrete(loc, data, cls, match.group("key") if match else None)
    if _VALUE in ctx:
        ctx = dict(ctx)
        value = ctx.pop(_VALUE)
    if kind == "literal_error":
        ctx = {"expected": ", ".join(repr(v) for v in _allowed(tp))}
    if kind in _MESSAGES and message.startswith(("Expected", "Object", "Invalid")):
        message = _MESSAGES[kind].format_map({**ctx, "got": type(value).__name__})
    return {"type": kind, "loc": tuple(concrete), "msg": message, "input": value, "ctx": ctx}


#: Plain messages for msgspec's own checks (the YAML loader words them its own way).
_MESSAGES: Final = {
    "missing": "missing required field",
    "extra_forbidden": "unknown field",
    "int_type": "expected an integer, got {got}",
    "float_type": "expected a number, got {got}",
    "bool_type": "expected true or false, got {got}",
    "string_type": "expected a string, got {got}",
    "dict_type": "expected a mapping, got {got}",
    "list_type": "expected a list, got {got}",
    "literal_error": "expected one of {expected}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long (at most {max_length} characters)",
    "string_pattern_mismatch": "does not match the pattern {pattern}",
}


def _kind(message: str) -> tuple[str, str, dict[str, Any], list[str | int]]:
    """(message, kind, context, path below the reported place) of a msgspec message."""
    if _MARK in message:
        # The last mark is ours: a value in the message (an unknown field's name) may hold
        # the character too.
        text, _, extra = message.rpartition(_MARK)
        try:
            kind, ctx, path, value = json.loads(extra)
        except (ValueError, TypeError):
            pass
        else:
            if value:
                ctx = {**ctx, _VALUE: value[0]}
            return text, kind, ctx, path
    for prefix, kind in _FIELD_ERRORS:
        if message.startswith(prefix) and message.endswith("`"):
            return message, kind, {}, [message[len(prefix) : -1]]  # the name may hold a `
    if message.startswith(("Invalid enum value", "Invalid value")):
        return message, "literal_error", {}, []
    found = _EXPECTED.match(message)
    if found:
        kind, ctx = _expected(found)
        return message, kind, ctx, []
    return message, "value_error", {}, []


def _expected(found: re.Match[str]) -> tuple[str, dict[str, Any]]:
    what = found.group("what")
    if found.group("got"):
        first = what.split(" | ")[0]
        return _TYPE_ERRORS.get(first, "type_error"), {}
    if found.group("op"):
        kind, key = _BOUND_ERRORS[found.group("op")]
        bound = found.group("bound")
        number: float = float(bound)
        return kind, {key: int(number) if number.is_integer() else number}
    if found.group("lop"):
        short = found.group("lop") == ">="
        length = int(found.group("length"))
        if what == "str":
            return (
                ("string_too_short", {"min_length": length})
                if short
                else (
                    "string_too_long",
                    {"max_length": length},
                )
            )
        return (
            ("too_short", {"min_length": length})
            if short
            else (
                "too_long",
                {"max_length": length},
            )
        )
    pattern = found.group("pattern")  # shown as written (see `Pattern`)
    return "string_pattern_mismatch", {"pattern": _PATTERNS.get(pattern, pattern)}


def _concrete(
    loc: list[str | int], data: Any, cls: type[Any] | None, key: str | None
) -> tuple[list[str | int], Any, Any]:
    """(the path, the value there, its type) of msgspec's `loc` in `data`.

    msgspec's ``[...]`` (a mapping's key it does not name) becomes the key whose value
    fails on its own, and a failing key itself (`key`) ends the path. After an action (a
    union told apart by ``kind``) the path names the kind, as the YAML loader's paths
    do (``tasks.0.action.shell.argv``)."""
    out: list[str | int] = []
    node = data
    tp: Any = cls
    for part in loc:
        if part == "...":
            value_type = _dict_value_type(tp)
            chosen = _failing_key(node, value_type) if isinstance(node, dict) else None
            if chosen is None:
                return out, node, None
            part = chosen
        out.append(part)
        tp = _step_type(tp, part, node)
        node = _child(node, part)
        tag = _union_tag(tp, node)
        if tag is not None:
            out.append(tag)
    if key == "key" and isinstance(node, dict):
        bad = _failing_dict_key(node, tp)
        if bad is not None:
            out.append(bad)
            node = bad
    return out, node, tp


def _union_tag(tp: Any, node: Any) -> str | None:
    """The ``kind`` of `node` when `tp` is a union of tagged models."""
    tp = _strip(tp)
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return None
    members = [_strip(a) for a in typing.get_args(tp) if a is not type(None)]
    tagged = [m for m in members if isinstance(m, type) and issubclass(m, ActionModel)]
    if len(tagged) < 2:
        return None
    kind = node.get("kind") if isinstance(node, dict) else getattr(node, "kind", None)
    return kind if isinstance(kind, str) else None


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(part, int) and isinstance(node, list | tuple) and 0 <= part < len(node):
        return node[part]
    return getattr(node, part, None) if isinstance(part, str) else None


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _step_type(tp: Any, part: str | int, node: Any) -> Any:
    """The type of `part` inside a value of type `tp` (None when unknown)."""
    tp = _strip(tp)
    if tp is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [_strip(a) for a in typing.get_args(tp) if a is not type(None)]
        structs = [m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)]
        chosen = _tagged(structs, node)
        return _step_type(chosen, part, node) if chosen is not None else None
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        hints = typing.get_type_hints(tp, include_extras=True)
        return hints.get(part) if isinstance(part, str) else None
    if origin is tuple:
        args = typing.get_args(tp)
        return args[0] if args else None
    if origin is dict:
        return typing.get_args(tp)[1]
    return None


def _tagged(structs: list[type[Any]], node: Any) -> type[Any] | None:
    if len(structs) == 1:
        return structs[0]
    tag = node.get("kind") if isinstance(node, dict) else getattr(node, "kind", None)
    for struct in structs:
        if struct.__struct_config__.tag == tag:
            return struct
    return None


def _dict_value_type(tp: Any) -> Any:
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = _strip(members[0]) if len(members) == 1 else tp
    return typing.get_args(tp)[1] if typing.get_origin(tp) is dict else None


def _failing_key(node: dict[Any, Any], value_type: Any) -> Any:
    if value_type is None:
        return None
    for key, value in node.items():
        try:
            token = _CONVERTING.set(True)
            try:
                msgspec.convert(value, value_type)
            finally:
                _CONVERTING.reset(token)
        except (msgspec.ValidationError, ValueError):
            return key
    return None


def _failing_dict_key(node: dict[Any, Any], tp: Any) -> Any:
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = _strip(members[0]) if len(members) == 1 else tp
    if typing.get_origin(tp) is not dict:
        return None
    key_type = typing.get_args(tp)[0]
    for key in node:
        try:
            msgspec.convert(key, key_type)
        except msgspec.ValidationError:
            return key
    return None


def _allowed(tp: Any) -> list[Any]:
    """The values a literal or enum field of type `tp` takes (for the message)."""
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        found: list[Any] = []
        for member in typing.get_args(tp):
            found.extend(_literal_values(_strip(member)))
        return found
    return _literal_values(tp)


def _literal_values(tp: Any) -> list[Any]:
    if typing.get_origin(tp) is Literal:
        return list(typing.get_args(tp))
    if isinstance(tp, type) and hasattr(tp, "__members__"):
        return [m.value for m in tp.__members__.values()]
    return []
