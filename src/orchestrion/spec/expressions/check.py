"""The compile-time check of an expression's syntax tree: a whitelist, caps and references.

It runs once per expression text and records the scope names, tasks and parameters read.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any, Final

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions.functions import FUNCTIONS
from orchestrion.spec.expressions.values import SCALARS, short

__all__ = ["CONSTANT_NAMES", "MAX_DEPTH", "MAX_NODES", "Checker"]

#: Most AST nodes (operators and contexts excluded) in one expression.
MAX_NODES: Final = 500
#: Deepest AST nesting; also bounds the interpreter's recursion.
MAX_DEPTH: Final = 100

CONSTANT_NAMES: Final[Mapping[str, Any]] = {"true": True, "false": False, "null": None}

_OPERATOR_SYMBOLS: Final[Mapping[type[ast.AST], str]] = {
    ast.Pow: "**", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitXor: "^", ast.BitAnd: "&", ast.Invert: "~",
}  # fmt: skip
_FORBIDDEN_NODES: Final[Mapping[type[ast.AST], str]] = {
    ast.Lambda: "lambda is not allowed",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp), "comprehensions are not allowed"),
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Set: "set literals are not allowed",
    **dict.fromkeys((ast.Await, ast.Yield, ast.YieldFrom), "await and yield are not allowed"),
}
_LEAF_OPERATORS: Final = (ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)
_ALLOWED_NODES: Final = (
    ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Compare,
    ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.IfExp, ast.List, ast.Tuple, ast.Dict, ast.Call,
    *_LEAF_OPERATORS,
)  # fmt: skip


class Checker:
    """The compile-time whitelist: one iterative pass, so deep trees cannot overflow it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.names: set[str] = set()
        self.tasks: set[str] = set()
        self.params: set[str] = set()
        self._task_roots: set[int] = set()  # ids of `tasks` Name nodes followed by a key
        self._callees: set[int] = set()  # ids of function-name Name nodes: not scope names

    def check(self, tree: ast.Expression) -> None:
        """Walk `tree` once, refusing the first node that is not allowed and any tree over
        `MAX_DEPTH` deep or `MAX_NODES` large."""
        stack: list[tuple[ast.AST, int]] = [(tree, 0)]
        count = 0
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.fail(node, f"expression is nested too deeply (max {MAX_DEPTH} levels)")
            if not isinstance(node, _LEAF_OPERATORS):
                count += 1
                if count > MAX_NODES:
                    raise self.fail(node, f"expression is too complex (max {MAX_NODES} nodes)")
            self.check_node(node)
            stack.extend((child, depth + 1) for child in reversed(list(ast.iter_child_nodes(node))))

    def fail(self, node: ast.AST, problem: str) -> ExpressionError:
        """An `ExpressionError` naming the expression and the node's column."""
        column = getattr(node, "col_offset", 0) + 1
        return ExpressionError(f"{problem} in {short(self.text)!r} at column {column}")

    def check_node(self, node: ast.AST) -> None:
        """Refuse a node that is not whitelisted, then run the check of its kind, if it has one."""
        kind = type(node)
        if kind in _OPERATOR_SYMBOLS:
            raise self.fail(node, f"operator '{_OPERATOR_SYMBOLS[kind]}' is not allowed")
        if kind in _FORBIDDEN_NODES:
            raise self.fail(node, _FORBIDDEN_NODES[kind])
        if not isinstance(node, _ALLOWED_NODES):
            raise self.fail(node, f"{kind.__name__} is not allowed")
        handler = _CHECKS.get(kind)
        if handler is not None:
            handler(self, node)

    def constant(self, node: ast.Constant) -> None:
        """Only JSON-like scalars: no bytes, complex or ellipsis literals."""
        if not isinstance(node.value, SCALARS):
            raise self.fail(node, f"{type(node.value).__name__} literals are not allowed")

    def name(self, node: ast.Name) -> None:
        """Record a scope name; underscore names are refused, and a bare ``tasks`` (not followed by
        a task name) too, as it would hide which results are read."""
        if node.id.startswith("_"):
            raise self.fail(node, f"name {node.id!r} is not allowed")
        if node.id in CONSTANT_NAMES or id(node) in self._callees:
            return
        if node.id == "tasks" and id(node) not in self._task_roots:
            raise self.fail(node, "'tasks' must be followed by a task name, as in tasks.extract")
        self.names.add(node.id)

    def attribute(self, node: ast.Attribute) -> None:
        """Record ``tasks.X`` and ``params.X``. Underscore attributes are refused outright, so
        nothing like ``__class__`` gets near the interpreter."""
        if node.attr.startswith("_"):
            raise self.fail(node, f"attribute {node.attr!r} is not allowed")
        self._note_reference(node.value, node.attr)

    def subscript(self, node: ast.Subscript) -> None:
        """Record ``tasks['X']`` and ``params['X']``: a literal key names a task or parameter just
        as ``.X`` does."""
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            self._note_reference(node.value, key.value)

    def _note_reference(self, value: ast.expr, key: str) -> None:
        if isinstance(value, ast.Name) and value.id == "tasks":
            self._task_roots.add(id(value))
            self.tasks.add(key)
        elif isinstance(value, ast.Name) and value.id == "params":
            self.params.add(key)

    def compare(self, node: ast.Compare) -> None:
        """``is`` and ``is not`` compare only with None: identity of values means nothing here."""
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not _is_none(right):
                raise self.fail(node, "'is' and 'is not' only compare with None")

    def dict_(self, node: ast.Dict) -> None:
        """Refuse ``**`` unpacking in a dict literal."""
        if any(key is None for key in node.keys):
            raise self.fail(node, "'**' unpacking is not allowed")

    def call(self, node: ast.Call) -> None:
        """Only calls of the whitelisted `FUNCTIONS` by name, with positional arguments in their
        allowed number."""
        if not isinstance(node.func, ast.Name):
            fragment = ast.unparse(node.func)
            raise self.fail(
                node,
                f"method call '{short(fragment, 40)}()' is not allowed (write f(x), not x.f())",
            )
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(node, f"function {name!r} is not allowed")
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        low, high, _ = FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            plural = "" if wanted == "1" else "s"
            raise self.fail(node, f"{name}() takes {wanted} argument{plural}, got {len(node.args)}")
        self._callees.add(id(node.func))


def _is_none(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None
    return isinstance(node, ast.Name) and node.id == "null"


_CHECKS: Final[Mapping[type[ast.AST], Callable[[Checker, Any], None]]] = {
    ast.Constant: Checker.constant,
    ast.Name: Checker.name,
    ast.Attribute: Checker.attribute,
    ast.Subscript: Checker.subscript,
    ast.Compare: Checker.compare,
    ast.Dict: Checker.dict_,
    ast.Call: Checker.call,
}
