"""The action of a YAML task or undo (``python``, ``shell``, ``http``, ``workflow``,
``publish``, ``container``, or the key of a task kind such as ``sql``:
`orchestrion.spec.kinds`), translated into the spec's tagged `Action` shape.

Each kind has its shorthands (a shell argv as a bare list, a sub-workflow as a bare name)
and its templated fields, whose expressions are checked through the task's `TaskRefs`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from orchestrion.errors import ExpressionError, SpecError
from orchestrion.spec.actions import BROKER_KINDS
from orchestrion.spec.expressions import TEMPLATE_RE, compile_expression
from orchestrion.spec.kinds import installed_kinds, options_message
from orchestrion.spec.yaml.errors import LoadContext, check_keys, expect_mapping
from orchestrion.spec.yaml.reader import Path, describe
from orchestrion.spec.yaml.refs import SCOPE_NAMES, TaskRefs
from orchestrion.spec.yaml.waits import approval_action, wait_action

__all__ = [
    "ACTION_KEYS",
    "CONTAINER_KEYS",
    "HTTP_KEYS",
    "IDENTIFIER",
    "PUBLISH_KEYS",
    "SHELL_KEYS",
    "WORKFLOW_KEYS",
    "action",
    "kind_keys",
]

ACTION_KEYS: Final = (
    "python", "shell", "http", "workflow", "publish", "container", "approval", "wait_for",
)  # fmt: skip
SHELL_KEYS: Final = ("argv", "script", "env", "cwd", "json_output")
HTTP_KEYS: Final = ("method", "url", "headers", "json", "expect_status", "timeout")
WORKFLOW_KEYS: Final = ("name", "params")
CONTAINER_KEYS: Final = (
    "image", "command", "entrypoint", "env", "secrets", "resources", "result", "pull",
    "work_dir",
)  # fmt: skip
PUBLISH_KEYS: Final = (
    "kind",
    "connection",
    "stream",
    "queue",
    "exchange",
    "subject",
    "topic",
    "jetstream",
    "retain",
    "body",
    "headers",
    "timeout",
)

#: A name that becomes an identifier where a task runs: an environment variable, an input.
IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_REF: Final = re.compile(r"([A-Za-z_][\w.]*|[^:\s]+\.py):[A-Za-z_][\w.]*")


def kind_keys(body: dict[str, Any], known: tuple[str, ...]) -> tuple[str, ...]:
    """The installed task kinds' names (each a key a task may use besides `known`), when
    `body` has a key that is not `known`; else none. The kinds (built in and plugins' entry
    points) are read only then, and a misspelt kind is offered its closest name."""
    if all(key in known for key in body):
        return ()
    return tuple(installed_kinds().names())


def action(
    ctx: LoadContext,
    path: Path,
    body: dict[str, Any],
    spec: Path,
    refs: TaskRefs,
    what: str,
    kinds: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The one action key of `body` (at YAML `path`, spec path `spec`) in the spec's shape;
    `what` names the task or undo in errors; `kinds` are its keys that name task kinds."""
    present = [key for key in body if key in ACTION_KEYS or key in kinds]
    if not present:
        raise ctx.error(
            path,
            f"{what} needs an action: one of python, shell, http, workflow, publish,"
            " container, approval or wait_for, or a task kind"
            f" ({', '.join(installed_kinds().names())})",
        )
    if len(present) > 1:
        raise ctx.error(
            (*path, present[1]),
            f"{what} has more than one action ({', '.join(present)}); use exactly one",
            at_key=True,
        )
    kind = present[0]
    ctx.pathmap[spec] = ctx.pathmap[(*spec, kind)] = (*path, kind)
    if kind not in _ACTIONS:
        return _plugin(ctx, (*path, kind), spec, kind, body[kind], refs)
    return _ACTIONS[kind](ctx, (*path, kind), (*spec, kind), body[kind], refs)


def _plugin(
    ctx: LoadContext, path: Path, spec: Path, name: str, raw: Any, refs: TaskRefs
) -> dict[str, Any]:
    """A task kind's options, validated by the kind; templates only in its templated fields."""
    try:
        kind = installed_kinds().get(name)
    except SpecError as exc:
        raise ctx.error(path, str(exc)) from None
    body = expect_mapping(ctx, path, {} if raw is None else raw, f"'{name}' (its options)")
    for key, value in body.items():
        if key in kind.templated:
            refs.templates((*path, key), value)
        else:
            _refuse_templates(ctx, (*path, key), value, f"'{key}' of a {name} task", kind.templated)
    try:
        options = kind.validate(body)
    except ValueError as exc:  # pydantic's ValidationError, for a plugin's options
        where = path
        errors = getattr(exc, "errors", None)
        if callable(errors) and errors() and errors()[0]["loc"]:
            first = errors()[0]["loc"][0]
            where = (*path, first) if first in body else path
        raise ctx.error(where, f"bad {name} options: {options_message(exc)}") from None
    ctx.pathmap[(*spec, "options")] = path
    return {"kind": "plugin", "plugin": name, "options": kind.stored(options)}


def _refuse_templates(
    ctx: LoadContext, path: Path, value: Any, what: str, templated: tuple[str, ...]
) -> None:
    """A ``{{ }}`` over params, tasks or item in a field the kind does not render would stay
    as written (and a SQL query must never be built from values): say so at load time."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            for match in TEMPLATE_RE.finditer(node):
                try:
                    names = compile_expression(match.group(1)).names
                except ExpressionError:
                    continue
                if names & SCOPE_NAMES:
                    where = ", ".join(templated) or "none"
                    raise ctx.error(
                        path,
                        f"{what} is not templated, so '{match.group(0)}' would stay as"
                        f" written; pass values through a templated field ({where})",
                    )


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
    body = expect_mapping(
        ctx, path, raw, "'shell' (a list of arguments, or {argv: [...]} or {script: ...})"
    )
    check_keys(ctx, path, body, SHELL_KEYS, "the shell action")
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
        if not IDENTIFIER.fullmatch(str(name)):
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
    body = dict(expect_mapping(ctx, path, raw, "'http'"))
    check_keys(ctx, path, body, HTTP_KEYS, "the http action")
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
    body = expect_mapping(ctx, path, raw, "'workflow' (a name, or {name, params})")
    check_keys(ctx, path, body, WORKFLOW_KEYS, "the workflow action")
    ctx.pathmap[(*spec, "workflow")] = (*path, "name")
    out = {"kind": "workflow", **({"workflow": body["name"]} if "name" in body else {})}
    if "params" in body:
        refs.templates((*path, "params"), body["params"])
        out["params"] = body["params"]
    return out


def _publish(ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs) -> dict[str, Any]:
    body = dict(expect_mapping(ctx, path, raw, "'publish' ({kind, connection, ...})"))
    check_keys(ctx, path, body, PUBLISH_KEYS, "the publish action")
    kind = body.pop("kind", None)
    if kind not in BROKER_KINDS:
        where = (*path, "kind") if kind is not None else path
        raise ctx.error(
            where,
            f"a publish needs 'kind': one of {', '.join(BROKER_KINDS)}, got {describe(kind)}",
        )
    ctx.pathmap[(*spec, "broker")] = (*path, "kind")
    for key in ("stream", "queue", "subject", "topic", "headers", "body"):
        if key in body:
            refs.templates((*path, key), body[key])
    return {"kind": "publish", "broker": kind, **body}


def _container(
    ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs
) -> dict[str, Any]:
    """A container action. Its ``secrets`` are the task's (the caller lifts them into
    the task's ``secrets``): the spec keeps every secret reference in one place."""
    if isinstance(raw, str):
        return {"kind": "container", "image": raw}
    body = dict(expect_mapping(ctx, path, raw, "'container' (an image, or {image, command, ...})"))
    check_keys(ctx, path, body, CONTAINER_KEYS, "the container action")
    if "image" not in body:
        raise ctx.error(path, "a container action needs 'image' (like localhost/tools/etl:1)")
    if isinstance(body.get("command"), str):
        raise ctx.error(
            (*path, "command"),
            "'command' is a list of arguments (no shell parses it); for a command line use"
            " [sh, -c, '...']",
        )
    for key in ("command", "env"):
        if key in body:
            refs.templates((*path, key), body[key])
    for name in body["env"] if isinstance(body.get("env"), dict) else ():
        if not IDENTIFIER.fullmatch(str(name)):
            raise ctx.error(
                (*path, "env", name), f"bad environment variable name '{name}'", at_key=True
            )
    resources = body.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("memory"), int):
        body["resources"] = {**resources, "memory": str(resources["memory"])}
    return {"kind": "container", **body}


_ACTIONS: Final[dict[str, Callable[[LoadContext, Path, Path, Any, TaskRefs], dict[str, Any]]]] = {
    "python": _python,
    "shell": _shell,
    "http": _http,
    "workflow": _subworkflow,
    "publish": _publish,
    "container": _container,
    "approval": approval_action,
    "wait_for": wait_action,
}
