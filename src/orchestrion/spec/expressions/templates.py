"""Templates: strings holding ``{{ expression }}``, filled from a scope (see `render`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions.compiler import compile_expression
from orchestrion.spec.expressions.values import MAX_SIZE, to_text

__all__ = [
    "TEMPLATE_RE", "is_template", "render", "render_url", "template_references", "whole_template",
]  # fmt: skip

#: One ``{{ expression }}`` inside a string. Non-greedy: the expression ends at the first ``}}``.
TEMPLATE_RE: Final = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def is_template(s: str) -> bool:
    """Whether `s` holds at least one ``{{ expression }}``."""
    return TEMPLATE_RE.search(s) is not None


def whole_template(s: str) -> str | None:
    """The expression text when `s` is exactly one template (whitespace around allowed)."""
    match = TEMPLATE_RE.search(s)
    if match is None or s[: match.start()].strip() or s[match.end() :].strip():
        return None
    return match.group(1).strip()


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Fill the templates in a JSON value: mappings and lists are walked, keys are not.

    A string that is exactly one template becomes the expression's value with its type
    kept (``"{{ params.n }}"`` gives ``3``, not ``"3"``); a string with templates inside
    other text gets each replaced by `to_text` of its value; anything else is unchanged.

    Raises:
        ExpressionError: when an expression is malformed or fails.
    """
    if isinstance(value, str):
        return _render_string(value, scope, encode=None)
    if isinstance(value, Mapping):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, scope) for item in value]
    return value


def render_url(url: str, scope: Mapping[str, Any]) -> str:
    """Fill a URL's templates, percent-encoding values embedded in it.

    ``https://api/{{ params.user }}`` with user ``a/b?c`` gives ``https://api/a%2Fb%3Fc``,
    so data cannot change the URL's path or query. A URL that is one whole template is
    the value's text, not encoded (it *is* the URL).
    """
    inner = whole_template(url)
    if inner is not None:
        return to_text(compile_expression(inner).evaluate(scope))
    rendered = _render_string(url, scope, encode=lambda text: quote(text, safe=""))
    assert isinstance(rendered, str)
    return rendered


def _render_string(text: str, scope: Mapping[str, Any], encode: Callable[[str], str] | None) -> Any:
    inner = whole_template(text)
    if inner is not None:
        return compile_expression(inner).evaluate(scope)
    parts: list[str] = []
    size = 0
    last = 0
    for match in TEMPLATE_RE.finditer(text):
        piece = to_text(compile_expression(match.group(1)).evaluate(scope))
        piece = encode(piece) if encode else piece
        parts += [text[last : match.start()], piece]
        size += match.start() - last + len(piece)
        if size > MAX_SIZE:
            raise ExpressionError(
                f"template result is longer than the {MAX_SIZE:,}-character limit"
            )
        last = match.end()
    parts.append(text[last:])
    return "".join(parts)


def template_references(value: Any) -> frozenset[str]:
    """Task names read by every template in a JSON value (walked like `render`).

    Raises:
        ExpressionError: when a template holds a malformed expression.
    """
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            for match in TEMPLATE_RE.finditer(item):
                found |= compile_expression(match.group(1)).referenced_tasks
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return frozenset(found)
