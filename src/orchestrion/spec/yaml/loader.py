"""Load the YAML authoring format (see ``docs/yaml.md``) into a `WorkflowSpec`.

Workflow files are data from people, so loading must never run code and must fail with a
message that points at the line.

Reading (`orchestrion.spec.yaml.reader`) turns the text into plain values with marks.
The authoring shape is then translated into the spec's shape (tasks as an ordered mapping,
one action key per task, implied dependencies from ``tasks.X`` references) and validated by
the spec model; its errors are mapped back to YAML paths and lines
(`orchestrion.spec.yaml.errors`).
"""

from __future__ import annotations

import os
import re
from typing import Any, Final

from orchestrion.errors import SpecError
from orchestrion.spec.model import NAME_PATTERN, WorkflowSpec
from orchestrion.spec.templates.search import LibrarySource
from orchestrion.spec.yaml.actions import ACTION_KEYS, HTTP_KEYS, SHELL_KEYS, WORKFLOW_KEYS
from orchestrion.spec.yaml.errors import LoadContext, check_keys, expect_mapping, validate_spec
from orchestrion.spec.yaml.params import check_param, check_run_params
from orchestrion.spec.yaml.reader import Path, decode_text, describe, read_document, too_large
from orchestrion.spec.yaml.refs import SCOPE_NAMES
from orchestrion.spec.yaml.tasks import RETRY_KEYS, TASK_KEYS, tasks

# The key lists of the sections that `orchestrion.spec.yaml.actions` and `.tasks` read are
# re-exported: the JSON Schema and its tests compare against every section's keys here.
__all__ = [
    "ACTION_KEYS", "HTTP_KEYS", "MAX_BYTES", "MAX_DEPTH", "PARAM_KEYS", "RETRY_KEYS",
    "SCHEDULE_KEYS", "SCOPE_NAMES", "SHELL_KEYS", "TASK_KEYS", "TOP_LEVEL_KEYS", "TRIGGER_KEYS",
    "WORKFLOW_KEYS",
    "load_yaml_data", "load_yaml_file", "load_yaml_text",
]  # fmt: skip

MAX_BYTES: Final = 1_048_576
MAX_DEPTH: Final = 50

TOP_LEVEL_KEYS: Final = (
    "name", "description", "params", "timeout", "max_active_runs", "sla",
    "schedule", "schedules", "triggers", "tags", "namespace", "tasks",
)  # fmt: skip
PARAM_KEYS: Final = ("type", "default", "required", "enum", "description")
SCHEDULE_KEYS: Final = (
    "name", "cron", "every", "timezone", "params", "start", "end", "catchup", "max_catchup",
    "overlap", "jitter", "require_fresh",
)  # fmt: skip
TRIGGER_KEYS: Final = ("event", "after", "broker", "assets", "when", "filter", "params")
BROKER_KEYS: Final = (
    "kind", "connection", "stream", "queue", "subject", "topic", "group", "key",
    "max_in_flight",
)  # fmt: skip
AFTER_KEYS: Final = ("workflow", "outcome")

# --------------------------------------------------------------------------- public API


def load_yaml_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    templates: LibrarySource | None = None,
) -> WorkflowSpec:
    """Load one workflow file; the file name becomes the `SpecError` source. Its ``uses:``
    are looked up in `templates` (`orchestrion.spec.loading` passes the search path).

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
    return load_yaml_text(
        data, source=source, max_bytes=max_bytes, max_depth=max_depth, templates=templates
    )


def load_yaml_text(
    text: str | bytes,
    *,
    source: str = "<string>",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    templates: LibrarySource | None = None,
) -> WorkflowSpec:
    """Load a workflow from YAML text (bytes must be UTF-8); ``uses:`` look in `templates`.

    Raises:
        SpecError: naming `source`, line:column, the YAML field path and the reason. A
            dependency cycle raises its subclass `CycleError`.
    """
    data, marks, key_marks = read_document(decode_text(text, source, max_bytes), source, max_depth)
    ctx = LoadContext(source, data, marks, key_marks, templates=templates)
    return validate_spec(ctx, _workflow(ctx))


def load_yaml_data(
    data: dict[str, Any], *, source: str, templates: LibrarySource | None = None
) -> WorkflowSpec:
    """A workflow from already-parsed YAML data (no line numbers in its errors)."""
    ctx = LoadContext(source, data, {(): (1, 1)}, {}, templates=templates)
    return validate_spec(ctx, _workflow(ctx))


# --------------------------------------------------------------------------- workflow


def _workflow(ctx: LoadContext) -> dict[str, Any]:
    top = ctx.data
    check_keys(ctx, (), top, TOP_LEVEL_KEYS, "the workflow")
    copied = ("name", "description", "timeout", "max_active_runs", "sla", "tags", "namespace")
    out: dict[str, Any] = {key: top[key] for key in copied if key in top}
    out["params"] = _params(ctx, top.get("params"))
    out["schedules"] = _schedules(ctx, top)
    out["triggers"] = _triggers(ctx, top.get("triggers"))
    out["tasks"] = tasks(ctx, top)
    return out


def _params(ctx: LoadContext, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    out: dict[str, Any] = {}
    for name, body in expect_mapping(ctx, ("params",), raw, "'params'").items():
        path: Path = ("params", name)
        if not re.fullmatch(NAME_PATTERN, name):
            raise ctx.error(path, f"invalid parameter name '{name}'", at_key=True)
        if isinstance(body, str):
            body = {"type": body}
        elif isinstance(body, dict):
            check_keys(ctx, path, body, PARAM_KEYS, f"parameter '{name}'")
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
    body = expect_mapping(
        ctx, path, raw, "a schedule (a cron string, or a mapping with cron or every)"
    )
    check_keys(ctx, path, body, SCHEDULE_KEYS, "the schedule")
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
        what = "a trigger (a mapping with event, after, broker or assets)"
        body = dict(expect_mapping(ctx, path, item, what))
        check_keys(ctx, path, body, TRIGGER_KEYS, "the trigger")
        if isinstance(body.get("after"), str):
            body["after"] = {"workflow": body["after"]}  # shorthand: after: other_workflow
        elif isinstance(body.get("after"), dict):
            check_keys(ctx, (*path, "after"), body["after"], AFTER_KEYS, "'after'")
        if isinstance(body.get("broker"), dict):
            check_keys(ctx, (*path, "broker"), body["broker"], BROKER_KEYS, "'broker'")
        check_run_params(ctx, path, body.get("params"), "the trigger")
        out.append(body)
    return out
