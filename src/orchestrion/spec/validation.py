"""Checks of a whole workflow that no single field can make: a cycle in its tasks, and
expressions that read what the task will not have.

`WorkflowSpec`'s validators call them; they take plain values and the action models, so
they import nothing of the model that calls them.
"""

from __future__ import annotations

from typing import Any

from orchestrion.spec.actions import (
    ContainerAction,
    HttpAction,
    PluginAction,
    PublishAction,
    ShellAction,
    SubWorkflowAction,
)

__all__ = ["ExpressionCheck", "find_cycle"]


def find_cycle(edges: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle in the dependency graph as a name list ending where it started, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    for root in edges:
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = grey
        while stack:
            node, i = stack[-1]
            deps = edges.get(node, ())
            if i < len(deps):
                stack[-1] = (node, i + 1)
                nxt = deps[i]
                if color.get(nxt) == grey:
                    start = path.index(nxt)
                    return [*path[start:], nxt]
                if color.get(nxt) == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return None


class ExpressionCheck:
    """Checks the expressions of one task (`where` names it in errors) against the
    workflow's declared `params`; every failure is a `ValueError`, as a model's `check`
    raises it."""

    def __init__(self, where: str, params: frozenset[str]) -> None:
        self.where = where
        self.params = params

    def fail(self, field: str, problem: str) -> ValueError:
        """The error for `field` of the checked task, as a `ValueError` that the model reports."""
        return ValueError(f"{self.where}: {field}: {problem}")

    def expression(self, text: str, field: str, readable: frozenset[str], *, item: bool) -> None:
        """Check one expression: it compiles, reads only known names and declared parameters, uses
        ``item`` only where `item` allows it, and reads only the results of `readable` tasks."""
        from orchestrion.errors import ExpressionError
        from orchestrion.spec.expressions import compile_expression

        try:
            expr = compile_expression(text)
        except ExpressionError as exc:
            raise self.fail(field, f"bad expression: {exc}") from None
        unknown = sorted(expr.names - {"params", "tasks", "item"})
        if unknown:
            raise self.fail(field, f"unknown name {unknown[0]!r} (use params, tasks or item)")
        if "item" in expr.names and not item:
            raise self.fail(field, "'item' exists only in the fields of a mapped task")
        params = sorted(expr.referenced_params - self.params)
        if params:
            raise self.fail(field, f"unknown parameter {params[0]!r}")
        tasks = sorted(expr.referenced_tasks - readable)
        if tasks:
            raise self.fail(
                field,
                f"reads tasks.{tasks[0]}, but the task does not depend on {tasks[0]!r}"
                " (add it to depends_on, or after= in Python)",
            )

    def cache_key(self, text: str) -> None:
        """Check a cache key expression: it compiles and reads only ``params`` (declared
        ones) and ``inputs`` (the task's own; reading one it lacks fails at run time, with
        the expression named)."""
        from orchestrion.errors import ExpressionError
        from orchestrion.spec.expressions import compile_expression

        field = "cache.key"
        try:
            expr = compile_expression(text)
        except ExpressionError as exc:
            raise self.fail(field, f"bad expression: {exc}") from None
        unknown = sorted(expr.names - {"params", "inputs"})
        if unknown:
            raise self.fail(field, f"unknown name {unknown[0]!r} (use params or inputs)")
        params = sorted(expr.referenced_params - self.params)
        if params:
            raise self.fail(field, f"unknown parameter {params[0]!r}")

    def templates(self, value: Any, field: str, readable: frozenset[str], *, item: bool) -> None:
        """Check every ``{{ }}`` template in the strings of `value`, a nested JSON value whose paths
        are named from `field`."""
        from orchestrion.spec.expressions import TEMPLATE_RE

        stack = [(field, value)]
        while stack:
            where, node = stack.pop()
            if isinstance(node, str):
                for match in TEMPLATE_RE.finditer(node):
                    self.expression(match.group(1), where, readable, item=item)
                if "{{" in TEMPLATE_RE.sub("", node):
                    raise self.fail(where, "'{{' without a closing '}}'")
            elif isinstance(node, dict):
                stack.extend((f"{where}[{k!r}]", v) for k, v in reversed(node.items()))
            elif isinstance(node, list | tuple):
                stack.extend((f"{where}[{n}]", v) for n, v in reversed(list(enumerate(node))))

    def action(self, act: Any, field: str, readable: frozenset[str], *, item: bool) -> None:
        """The fields a worker renders: shell argv/env/cwd (never a script), http url,
        headers and body, sub-workflow params, publish destination, headers and body,
        container command and env, a plugin kind's options."""
        fields: dict[str, Any] = {}
        if isinstance(act, ShellAction):
            fields = {"argv": act.argv, "env": act.env, "cwd": act.cwd}
        elif isinstance(act, HttpAction):
            fields = {"url": act.url, "headers": act.headers, "json": act.json_body}
        elif isinstance(act, SubWorkflowAction):
            fields = {"params": act.params}
        elif isinstance(act, PluginAction):  # every field: the loaders refuse templates
            fields = {"options": act.options}  # in the fields the kind does not render
        elif isinstance(act, PublishAction):
            fields = {
                "destination": act.destination,
                "headers": act.headers,
                "body": act.body,
            }
        elif isinstance(act, ContainerAction):
            fields = {"command": act.command, "env": act.env}
        for name, value in fields.items():
            self.templates(value, f"{field}.{name}", readable, item=item)
