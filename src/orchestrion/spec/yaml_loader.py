"""Load the YAML authoring format (see ``docs/yaml.md``) into a `WorkflowSpec`.

Workflow files are data from people, so loading must never run code and must fail with a
message that points at the line. PyYAML's loaders are not used: they build Python objects
from tags, expand aliases (an 8-line "billion laughs" file becomes gigabytes) and apply YAML
1.1, where ``NO`` is false, ``0755`` is 493 and ``1:30`` is 90. Instead the parser's *events*
are turned into plain values here, iteratively (deep nesting cannot overflow the stack),
with a strict YAML-1.2-core-like resolver, rejecting anchors, aliases, tags, duplicate keys
and second documents, and recording a (line, column) for every node.

The authoring shape is then translated into the spec's shape (tasks as an ordered mapping,
one action key per task, implied dependencies from ``tasks.X`` references) and validated by
the spec model; pydantic's errors are mapped back to YAML paths and lines.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from pydantic import ValidationError

from orchestrion.errors import CycleError, ExpressionError, SpecError
from orchestrion.spec.expressions import (
    MAX_LENGTH,
    TEMPLATE_RE,
    Expression,
    compile_expression,
    whole_template,
)
from orchestrion.spec.model import NAME_PATTERN, WorkflowSpec

__all__ = [
    "ACTION_KEYS", "HTTP_KEYS", "MAX_BYTES", "MAX_DEPTH", "PARAM_KEYS", "RETRY_KEYS",
    "SCHEDULE_KEYS", "SCOPE_NAMES", "SHELL_KEYS", "TASK_KEYS", "TOP_LEVEL_KEYS", "TRIGGER_KEYS",
    "WORKFLOW_KEYS",
    "load_yaml_file", "load_yaml_text",
]  # fmt: skip

MAX_BYTES: Final = 1_048_576
MAX_DEPTH: Final = 50

TOP_LEVEL_KEYS: Final = (
    "name", "description", "params", "timeout", "max_active_runs",
    "schedule", "schedules", "triggers", "tags", "tasks",
)  # fmt: skip
PARAM_KEYS: Final = ("type", "default", "required", "enum", "description")
SCHEDULE_KEYS: Final = (
    "name", "cron", "every", "timezone", "params", "start", "end", "catchup", "max_catchup",
    "overlap", "jitter",
)  # fmt: skip
TRIGGER_KEYS: Final = ("event", "after", "filter", "params")
AFTER_KEYS: Final = ("workflow", "outcome")
ACTION_KEYS: Final = ("python", "shell", "http", "workflow")
TASK_KEYS: Final = (
    *ACTION_KEYS, "depends_on", "inputs", "when", "trigger_rule", "map", "retry",
    "timeout", "concurrency", "priority", "queue", "undo", "description",
)  # fmt: skip
SHELL_KEYS: Final = ("argv", "script", "env", "cwd", "json_output")
HTTP_KEYS: Final = ("method", "url", "headers", "json", "expect_status", "timeout")
WORKFLOW_KEYS: Final = ("name", "params")
RETRY_KEYS: Final = ("retries", "backoff", "factor", "max_delay", "jitter", "retry_on")
#: The names an expression in a workflow file may read.
SCOPE_NAMES: Final = frozenset({"params", "tasks", "item"})

_PASSTHROUGH: Final = ("trigger_rule", "timeout", "concurrency", "priority", "queue", "description")
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_REF: Final = re.compile(r"([A-Za-z_][\w.]*|[^:\s]+\.py):[A-Za-z_][\w.]*")

Path = tuple[str | int, ...]
Mark = tuple[int, int]


# --------------------------------------------------------------------------- public API


def load_yaml_file(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> WorkflowSpec:
    """Load one workflow file; the file name becomes the `SpecError` source.

    Raises:
        SpecError: when the file cannot be read or is not a valid workflow.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise _too_large(size, max_bytes, source)
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", source=source) from None
    return load_yaml_text(data, source=source, max_bytes=max_bytes, max_depth=max_depth)


def load_yaml_text(
    text: str | bytes,
    *,
    source: str = "<string>",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> WorkflowSpec:
    """Load a workflow from YAML text (bytes must be UTF-8).

    Raises:
        SpecError: naming `source`, line:column, the YAML field path and the reason. A
            dependency cycle raises its subclass `CycleError`.
    """
    data, marks, key_marks = _read(_decode(text, source, max_bytes), source, max_depth)
    ctx = _Ctx(source, data, marks, key_marks)
    return _validate(ctx, _workflow(ctx))


# --------------------------------------------------------------------------- bytes -> events


def _too_large(size: int, limit: int, source: str) -> SpecError:
    return SpecError(
        f"the file is too large ({size:,} bytes; the limit is {limit:,})", source=source
    )


def _decode(text: str | bytes, source: str, max_bytes: int) -> str:
    if isinstance(text, str):
        size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise _too_large(size, max_bytes, source)
        return text
    if len(text) > max_bytes:
        raise _too_large(len(text), max_bytes, source)
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


def _read(text: str, source: str, max_depth: int) -> tuple[Any, dict[Path, Mark], dict[Path, Mark]]:
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


def _resolve(text: str) -> Any:
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
        return SpecError(message, source=self.source, path=_fmt(path), line=line, column=column)

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
            self.add(_resolve(event.value) if event.implicit[0] else event.value, event)
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
        self.marks[path] = mark if _is_scalar(value) else self.key_marks.get(path, mark)
        return path

    def set_key(self, top: _Frame, key: Any, event: yaml.Event) -> None:
        if not isinstance(key, str) or not isinstance(event, yaml.ScalarEvent):
            raise self.error(event, f"mapping keys must be strings, got {_describe(key)}", top.path)
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
                f"the top level must be a mapping of workflow fields, got {_describe(self.root)}",
                source=self.source,
                line=self.marks[()][0],
                column=self.marks[()][1],
            )
        return self.root


def _mark(event: yaml.Event) -> Mark:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


# --------------------------------------------------------------------------- helpers


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _fmt(path: Path) -> str | None:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def _describe(value: Any) -> str:
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


@dataclass
class _Ctx:
    """One load's state: the document, its marks, and what error mapping needs later."""

    source: str
    data: dict[str, Any]
    marks: dict[Path, Mark]
    key_marks: dict[Path, Mark]
    #: spec path prefix -> YAML path prefix, where the two shapes differ.
    pathmap: dict[Path, Path] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (task, dependency) -> the YAML path that introduced the dependency.
    origins: dict[tuple[str, str], Path] = field(default_factory=dict)

    def error(self, path: Path, message: str, *, at_key: bool = False) -> SpecError:
        line, column = self.locate(path, at_key=at_key)
        return SpecError(message, source=self.source, path=_fmt(path), line=line, column=column)

    def locate(self, path: Path, *, at_key: bool = False) -> Mark:
        if at_key and path in self.key_marks:
            return self.key_marks[path]
        while path not in self.marks:
            path = path[:-1]
        return self.marks[path]


def _mapping(ctx: _Ctx, path: Path, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(path, f"{what} must be a mapping, got {_describe(value)}")
    return value


def _check_keys(
    ctx: _Ctx, path: Path, body: dict[str, Any], allowed: tuple[str, ...], what: str
) -> None:
    for key in body:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
            raise ctx.error((*path, key), f"unknown field '{key}' in {what}{hint}", at_key=True)


def _suggest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


# --------------------------------------------------------------------------- workflow


def _workflow(ctx: _Ctx) -> dict[str, Any]:
    top = ctx.data
    _check_keys(ctx, (), top, TOP_LEVEL_KEYS, "the workflow")
    copied = ("name", "description", "timeout", "max_active_runs", "tags")
    out: dict[str, Any] = {key: top[key] for key in copied if key in top}
    out["params"] = _params(ctx, top.get("params"))
    out["schedules"] = _schedules(ctx, top)
    out["triggers"] = _triggers(ctx, top.get("triggers"))
    out["tasks"] = _tasks(ctx, top)
    return out


def _params(ctx: _Ctx, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    out: dict[str, Any] = {}
    for name, body in _mapping(ctx, ("params",), raw, "'params'").items():
        path: Path = ("params", name)
        if not re.fullmatch(NAME_PATTERN, name):
            raise ctx.error(path, f"invalid parameter name '{name}'", at_key=True)
        if isinstance(body, str):
            body = {"type": body}
        elif isinstance(body, dict):
            _check_keys(ctx, path, body, PARAM_KEYS, f"parameter '{name}'")
        else:
            raise ctx.error(path, f"expected a type name or a mapping, got {_describe(body)}")
        _check_param(ctx, path, body)
        out[name] = body
    ctx.params = out
    return out


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_PARAM_TYPES: Final[dict[str, Callable[[Any], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "date": _is_date,
    "datetime": _is_datetime,
}


def _check_param(ctx: _Ctx, path: Path, body: dict[str, Any]) -> None:
    kind, default, enum = body.get("type", "string"), body.get("default"), body.get("enum")
    fits = _PARAM_TYPES.get(kind) if isinstance(kind, str) else None
    if fits is None:
        return  # pydantic names the valid types
    if default is not None and not fits(default):
        raise ctx.error((*path, "default"), f"default {_describe(default)} is not a valid {kind}")
    if default is not None and body.get("required") is True:
        raise ctx.error((*path, "required"), "a required parameter cannot have a default")
    if enum is None:
        return
    if not isinstance(enum, list) or not enum:
        raise ctx.error((*path, "enum"), f"enum must be a non-empty list, got {_describe(enum)}")
    for i, choice in enumerate(enum):
        if not fits(choice):
            raise ctx.error(
                (*path, "enum", i), f"enum value {_describe(choice)} is not a valid {kind}"
            )
    if default is not None and default not in enum:
        raise ctx.error(
            (*path, "default"), f"default {_describe(default)} is not one of the enum values"
        )


def _check_param_value(ctx: _Ctx, path: Path, name: str, value: Any) -> None:
    if name not in ctx.params:
        declared = ", ".join(ctx.params) or "none"
        raise ctx.error(path, f"unknown parameter '{name}' (declared: {declared})", at_key=True)
    body = ctx.params[name]
    kind = body.get("type", "string")
    fits = _PARAM_TYPES.get(kind) if isinstance(kind, str) else None
    if fits is not None and not fits(value):
        raise ctx.error(path, f"{_describe(value)} is not a valid {kind}")
    if isinstance(body.get("enum"), list) and value not in body["enum"]:
        raise ctx.error(path, f"{_describe(value)} is not one of the enum values")


def _schedules(ctx: _Ctx, top: dict[str, Any]) -> list[Any]:
    if "schedule" in top and "schedules" in top:
        raise ctx.error(
            ("schedules",), "use either 'schedule' or 'schedules', not both", at_key=True
        )
    if "schedule" in top:
        ctx.pathmap[("schedules", 0)] = ("schedule",)
        return [_schedule(ctx, ("schedule",), top["schedule"])]
    raw = top.get("schedules")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.error(("schedules",), f"'schedules' must be a list, got {_describe(raw)}")
    return [_schedule(ctx, ("schedules", i), item) for i, item in enumerate(raw)]


def _schedule(ctx: _Ctx, path: Path, raw: Any) -> Any:
    if isinstance(raw, str):
        raw = {"cron": raw}
    body = _mapping(ctx, path, raw, "a schedule (a cron string, or a mapping with cron or every)")
    _check_keys(ctx, path, body, SCHEDULE_KEYS, "the schedule")
    _run_params(ctx, path, body.get("params"), "the schedule")
    return body


def _run_params(ctx: _Ctx, path: Path, params: Any, what: str) -> None:
    """Run params set by a schedule or trigger: declared, typed unless a template, and
    every required one set (templates are checked by the spec model and at fire time)."""
    if isinstance(params, dict):
        for name, value in params.items():
            if not (isinstance(value, str) and TEMPLATE_RE.search(value) and name in ctx.params):
                _check_param_value(ctx, (*path, "params", name), name, value)
    given = params if isinstance(params, dict) else {}
    for name, spec in ctx.params.items():
        if spec.get("required") is True and name not in given:
            raise ctx.error(path, f"{what} does not set required parameter '{name}'")


def _triggers(ctx: _Ctx, raw: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.error(("triggers",), f"'triggers' must be a list, got {_describe(raw)}")
    out = []
    for i, item in enumerate(raw):
        path: Path = ("triggers", i)
        body = dict(_mapping(ctx, path, item, "a trigger (a mapping with event or after)"))
        _check_keys(ctx, path, body, TRIGGER_KEYS, "the trigger")
        if isinstance(body.get("after"), str):
            body["after"] = {"workflow": body["after"]}  # shorthand: after: other_workflow
        elif isinstance(body.get("after"), dict):
            _check_keys(ctx, (*path, "after"), body["after"], AFTER_KEYS, "'after'")
        _run_params(ctx, path, body.get("params"), "the trigger")
        out.append(body)
    return out


# --------------------------------------------------------------------------- tasks


def _tasks(ctx: _Ctx, top: dict[str, Any]) -> list[dict[str, Any]]:
    raw = top.get("tasks")
    if isinstance(raw, list):
        raise ctx.error(
            ("tasks",),
            "'tasks' must be a mapping of task name to task, not a list"
            " (write 'extract:' rather than '- name: extract')",
        )
    if not isinstance(raw, dict) or not raw:
        got = "nothing" if raw is None else _describe(raw)
        raise ctx.error(
            ("tasks",), f"a workflow needs 'tasks': a mapping of task name to task, got {got}"
        )
    names = list(raw)
    out = []
    for index, name in enumerate(names):
        ctx.pathmap[("tasks", index)] = ("tasks", name)
        out.append(_task(ctx, index, name, raw[name], names))
    return out


def _task(ctx: _Ctx, index: int, name: str, raw: Any, names: list[str]) -> dict[str, Any]:
    path: Path = ("tasks", name)
    body = _mapping(ctx, path, {} if raw is None else raw, f"task '{name}'")
    _check_keys(ctx, path, body, TASK_KEYS, f"task '{name}'")
    refs = _Refs(ctx, name, names, allow_item="map" in body)
    out: dict[str, Any] = {"name": name, **{k: body[k] for k in _PASSTHROUGH if k in body}}
    depends_on = _depends_on(ctx, path, body.get("depends_on"), names, name)
    out["action"] = _action(ctx, path, body, ("tasks", index, "action"), refs, f"task '{name}'")
    if "inputs" in body:
        out["inputs"] = _inputs(ctx, path, body["inputs"], refs)
    if "when" in body:  # evaluated before a mapped task expands: no `item` yet
        when = _bare_expression(ctx, (*path, "when"), body["when"], refs, allow_item=False)
        out["when"] = {"expr": when}
    if "map" in body:
        ctx.pathmap[("tasks", index, "map_over")] = (*path, "map")
        out["map_over"] = _bare_expression(ctx, (*path, "map"), body["map"], refs, allow_item=False)
    if "retry" in body:
        out["retry"] = _retry(ctx, (*path, "retry"), body["retry"])
    undo_refs: list[tuple[str, Path]] = []
    if "undo" in body:
        out["undo"], undo_refs = _undo(ctx, index, name, body["undo"], names, "map" in body)
    for dep, origin in refs.found:
        if dep not in depends_on:
            depends_on.append(dep)
            ctx.origins.setdefault((name, dep), origin)
    for dep, origin in undo_refs:  # an undo sees its own task's result and its dependencies'
        if dep != name and dep not in depends_on:
            raise ctx.error(
                origin,
                f"the undo of '{name}' reads '{dep}', which '{name}' does"
                " not depend on (add it to depends_on)",
            )
    out["depends_on"] = depends_on
    return out


def _depends_on(ctx: _Ctx, path: Path, raw: Any, names: list[str], task: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, str | list):
        raise ctx.error(
            (*path, "depends_on"), f"expected a task name or a list, got {_describe(raw)}"
        )
    out: list[str] = []
    for i, dep in enumerate([raw] if isinstance(raw, str) else raw):
        where: Path = (*path, "depends_on", *((i,) if isinstance(raw, list) else ()))
        if not isinstance(dep, str):
            raise ctx.error(where, f"expected a task name, got {_describe(dep)}")
        if dep not in names:
            raise ctx.error(where, f"unknown task '{dep}' in depends_on{_suggest(dep, names)}")
        if dep not in out:
            out.append(dep)
            ctx.origins.setdefault((task, dep), where)
    return out


def _retry(ctx: _Ctx, path: Path, raw: Any) -> dict[str, Any]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return {"retries": raw}
    if not isinstance(raw, dict):
        raise ctx.error(path, f"expected a number of retries or a mapping, got {_describe(raw)}")
    _check_keys(ctx, path, raw, RETRY_KEYS, "retry")
    return raw


def _undo(
    ctx: _Ctx, index: int, name: str, raw: Any, names: list[str], mapped: bool
) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    path: Path = ("tasks", name, "undo")
    body = _mapping(ctx, path, raw, "'undo' (an action such as {shell: [...]})")
    _check_keys(ctx, path, body, ACTION_KEYS, f"the undo of task '{name}'")
    refs = _Refs(ctx, name, names, allow_item=mapped, allow_self=True)
    action = _action(ctx, path, body, ("tasks", index, "undo"), refs, f"the undo of task '{name}'")
    return action, refs.found


# --------------------------------------------------------------------------- actions


def _action(
    ctx: _Ctx, path: Path, body: dict[str, Any], spec: Path, refs: _Refs, what: str
) -> dict[str, Any]:
    present = [key for key in ACTION_KEYS if key in body]
    if not present:
        raise ctx.error(path, f"{what} needs an action: one of python, shell, http or workflow")
    if len(present) > 1:
        raise ctx.error(
            (*path, present[1]),
            f"{what} has more than one action ({', '.join(present)}); use exactly one",
            at_key=True,
        )
    kind = present[0]
    ctx.pathmap[spec] = ctx.pathmap[(*spec, kind)] = (*path, kind)
    return _ACTIONS[kind](ctx, (*path, kind), (*spec, kind), body[kind], refs)


def _python(ctx: _Ctx, path: Path, spec: Path, raw: Any, refs: _Refs) -> dict[str, Any]:
    if not isinstance(raw, str) or not _PYTHON_REF.fullmatch(raw):
        raise ctx.error(
            path, f"expected 'module:function' (like 'etl.jobs:extract'), got {_describe(raw)}"
        )
    return {"kind": "python", "ref": raw}


def _shell(ctx: _Ctx, path: Path, spec: Path, raw: Any, refs: _Refs) -> dict[str, Any]:
    if isinstance(raw, list):
        refs.templates(path, raw)
        return {"kind": "shell", "argv": raw}
    body = _mapping(
        ctx, path, raw, "'shell' (a list of arguments, or {argv: [...]} or {script: ...})"
    )
    _check_keys(ctx, path, body, SHELL_KEYS, "the shell action")
    if "argv" in body and "script" in body:
        raise ctx.error(path, "a shell action takes either 'argv' or 'script', not both")
    if "argv" not in body and "script" not in body:
        raise ctx.error(
            path, "a shell action needs 'argv' (a list of arguments) or 'script' (bash)"
        )
    for key in ("argv", "env", "cwd"):
        if key in body:
            refs.templates((*path, key), body[key])
    for name in body["env"] if isinstance(body.get("env"), dict) else ():
        if not _IDENTIFIER.fullmatch(str(name)):
            raise ctx.error(
                (*path, "env", name), f"bad environment variable name '{name}'", at_key=True
            )
    _check_script(ctx, (*path, "script"), body.get("script"))
    return {"kind": "shell", **body}


def _check_script(ctx: _Ctx, path: Path, script: Any) -> None:
    """A script is never templated (values must not become shell code): catch the mistake."""
    if not isinstance(script, str):
        return
    for match in TEMPLATE_RE.finditer(script):
        try:
            names = compile_expression(match.group(1)).names
        except ExpressionError:
            continue  # e.g. docker's {{.State}}: not meant for us
        if names & SCOPE_NAMES:
            raise ctx.error(
                path,
                f"scripts are not templated, so '{match.group(0)}' would stay as written;"
                " pass the value in 'env' (like env: {VALUE: '{{ params.x }}'}) and use $VALUE",
            )


def _http(ctx: _Ctx, path: Path, spec: Path, raw: Any, refs: _Refs) -> dict[str, Any]:
    body = dict(_mapping(ctx, path, raw, "'http'"))
    _check_keys(ctx, path, body, HTTP_KEYS, "the http action")
    if isinstance(body.get("method"), str):
        body["method"] = body["method"].upper()
    status = body.get("expect_status")
    if isinstance(status, int) and not isinstance(status, bool):
        body["expect_status"] = [status]
    for key in ("url", "headers", "json"):
        if key in body:
            refs.templates((*path, key), body[key])
    if "json" in body:
        ctx.pathmap[(*spec, "json_body")] = (*path, "json")
        body["json_body"] = body.pop("json")
    return {"kind": "http", **body}


def _subworkflow(ctx: _Ctx, path: Path, spec: Path, raw: Any, refs: _Refs) -> dict[str, Any]:
    if isinstance(raw, str):
        ctx.pathmap[(*spec, "workflow")] = path
        return {"kind": "workflow", "workflow": raw}
    body = _mapping(ctx, path, raw, "'workflow' (a name, or {name, params})")
    _check_keys(ctx, path, body, WORKFLOW_KEYS, "the workflow action")
    ctx.pathmap[(*spec, "workflow")] = (*path, "name")
    out = {"kind": "workflow", **({"workflow": body["name"]} if "name" in body else {})}
    if "params" in body:
        refs.templates((*path, "params"), body["params"])
        out["params"] = body["params"]
    return out


_ACTIONS: Final[dict[str, Callable[[_Ctx, Path, Path, Any, _Refs], dict[str, Any]]]] = {
    "python": _python,
    "shell": _shell,
    "http": _http,
    "workflow": _subworkflow,
}


# --------------------------------------------------------------------------- expressions


class _Refs:
    """Checks a task's expressions and collects the tasks they read (its implied deps)."""

    def __init__(
        self, ctx: _Ctx, task: str, names: list[str], *, allow_item: bool, allow_self: bool = False
    ) -> None:
        self.ctx, self.task, self.names = ctx, task, names
        self.allow_item, self.allow_self = allow_item, allow_self
        self.found: list[tuple[str, Path]] = []

    def expression(self, path: Path, text: str, *, allow_item: bool = True) -> Expression:
        try:
            expr = compile_expression(text)
        except ExpressionError as exc:
            raise self.ctx.error(path, f"bad expression: {exc}") from None
        unknown = sorted(expr.names - SCOPE_NAMES)
        if unknown:
            raise self.ctx.error(path, f"unknown name '{unknown[0]}' (use params, tasks or item)")
        if "item" in expr.names and not (allow_item and self.allow_item):
            raise self.ctx.error(path, "'item' is defined only in the fields of a task with 'map'")
        declared = list(self.ctx.params)
        missing = sorted(expr.referenced_params - set(declared))
        if missing:
            hint = _suggest(missing[0], declared)
            raise self.ctx.error(path, f"unknown parameter '{missing[0]}'{hint}")
        for task in sorted(expr.referenced_tasks):
            self.reference(path, task)
        return expr

    def reference(self, path: Path, task: str) -> None:
        if task not in self.names:
            raise self.ctx.error(
                path, f"unknown task '{task}' in expression{_suggest(task, self.names)}"
            )
        if task == self.task and not self.allow_self:
            raise self.ctx.error(path, f"task '{task}' cannot use its own result")
        self.found.append((task, path))

    def templates(self, path: Path, value: Any) -> None:
        for where, text in _strings(path, value):
            for match in TEMPLATE_RE.finditer(text):
                self.expression(where, match.group(1))
            if "{{" in TEMPLATE_RE.sub("", text):
                raise self.ctx.error(
                    where, "'{{' without a closing '}}' (write {{ '{{' }} for a literal)"
                )


def _strings(path: Path, value: Any) -> Iterator[tuple[Path, str]]:
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            stack.extend(((*where, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*where, i), v) for i, v in reversed(list(enumerate(item))))


def _bare_expression(
    ctx: _Ctx, path: Path, raw: Any, refs: _Refs, *, allow_item: bool = True
) -> str:
    if not isinstance(raw, str):
        raise ctx.error(path, f"expected an expression string, got {_describe(raw)}")
    inner = whole_template(raw)
    if inner is None and "{{" in raw:
        raise ctx.error(path, "write one expression, bare or as a single '{{ ... }}'")
    return refs.expression(path, raw if inner is None else inner, allow_item=allow_item).text


def _inputs(ctx: _Ctx, path: Path, raw: Any, refs: _Refs) -> dict[str, Any]:
    out = {}
    for key, value in _mapping(ctx, (*path, "inputs"), raw, "'inputs'").items():
        where: Path = (*path, "inputs", key)
        if not _IDENTIFIER.fullmatch(key):
            raise ctx.error(where, f"input name '{key}' is not a valid identifier", at_key=True)
        refs.templates(where, value)
        out[key] = _input(ctx, where, value)
    return out


def _input(ctx: _Ctx, path: Path, value: Any) -> dict[str, Any]:
    """A whole template is an expression; text around templates is joined into one."""
    inner = whole_template(value) if isinstance(value, str) else None
    if inner is not None:
        return {"expr": compile_expression(inner).text}
    if not any(TEMPLATE_RE.search(text) for _, text in _strings(path, value)):
        return {"value": value}
    source = _as_source(value)
    if len(source) > MAX_LENGTH:
        raise ctx.error(path, "too much text around the templates; use one '{{ ... }}' expression")
    try:
        return {"expr": compile_expression(source).text}
    except ExpressionError as exc:
        raise ctx.error(path, f"bad expression: {exc}") from None


def _as_source(value: Any) -> str:
    """Expression text that builds `value`, its templates filled as `render` would."""
    inner = whole_template(value) if isinstance(value, str) else None
    if inner is not None:
        return f"({inner})"
    if isinstance(value, str):
        parts, last = [], 0
        for match in TEMPLATE_RE.finditer(value):
            parts += [repr(value[last : match.start()]), f"str({match.group(1).strip()})"]
            last = match.end()
        parts.append(repr(value[last:]))
        return " + ".join(part for part in parts if part not in ("''", '""')) or "''"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_as_source(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_as_source(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


# --------------------------------------------------------------------------- validation


def _validate(ctx: _Ctx, data: dict[str, Any]) -> WorkflowSpec:
    try:
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise _from_pydantic(ctx, exc) from None
    except CycleError as exc:
        origin = ctx.origins.get((exc.cycle[0], exc.cycle[1]), ("tasks", exc.cycle[0]))
        line, column = ctx.locate(origin)
        # Re-run SpecError's initialiser so the CycleError (and its .cycle) gains a location.
        SpecError.__init__(
            exc, exc.detail, source=ctx.source, path=_fmt(origin), line=line, column=column
        )
        raise exc from None


def _from_pydantic(ctx: _Ctx, exc: ValidationError) -> SpecError:
    errors = exc.errors()
    locs = [tuple(err["loc"]) for err in errors]
    seen: dict[Path, Any] = {}
    for err, loc in zip(errors, locs, strict=True):
        if err["type"] in ("too_short", "too_long") and any(
            other != loc and other[: len(loc)] == loc for other in locs
        ):
            continue  # pydantic's echo of a failed element on its container
        seen.setdefault(_yaml_path(ctx, loc, err["type"] == "missing"), err)
    ordered = sorted(seen.items(), key=lambda item: ctx.locate(item[0]))
    path, err = ordered[0]
    more = len(ordered) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return ctx.error(path, _reason(err, path) + suffix)


def _yaml_path(ctx: _Ctx, loc: Path, missing: bool) -> Path:
    """A spec loc -> the YAML path a person wrote (pydantic's union tags dropped)."""
    base: Path = ()
    rest = loc
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in ctx.pathmap:
            base, rest = ctx.pathmap[loc[:cut]], loc[cut:]
            break
    node: Any = ctx.data
    for part in base:
        node = node.get(part) if isinstance(node, dict) else None
    path: list[str | int] = list(base)
    for i, part in enumerate(rest):
        present = isinstance(node, dict) and part in node
        if present or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        elif not (missing and i == len(rest) - 1 and isinstance(node, dict)):
            continue
        path.append(part)
    return tuple(path)


_REASONS: Final = {
    "missing": "missing required field '{field}'",
    "extra_forbidden": "unknown field '{field}'",
    "int_type": "expected an integer, got {got}",
    "int_from_float": "expected an integer, got {got}",
    "float_type": "expected a number, got {got}",
    "bool_type": "expected true or false, got {got}",
    "string_type": "expected a string, got {got}",
    "dict_type": "expected a mapping, got {got}",
    "tuple_type": "expected a list, got {got}",
    "list_type": "expected a list, got {got}",
    "literal_error": "expected one of {expected}, got {got}",
    "enum": "expected one of {expected}, got {got}",
    "greater_than_equal": "must be at least {ge}, got {got}",
    "greater_than": "must be greater than {gt}, got {got}",
    "less_than_equal": "must be at most {le}, got {got}",
    "less_than": "must be less than {lt}, got {got}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long (at most {max_length} characters)",
    "string_pattern_mismatch": "invalid name {got}: use letters, digits, '_' and '-',"
    " starting with a letter or '_' (at most 100 characters)",
    "value_error": "{error}",
}


def _reason(err: Any, path: Path) -> str:
    value = err.get("input")
    fields = {**(err.get("ctx") or {}), "got": _describe(value), "field": path[-1] if path else ""}
    try:
        text = _REASONS[err["type"]].format_map(fields)
    except KeyError:
        text = f"{err['msg']}, got {_describe(value)}"
    return text + _hint(err["type"], value)


def _hint(kind: str, value: Any) -> str:
    if kind == "string_type" and _is_scalar(value):
        return " (quote it to make it a string)"
    if not isinstance(value, str) or kind not in ("int_type", "float_type", "bool_type"):
        return ""
    if kind == "bool_type" and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        return " (YAML 1.1 words like yes/no/on/off are plain strings here: write true or false)"
    if re.fullmatch(r"[-+]?0[0-9]+", value):
        return " (a number with a leading zero stays a string here)"
    if re.fullmatch(r"[0-9]+(:[0-5]?[0-9])+", value):
        return " (values like 1:30 stay strings here: write the number)"
    if not isinstance(_resolve(value), str):
        return " (remove the quotes)"
    return ""
