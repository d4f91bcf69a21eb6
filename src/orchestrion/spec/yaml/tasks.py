"""The tasks of a YAML workflow, translated into the spec's shape: a list in file order,
one action each, and the dependencies that ``tasks.X`` references imply added to the
declared ones.
"""

from __future__ import annotations

import re
from typing import Any, Final

from orchestrion.spec.model import SECRET_NAME_PATTERN
from orchestrion.spec.yaml.actions import ACTION_KEYS, IDENTIFIER, action, kind_keys
from orchestrion.spec.yaml.errors import LoadContext, check_keys, expect_mapping, suggest
from orchestrion.spec.yaml.reader import Path, describe
from orchestrion.spec.yaml.refs import TaskRefs, bare_expression, input_spec
from orchestrion.spec.yaml.uses import USES_KEYS, use_template

__all__ = ["RETRY_KEYS", "TASK_KEYS", "tasks"]

TASK_KEYS: Final = (
    *ACTION_KEYS, "depends_on", "inputs", "when", "trigger_rule", "map", "retry",
    "timeout", "concurrency", "priority", "queue", "requires", "undo", "description", "secrets",
    "concurrency_key", "key_limit", "executor", "cache", "produces", "consumes", *USES_KEYS,
)  # fmt: skip
RETRY_KEYS: Final = ("retries", "backoff", "factor", "max_delay", "jitter", "retry_on")

_PASSTHROUGH: Final = (
    "trigger_rule", "timeout", "concurrency", "priority", "queue", "requires", "description",
    "concurrency_key", "key_limit", "executor", "cache", "produces", "consumes",
)  # fmt: skip


def tasks(ctx: LoadContext, top: dict[str, Any]) -> list[dict[str, Any]]:
    """The workflow's ``tasks`` mapping as the spec's list of tasks, in file order."""
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
    body = expect_mapping(ctx, path, {} if raw is None else raw, f"task '{name}'")
    origin = None
    if "with" in body and "uses" not in body:
        raise ctx.error((*path, "with"), f"'with' in task '{name}' needs 'uses'", at_key=True)
    if "uses" in body:
        body, origin = use_template(ctx, path, name, body, TASK_KEYS)
    kinds = kind_keys(body, TASK_KEYS)
    check_keys(ctx, path, body, (*TASK_KEYS, *kinds), f"task '{name}'")
    refs = TaskRefs(ctx, name, names, allow_item="map" in body)
    out: dict[str, Any] = {"name": name, **{k: body[k] for k in _PASSTHROUGH if k in body}}
    depends_on = _depends_on(ctx, path, body.get("depends_on"), names, name)
    where: Path = ("tasks", index, "action")
    out["action"] = action(ctx, path, body, where, refs, f"task '{name}'", kinds)
    out.update(_expressions(ctx, index, path, body, refs))
    if "retry" in body:
        out["retry"] = _retry(ctx, (*path, "retry"), body["retry"])
    if "secrets" in body:
        out["secrets"] = _secrets(ctx, (*path, "secrets"), body["secrets"])
    _lift_secrets(ctx, path, out, out["action"])
    undo_refs: list[tuple[str, Path]] = []
    if "undo" in body:
        out["undo"], undo_refs = _undo(ctx, index, name, body["undo"], names, "map" in body)
        _lift_secrets(ctx, (*path, "undo"), out, out["undo"])
    out["depends_on"] = _implied(ctx, name, depends_on, refs.found, undo_refs)
    if origin is not None:
        out["template"] = origin.model_dump()
    return out


def _expressions(
    ctx: LoadContext, index: int, path: Path, body: dict[str, Any], refs: TaskRefs
) -> dict[str, Any]:
    """The task's inputs, condition and map, whose ``tasks.X`` references `refs` collects."""
    out: dict[str, Any] = {}
    if "inputs" in body:
        out["inputs"] = _inputs(ctx, path, body["inputs"], refs)
    if "when" in body:  # evaluated before a mapped task expands: no `item` yet
        when = bare_expression(ctx, (*path, "when"), body["when"], refs, allow_item=False)
        out["when"] = {"expr": when}
    if "map" in body:
        ctx.pathmap[("tasks", index, "map_over")] = (*path, "map")
        out["map_over"] = bare_expression(ctx, (*path, "map"), body["map"], refs, allow_item=False)
    return out


def _implied(
    ctx: LoadContext,
    name: str,
    depends_on: list[str],
    found: list[tuple[str, Path]],
    undo_refs: list[tuple[str, Path]],
) -> list[str]:
    """`depends_on` with the tasks the task's expressions read (`found`) added. Its undo's
    reads add nothing: an undo may read only what the task itself depends on."""
    for dep, origin in found:
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
    return depends_on


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
    body = expect_mapping(ctx, path, raw, "'secrets' (environment variable -> secret name)")
    for env, name in body.items():
        if not IDENTIFIER.fullmatch(env):
            raise ctx.error((*path, env), f"invalid environment variable name '{env}'", at_key=True)
        if not isinstance(name, str) or not re.fullmatch(SECRET_NAME_PATTERN, name):
            raise ctx.error(
                (*path, env),
                "expected a secret name (letters, digits, '_', '.', '-'; no '/'),"
                f" got {describe(name)}",
            )
    return body


def _lift_secrets(ctx: LoadContext, path: Path, out: dict[str, Any], act: dict[str, Any]) -> None:
    """A container block's ``secrets`` become the task's: one place in the spec, opened
    and masked by the worker like any task's. The same variable may not name two."""
    if "secrets" not in act:
        return
    where: Path = (*path, act["kind"], "secrets")
    lifted = _secrets(ctx, where, act.pop("secrets"))
    merged = dict(out.get("secrets", {}))
    for env, name in lifted.items():
        if merged.get(env, name) != name:
            raise ctx.error(
                (*where, env), f"'{env}' names two secrets ('{merged[env]}' and '{name}')"
            )
        merged[env] = name
    out["secrets"] = merged


def _retry(ctx: LoadContext, path: Path, raw: Any) -> dict[str, Any]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return {"retries": raw}
    if not isinstance(raw, dict):
        raise ctx.error(path, f"expected a number of retries or a mapping, got {describe(raw)}")
    check_keys(ctx, path, raw, RETRY_KEYS, "retry")
    return raw


def _undo(
    ctx: LoadContext, index: int, name: str, raw: Any, names: list[str], mapped: bool
) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    path: Path = ("tasks", name, "undo")
    body = expect_mapping(ctx, path, raw, "'undo' (an action such as {shell: [...]})")
    kinds = kind_keys(body, ACTION_KEYS)
    check_keys(ctx, path, body, (*ACTION_KEYS, *kinds), f"the undo of task '{name}'")
    refs = TaskRefs(ctx, name, names, allow_item=mapped, allow_self=True)
    what = f"the undo of task '{name}'"
    undo = action(ctx, path, body, ("tasks", index, "undo"), refs, what, kinds)
    return undo, refs.found


def _inputs(ctx: LoadContext, path: Path, raw: Any, refs: TaskRefs) -> dict[str, Any]:
    out = {}
    for key, value in expect_mapping(ctx, (*path, "inputs"), raw, "'inputs'").items():
        where: Path = (*path, "inputs", key)
        if not IDENTIFIER.fullmatch(key):
            raise ctx.error(where, f"input name '{key}' is not a valid identifier", at_key=True)
        refs.templates(where, value)
        out[key] = input_spec(ctx, where, value)
    return out
