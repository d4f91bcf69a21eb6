"""The spec models' errors: where a problem is, what kind it is, and the offending value.

msgspec reports the first problem of a conversion as one message (``Expected `int` >= 0 -
at `$.tasks[0].priority```). `Invalid` turns it into the shape the loaders read, as
pydantic gave it: ``loc`` (the path in the input: keys and indexes; after an action, its
``kind``), ``type`` (``missing``, ``extra_forbidden``, ``int_type``,
``greater_than_equal``, ..., ``value_error``: the names the YAML loader maps to its
messages and lines), ``msg``, ``input`` and ``ctx`` (the bound or the allowed values).
msgspec stops at the first problem; `Invalid.errors` finds more by leaving each bad field
out and converting again. A model's own checks raise `FieldProblem` to name a field.

The message can hold what an author wrote (an unknown field's name), so its parsing never
raises and never searches the whole text.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, Final, Literal, Union

import msgspec

__all__ = ["FieldProblem", "Invalid", "register_pattern"]

_MARK: Final = "\x1f"
_VALUE: Final = "\x1fvalue"
_UNKNOWN: Final = object()

#: A pattern as msgspec's messages quote it -> as written (for errors and the YAML mapping).
_PATTERNS: dict[str, str] = {}


def register_pattern(anchored: str, written: str) -> None:
    """Remember that msgspec checks `written` as `anchored` (`structs.Pattern`), so that an
    error shows the pattern as written."""
    _PATTERNS[repr(anchored)[1:-1]] = written


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


class Invalid(ValueError):
    """A spec model's data did not validate. `errors()` lists the problems found, first
    one first, each a dict of ``loc`` (the path in the input: keys and indexes), ``type``
    (``missing``, ``extra_forbidden``, ``int_type``, ``greater_than_equal``, ...,
    ``value_error``), ``msg``, ``input`` (the offending value) and ``ctx`` (the bound or the
    allowed values)."""

    #: How many problems one error collects at most (each costs a validation of the whole
    #: input again, on the error path only).
    MOST: ClassVar[int] = 10

    def __init__(
        self,
        cls: type[Any] | None,
        data: Any,
        first: msgspec.ValidationError | None,
        *,
        again: Callable[[Any, type[Any]], Any] | None = None,
    ):
        self._cls = cls
        self._data = data
        #: How the model converts data (`structs._convert`): `errors` converts again.
        self._again = again
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
            if self._cls is None or self._again is None or err["type"] == "missing":
                return  # no model to ask again, or a missing field: nothing to leave out
            if not err["loc"]:
                return  # a rule across the whole input
            data = _without(data, err["loc"])
            if data is None:
                return
            try:
                self._again(data, self._cls)
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
            chosen = _failing_key(node, tp) if isinstance(node, dict) else None
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
    tagged = [m for m in members if isinstance(m, type) and _tag_field(m) == "kind"]
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


def _mapping_types(tp: Any) -> tuple[Any, Any] | None:
    """(key type, value type) of a mapping field's type (optional or not), else None."""
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = _strip(members[0]) if len(members) == 1 else tp
    if typing.get_origin(tp) is not dict:
        return None
    key_type, value_type = typing.get_args(tp)
    return key_type, value_type


def _failing(candidates: Iterator[tuple[Any, Any]], tp: Any) -> Any:
    """The first key whose paired value (a key or a value of the mapping) is not a `tp`."""
    for key, value in candidates:
        try:
            msgspec.convert(value, tp)
        except (msgspec.ValidationError, ValueError):  # ValueError: a model's `Invalid`
            return key
    return None


def _failing_key(node: dict[Any, Any], tp: Any) -> Any:
    """The key of `node` whose value fails its type, for msgspec's unnamed ``[...]``."""
    types_ = _mapping_types(tp)
    return None if types_ is None else _failing(iter(node.items()), types_[1])


def _failing_dict_key(node: dict[Any, Any], tp: Any) -> Any:
    """The key of `node` that fails the key type."""
    types_ = _mapping_types(tp)
    return None if types_ is None else _failing(((k, k) for k in node), types_[0])


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


def _tag_field(tp: type[Any]) -> str | None:
    config = getattr(tp, "__struct_config__", None)
    return None if config is None else config.tag_field
