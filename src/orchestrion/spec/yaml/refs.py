"""The expressions in a workflow file's tasks: checked, and the tasks they read collected."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions import (
    MAX_LENGTH,
    TEMPLATE_RE,
    Expression,
    compile_expression,
    whole_template,
)
from orchestrion.spec.yaml.errors import LoadContext, suggest
from orchestrion.spec.yaml.reader import Path, describe

__all__ = ["SCOPE_NAMES", "TaskRefs", "bare_expression", "input_spec", "template_strings"]

#: The names an expression in a workflow file may read.
SCOPE_NAMES: Final = frozenset({"params", "tasks", "item"})


class TaskRefs:
    """Checks a task's expressions and collects the tasks they read (its implied deps)."""

    def __init__(
        self,
        ctx: LoadContext,
        task: str,
        names: list[str],
        *,
        allow_item: bool,
        allow_self: bool = False,
    ) -> None:
        self.ctx, self.task, self.names = ctx, task, names
        self.allow_item, self.allow_self = allow_item, allow_self
        self.found: list[tuple[str, Path]] = []

    def expression(self, path: Path, text: str, *, allow_item: bool = True) -> Expression:
        """Compile the expression `text` at `path`, checking the names, parameters and tasks it
        reads; a task read becomes an implied dependency."""
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
            hint = suggest(missing[0], declared)
            raise self.ctx.error(path, f"unknown parameter '{missing[0]}'{hint}")
        for task in sorted(expr.referenced_tasks):
            self.reference(path, task)
        return expr

    def reference(self, path: Path, task: str) -> None:
        """Note that the expression at `path` reads task `task`'s result, which must exist and be
        another task (unless this is an undo)."""
        if task not in self.names:
            raise self.ctx.error(
                path, f"unknown task '{task}' in expression{suggest(task, self.names)}"
            )
        if task == self.task and not self.allow_self:
            raise self.ctx.error(path, f"task '{task}' cannot use its own result")
        self.found.append((task, path))

    def templates(self, path: Path, value: Any) -> None:
        """Check every ``{{ }}`` template in the strings of `value`, and an unclosed ``{{``."""
        for where, text in template_strings(path, value):
            for match in TEMPLATE_RE.finditer(text):
                self.expression(where, match.group(1))
            if "{{" in TEMPLATE_RE.sub("", text):
                raise self.ctx.error(
                    where, "'{{' without a closing '}}' (write {{ '{{' }} for a literal)"
                )


def template_strings(path: Path, value: Any) -> Iterator[tuple[Path, str]]:
    """Every string in the nested value `value`, with its path, in document order."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            stack.extend(((*where, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*where, i), v) for i, v in reversed(list(enumerate(item))))


def bare_expression(
    ctx: LoadContext, path: Path, raw: Any, refs: TaskRefs, *, allow_item: bool = True
) -> str:
    """The text of a field that holds one expression (``when``, ``map``), bare or as a
    single ``{{ }}``."""
    if not isinstance(raw, str):
        raise ctx.error(path, f"expected an expression string, got {describe(raw)}")
    inner = whole_template(raw)
    if inner is None and "{{" in raw:
        raise ctx.error(path, "write one expression, bare or as a single '{{ ... }}'")
    return refs.expression(path, raw if inner is None else inner, allow_item=allow_item).text


def input_spec(ctx: LoadContext, path: Path, value: Any) -> dict[str, Any]:
    """A whole template is an expression; text around templates is joined into one."""
    inner = whole_template(value) if isinstance(value, str) else None
    if inner is not None:
        return {"expr": compile_expression(inner).text}
    if not any(TEMPLATE_RE.search(text) for _, text in template_strings(path, value)):
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
