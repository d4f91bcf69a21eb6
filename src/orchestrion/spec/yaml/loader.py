"""Load the YAML authoring format (see ``docs/yaml.md``) into a `WorkflowSpec`.

Workflow files are data from people, so loading must never run code and must fail with a
message that points at the line.

Reading (`orchestrion.spec.yaml.reader`) turns the text into plain values with marks.
The authoring shape is then translated into the spec's shape (tasks as an ordered mapping,
one action key per task, implied dependencies from ``tasks.X`` references) and validated by
the spec model; pydantic's errors are mapped back to YAML paths and lines
(`orchestrion.spec.yaml.errors`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from typing import Any, Final

from orchestrion.errors import ExpressionError, SpecError
from orchestrion.spec.expressions import (
    TEMPLATE_RE,
    compile_expression,
)
from orchestrion.spec.model import NAME_PATTERN, SECRET_NAME_PATTERN, WorkflowSpec
from orchestrion.spec.yaml.errors import LoadContext, suggest, validate_spec
from orchestrion.spec.yaml.params import check_param, check_run_params
from orchestrion.spec.yaml.reader import Path, decode_text, describe, read_document, too_large
from orchestrion.spec.yaml.refs import (
    SCOPE_NAMES,
    TaskRefs,
    bare_expression,
    input_spec,
)

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
    "schedule", "schedules", "triggers", "tags", "namespace", "tasks",
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
    "timeout", "concurrency", "priority", "queue", "requires", "undo", "description", "secrets",
    "concurrency_key", "key_limit", "executor",
)  # fmt: skip
SHELL_KEYS: Final = ("argv", "script", "env", "cwd", "json_output")
HTTP_KEYS: Final = ("method", "url", "headers", "json", "expect_status", "timeout")
WORKFLOW_KEYS: Final = ("name", "params")
RETRY_KEYS: Final = ("retries", "backoff", "factor", "max_delay", "jitter", "retry_on")

_PASSTHROUGH: Final = (
    "trigger_rule", "timeout", "concurrency", "priority", "queue", "requires", "description",
    "concurrency_key", "key_limit", "executor",
)  # fmt: skip
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_REF: Final = re.compile(r"([A-Za-z_][\w.]*|[^:\s]+\.py):[A-Za-z_][\w.]*")

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
                raise too_large(size, max_bytes, source)
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
    data, marks, key_marks = read_document(decode_text(text, source, max_bytes), source, max_depth)
    ctx = LoadContext(source, data, marks, key_marks)
    return validate_spec(ctx, _workflow(ctx))


def _mapping(ctx: LoadContext, path: Path, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(path, f"{what} must be a mapping, got {describe(value)}")
    return value


def _check_keys(
    ctx: LoadContext, path: Path, body: dict[str, Any], allowed: tuple[str, ...], what: str
) -> None:
    for key in body:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
            raise ctx.error((*path, key), f"unknown field '{key}' in {what}{hint}", at_key=True)


# --------------------------------------------------------------------------- workflow


def _workflow(ctx: LoadContext) -> dict[str, Any]:
    top = ctx.data
    _check_keys(ctx, (), top, TOP_LEVEL_KEYS, "the workflow")
    copied = ("name", "description", "timeout", "max_active_runs", "tags", "namespace")
    out: dict[str, Any] = {key: top[key] for key in copied if key in top}
    out["params"] = _params(ctx, top.get("params"))
    out["schedules"] = _schedules(ctx, top)
    out["triggers"] = _triggers(ctx, top.get("triggers"))
    out["tasks"] = _tasks(ctx, top)
    return out


def _params(ctx: LoadContext, raw: Any) -> dict[str, Any]:
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
            raise ctx.error(path, f"expected a type name or a mapping, got {describe(body)}")
        check_param(ctx, path, body)
        out[name] = body
    ctx.params = out
    return out


def _schedules(ctx: LoadContext, top: dict[str, Any]) -> list[Any]:
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
        raise ctx.error(("schedules",), f"'schedules' must be a list, got {describe(raw)}")
    return [_schedule(ctx, ("schedules", i), item) for i, item in enumerate(raw)]


def _schedule(ctx: LoadContext, path: Path, raw: Any) -> Any:
    if isinstance(raw, str):
        raw = {"cron": raw}
    body = _mapping(ctx, path, raw, "a schedule (a cron string, or a mapping with cron or every)")
    _check_keys(ctx, path, body, SCHEDULE_KEYS, "the schedule")
    check_run_params(ctx, path, body.get("params"), "the schedule")
    return body


def _triggers(ctx: LoadContext, raw: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.error(("triggers",), f"'triggers' must be a list, got {describe(raw)}")
    out = []
    for i, item in enumerate(raw):
        path: Path = ("triggers", i)
        body = dict(_mapping(ctx, path, item, "a trigger (a mapping with event or after)"))
        _check_keys(ctx, path, body, TRIGGER_KEYS, "the trigger")
        if isinstance(body.get("after"), str):
            body["after"] = {"workflow": body["after"]}  # shorthand: after: other_workflow
        elif isinstance(body.get("after"), dict):
            _check_keys(ctx, (*path, "after"), body["after"], AFTER_KEYS, "'after'")
        check_run_params(ctx, path, body.get("params"), "the trigger")
        out.append(body)
    return out


# --------------------------------------------------------------------------- tasks


def _tasks(ctx: LoadContext, top: dict[str, Any]) -> list[dict[str, Any]]:
    raw = top.get("tasks")
    if isinstance(raw, list):
        raise ctx.error(
            ("tasks",),
            "'tasks' must be a mapping of task name to task, not a list"
            " (write 'extract:' rather than '- name: extract')",
        )
    if not isinstance(raw, dict) or not raw:
        got = "nothing" if raw is None else describe(raw)
        raise ctx.error(
            ("tasks",), f"a workflow needs 'tasks': a mapping of task name to task, got {got}"
        )
    names = list(raw)
    out = []
    for index, name in enumerate(names):
        ctx.pathmap[("tasks", index)] = ("tasks", name)
        out.append(_task(ctx, index, name, raw[name], names))
    return out


def _task(ctx: LoadContext, index: int, name: str, raw: Any, names: list[str]) -> dict[str, Any]:
    path: Path = ("tasks", name)
    body = _mapping(ctx, path, {} if raw is None else raw, f"task '{name}'")
    _check_keys(ctx, path, body, TASK_KEYS, f"task '{name}'")
    refs = TaskRefs(ctx, name, names, allow_item="map" in body)
    out: dict[str, Any] = {"name": name, **{k: body[k] for k in _PASSTHROUGH if k in body}}
    depends_on = _depends_on(ctx, path, body.get("depends_on"), names, name)
    out["action"] = _action(ctx, path, body, ("tasks", index, "action"), refs, f"task '{name}'")
    if "inputs" in body:
        out["inputs"] = _inputs(ctx, path, body["inputs"], refs)
    if "when" in body:  # evaluated before a mapped task expands: no `item` yet
        when = bare_expression(ctx, (*path, "when"), body["when"], refs, allow_item=False)
        out["when"] = {"expr": when}
    if "map" in body:
        ctx.pathmap[("tasks", index, "map_over")] = (*path, "map")
        out["map_over"] = bare_expression(ctx, (*path, "map"), body["map"], refs, allow_item=False)
    if "retry" in body:
        out["retry"] = _retry(ctx, (*path, "retry"), body["retry"])
    if "secrets" in body:
        out["secrets"] = _secrets(ctx, (*path, "secrets"), body["secrets"])
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


def _depends_on(ctx: LoadContext, path: Path, raw: Any, names: list[str], task: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, str | list):
        raise ctx.error(
            (*path, "depends_on"), f"expected a task name or a list, got {describe(raw)}"
        )
    out: list[str] = []
    for i, dep in enumerate([raw] if isinstance(raw, str) else raw):
        where: Path = (*path, "depends_on", *((i,) if isinstance(raw, list) else ()))
        if not isinstance(dep, str):
            raise ctx.error(where, f"expected a task name, got {describe(dep)}")
        if dep not in names:
            raise ctx.error(where, f"unknown task '{dep}' in depends_on{suggest(dep, names)}")
        if dep not in out:
            out.append(dep)
            ctx.origins.setdefault((task, dep), where)
    return out


def _secrets(ctx: LoadContext, path: Path, raw: Any) -> dict[str, str]:
    """``{ENV_VAR: secret-name}``: references only, resolved by the worker at run time."""
    body = _mapping(ctx, path, raw, "'secrets' (environment variable -> secret name)")
    for env, name in body.items():
        if not _IDENTIFIER.fullmatch(env):
            raise ctx.error((*path, env), f"invalid environment variable name '{env}'", at_key=True)
        if not isinstance(name, str) or not re.fullmatch(SECRET_NAME_PATTERN, name):
            raise ctx.error(
                (*path, env),
                "expected a secret name (letters, digits, '_', '.', '-'; no '/'),"
                f" got {describe(name)}",
            )
    return body


def _retry(ctx: LoadContext, path: Path, raw: Any) -> dict[str, Any]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return {"retries": raw}
    if not isinstance(raw, dict):
        raise ctx.error(path, f"expected a number of retries or a mapping, got {describe(raw)}")
    _check_keys(ctx, path, raw, RETRY_KEYS, "retry")
    return raw


def _undo(
    ctx: LoadContext, index: int, name: str, raw: Any, names: list[str], mapped: bool
) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    path: Path = ("tasks", name, "undo")
    body = _mapping(ctx, path, raw, "'undo' (an action such as {shell: [...]})")
    _check_keys(ctx, path, body, ACTION_KEYS, f"the undo of task '{name}'")
    refs = TaskRefs(ctx, name, names, allow_item=mapped, allow_self=True)
    action = _action(ctx, path, body, ("tasks", index, "undo"), refs, f"the undo of task '{name}'")
    return action, refs.found


# --------------------------------------------------------------------------- actions


def _action(
    ctx: LoadContext, path: Path, body: dict[str, Any], spec: Path, refs: TaskRefs, what: str
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


def _python(ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs) -> dict[str, Any]:
    if not isinstance(raw, str) or not _PYTHON_REF.fullmatch(raw):
        raise ctx.error(
            path, f"expected 'module:function' (like 'etl.jobs:extract'), got {describe(raw)}"
        )
    return {"kind": "python", "ref": raw}


def _shell(ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs) -> dict[str, Any]:
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


def _check_script(ctx: LoadContext, path: Path, script: Any) -> None:
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


def _http(ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs) -> dict[str, Any]:
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


def _subworkflow(
    ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs
) -> dict[str, Any]:
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


_ACTIONS: Final[dict[str, Callable[[LoadContext, Path, Path, Any, TaskRefs], dict[str, Any]]]] = {
    "python": _python,
    "shell": _shell,
    "http": _http,
    "workflow": _subworkflow,
}


# --------------------------------------------------------------------------- expressions


def _inputs(ctx: LoadContext, path: Path, raw: Any, refs: TaskRefs) -> dict[str, Any]:
    out = {}
    for key, value in _mapping(ctx, (*path, "inputs"), raw, "'inputs'").items():
        where: Path = (*path, "inputs", key)
        if not _IDENTIFIER.fullmatch(key):
            raise ctx.error(where, f"input name '{key}' is not a valid identifier", at_key=True)
        refs.templates(where, value)
        out[key] = input_spec(ctx, where, value)
    return out
