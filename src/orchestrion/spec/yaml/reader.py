"""Read YAML text into plain values, with a (line, column) mark for every node.

Workflow files are data from people, so reading must never run code and must fail with a
message that points at the line. PyYAML's loaders are not used: they build Python objects
from tags, expand aliases (an 8-line "billion laughs" file becomes gigabytes) and apply YAML
1.1, where ``NO`` is false, ``0755`` is 493 and ``1:30`` is 90. Instead the parser's *events*
are turned into plain values here, iteratively (deep nesting cannot overflow the stack),
with a strict YAML-1.2-core-like resolver, rejecting anchors, aliases, tags, duplicate keys
and second documents, and recording a (line, column) for every node.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

import yaml

from orchestrion.errors import SpecError

__all__ = [
    "Mark", "Path", "decode_text", "describe", "format_path", "is_scalar", "read_document",
    "resolve_scalar", "too_large",
]  # fmt: skip

_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple[str | int, ...]
Mark = tuple[int, int]


def too_large(size: int, limit: int, source: str) -> SpecError:
    """The error for a file over the size limit: refused before parsing, so a huge file costs
    nothing."""
    return SpecError(
        f"the file is too large ({size:,} bytes; the limit is {limit:,})", source=source
    )


def decode_text(text: str | bytes, source: str, max_bytes: int) -> str:
    """The text of a workflow file: size-checked, and bytes decoded as UTF-8 with an error at the
    line of a bad byte."""
    if isinstance(text, str):
        size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise too_large(size, max_bytes, source)
        return text
    if len(text) > max_bytes:
        raise too_large(len(text), max_bytes, source)
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        column = exc.start - (text.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            f"the file is not valid UTF-8 (byte 0x{text[exc.start]:02x})",
            source=source,
            line=line,
            column=column,
        ) from None


def read_document(
    text: str, source: str, max_depth: int
) -> tuple[Any, dict[Path, Mark], dict[Path, Mark]]:
    """Parse `text` as safe YAML (no tags, no code) into plain values, with the line and column of
    every value and key; refuses nesting deeper than `max_depth`."""
    builder = _Builder(source, max_depth)
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, source) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = int(getattr(exc, "position", 0))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(exc, "reason", "invalid character")
        raise SpecError(
            f"the file holds a character YAML does not allow ({reason})",
            source=source,
            line=line,
            column=column,
        ) from None
    return builder.result(), builder.marks, builder.key_marks


def _syntax_error(exc: yaml.MarkedYAMLError, source: str) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or 'invalid YAML'}"
    if exc.context:
        message += f" ({exc.context})"
    if "alias" in (exc.context or ""):
        message += "; quote values that start with '*', such as cron expressions"
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    return SpecError(message, source=source, line=line, column=column)


_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS: Final = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
                 "FALSE": False}  # fmt: skip
_INT: Final = re.compile(r"[-+]?(0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0o[0-7]+")
_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF: Final = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN: Final = re.compile(r"\.(nan|NaN|NAN)")


def resolve_scalar(text: str) -> Any:
    """A plain scalar's value: YAML 1.2 core, stricter. Everything unlisted is a string."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        try:
            return int(text, 0) if text[:2] in ("0x", "0o") else int(text)
        except ValueError:  # beyond Python's digit limit: leave it to the field's check
            return text
    if _FLOAT.fullmatch(text) and any(c in text for c in ".eE"):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if _NAN.fullmatch(text) else text


_NO_KEY: Final = object()


@dataclass(slots=True)
class _Frame:
    container: dict[str, Any] | list[Any]
    path: Path
    key: Any = _NO_KEY
    key_mark: Mark = (0, 0)


class _Builder:
    """Events -> plain values plus a mark per path, with every YAML hazard refused."""

    def __init__(self, source: str, max_depth: int) -> None:
        self.source = source
        self.max_depth = max_depth
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.stack: list[_Frame] = []
        self.root: Any = _NO_KEY
        self.documents = 0

    def error(self, event: yaml.Event, message: str, path: Path = ()) -> SpecError:
        line, column = _mark(event)
        return SpecError(
            message, source=self.source, path=format_path(path), line=line, column=column
        )

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise self.error(event, "YAML anchors and aliases are not allowed")
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise self.error(event, f"YAML tags are not allowed (found '{shown}')")
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.error(event, "a file holds one workflow, but a second document starts")
        elif isinstance(event, yaml.ScalarEvent):
            self.add(resolve_scalar(event.value) if event.implicit[0] else event.value, event)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(self.stack) >= self.max_depth:
                raise self.error(event, f"nesting is deeper than {self.max_depth} levels")
            container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
            self.stack.append(_Frame(container, self.add(container, event)))
        elif isinstance(event, yaml.CollectionEndEvent):
            self.stack.pop()

    def add(self, value: Any, event: yaml.Event) -> Path:
        mark = _mark(event)
        if not self.stack:
            self.root = value
            self.marks[()] = mark
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            path = (*top.path, len(top.container))
            top.container.append(value)
        elif top.key is _NO_KEY:
            self.set_key(top, value, event)
            return ()
        else:
            path = (*top.path, top.key)
            top.container[top.key] = value
            self.key_marks[path] = top.key_mark
            top.key = _NO_KEY
        self.marks[path] = mark if is_scalar(value) else self.key_marks.get(path, mark)
        return path

    def set_key(self, top: _Frame, key: Any, event: yaml.Event) -> None:
        if not isinstance(key, str) or not isinstance(event, yaml.ScalarEvent):
            raise self.error(event, f"mapping keys must be strings, got {describe(key)}", top.path)
        if key in top.container:
            what = "task name" if top.path == ("tasks",) else "key"
            raise self.error(event, f"duplicate {what} '{key}'", (*top.path, key))
        top.key, top.key_mark = key, _mark(event)

    def result(self) -> dict[str, Any]:
        if self.root is _NO_KEY or self.root is None:
            raise SpecError(
                "the file is empty: a workflow needs 'name' and 'tasks'", source=self.source
            )
        if not isinstance(self.root, dict):
            raise SpecError(
                f"the top level must be a mapping of workflow fields, got {describe(self.root)}",
                source=self.source,
                line=self.marks[()][0],
                column=self.marks[()][1],
            )
        return self.root


def _mark(event: yaml.Event) -> Mark:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def is_scalar(value: Any) -> bool:
    """True for a value that is neither a mapping nor a list."""
    return not isinstance(value, dict | list)


def format_path(path: Path) -> str | None:
    """`path` as a person writes it (``tasks.extract.retry[0]``), or None for the document
    itself."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def describe(value: Any) -> str:
    """`value` as an error message quotes it: short, and in YAML's words (``true``,
    ``null``, ``a mapping``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
