"""A small, sandboxed expression language for `when`, `map`, inputs and templates.

Workflow files come from people who should not be able to run code on a worker, so an
expression is never handed to ``eval``. Python's parser (``ast.parse(mode="eval")``) gives
the tree; a whitelist checks it once at compile time and a tiny interpreter walks it. What is
allowed: JSON-like literals (also ``true``/``false``/``null``), names from the scope,
``a.b`` and ``a['b']`` as *mapping key lookups only* (never ``getattr``), indexing and
slicing, comparisons, ``and``/``or``/``not``, ``+ - * / // %``, ``x if c else y`` and the
functions in `FUNCTIONS`. Text, AST size and depth, and the size of built strings and lists
are capped, so an expression cannot exhaust memory or the stack.

``tasks`` must always be followed by a literal task name (``tasks.extract`` or
``tasks['extract']``): that is what makes `Expression.referenced_tasks` complete, so a YAML
loader can turn every reference into a dependency.

The checker lives in `orchestrion.spec.expressions.check`, the interpreter in
`orchestrion.spec.expressions.interpreter`; templates (strings holding ``{{ expression }}``) in
`orchestrion.spec.expressions.templates`, whose names are re-exported here.
"""

from __future__ import annotations

from orchestrion.spec.expressions.check import MAX_DEPTH, MAX_NODES
from orchestrion.spec.expressions.compiler import MAX_LENGTH, Expression, compile_expression
from orchestrion.spec.expressions.functions import FUNCTIONS
from orchestrion.spec.expressions.templates import (
    TEMPLATE_RE,
    is_template,
    render,
    render_url,
    template_references,
    whole_template,
)
from orchestrion.spec.expressions.values import MAX_SIZE, to_text

__all__ = [
    "FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "MAX_SIZE", "TEMPLATE_RE", "Expression",
    "compile_expression", "is_template", "render", "render_url", "template_references",
    "to_text", "whole_template",
]  # fmt: skip
