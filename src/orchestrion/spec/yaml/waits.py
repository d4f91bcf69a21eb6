"""The YAML of steps that wait without a worker: ``approval:`` and ``wait_for:``.

``approval: {approvers: {role: editor}, timeout: 24h, on_timeout: reject, message: ...}``
(``approval: {}`` lets any operator decide), and ``wait_for: {signal: NAME}``,
``{event: TYPE, filter: EXPR}``, ``{file: PATH}``, ``{http: URL or {url, status}}`` or
``{sql: {connection, query, params, timeout}}``,
each with optional ``every``, ``timeout`` and ``on_timeout``. The models
(`orchestrion.spec.waits`) check the values.
"""

from __future__ import annotations

from typing import Any, Final

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions import compile_expression
from orchestrion.spec.yaml.errors import LoadContext, check_keys, expect_mapping
from orchestrion.spec.yaml.reader import Path
from orchestrion.spec.yaml.refs import TaskRefs

__all__ = ["APPROVAL_KEYS", "WAIT_KEYS", "approval_action", "wait_action"]

APPROVAL_KEYS: Final = ("approvers", "timeout", "on_timeout", "message")
WAIT_KEYS: Final = (
    "signal", "event", "filter", "file", "http", "sql", "every", "timeout", "on_timeout",
)  # fmt: skip
SQL_KEYS: Final = ("connection", "query", "params", "timeout")


def approval_action(
    ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs
) -> dict[str, Any]:
    """``approval:`` in the spec's shape (``approvers.role`` becomes ``role``)."""
    body = dict(expect_mapping(ctx, path, {} if raw is None else raw, "'approval'"))
    check_keys(ctx, path, body, APPROVAL_KEYS, "the approval step")
    approvers = body.pop("approvers", None)
    if approvers is not None:
        who = expect_mapping(ctx, (*path, "approvers"), approvers, "'approvers' ({role: ...})")
        check_keys(ctx, (*path, "approvers"), who, ("role",), "the approvers")
        if "role" in who:
            body["role"] = who["role"]
            ctx.pathmap[(*spec, "role")] = (*path, "approvers", "role")
    return {"kind": "approval", **body}


def wait_action(
    ctx: LoadContext, path: Path, spec: Path, raw: Any, refs: TaskRefs
) -> dict[str, Any]:
    """``wait_for:`` in the spec's shape (a bare ``http: URL`` becomes ``{url: URL}``)."""
    body = dict(expect_mapping(ctx, path, raw, "'wait_for' ({signal: NAME} or {event: TYPE}...)"))
    check_keys(ctx, path, body, WAIT_KEYS, "the wait_for step")
    if isinstance(body.get("http"), str):
        body["http"] = {"url": body["http"]}
    if "sql" in body:
        _check_sql(ctx, (*path, "sql"), body["sql"])
    if isinstance(body.get("filter"), str):
        try:
            names = compile_expression(body["filter"]).names
        except ExpressionError as exc:
            raise ctx.error((*path, "filter"), f"bad filter expression: {exc}") from None
        if names - {"event"}:
            raise ctx.error(
                (*path, "filter"),
                f"a filter reads only 'event' (its type and data), not {sorted(names)[0]!r}",
            )
    return {"kind": "wait", **body}


def _check_sql(ctx: LoadContext, path: Path, raw: Any) -> None:
    """A SQL sensor names its connection and a query given as text (never templated: its
    values come from ``params``); an unknown connection is reported when it is checked."""
    body = expect_mapping(ctx, path, raw, "'sql' ({connection: NAME, query: SELECT ...})")
    check_keys(ctx, path, body, SQL_KEYS, "the sql sensor")
    for key in ("connection", "query"):
        if key not in body:
            raise ctx.error(path, f"the sql sensor needs '{key}'")
        if not isinstance(body[key], str) or not body[key].strip():
            raise ctx.error((*path, key), f"the sql sensor's '{key}' must be a non-empty string")
