"""Compiling an expression's text once into a checked, shareable `Expression`."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import msgspec

from orchestrion.errors import ExpressionError
from orchestrion.spec.expressions.check import Checker
from orchestrion.spec.expressions.interpreter import evaluate_node
from orchestrion.spec.expressions.values import EvalError, short
from orchestrion.types import NO_RICH_REPR, repr_hiding

__all__ = ["MAX_LENGTH", "Expression", "compile_expression"]

#: Longest expression text, in characters.
MAX_LENGTH: Final = 2_000


class Expression(msgspec.Struct, frozen=True):
    """A compiled, checked expression: cheap to evaluate many times, safe to share.

    Attributes:
        text: The source text (stripped).
        names: Top-level scope names it reads (``params``, ``tasks``, ``item``, ...).
        referenced_tasks: Task names read as ``tasks.X`` or ``tasks['X']``.
        referenced_params: Parameter names read as ``params.X`` or ``params['X']``.
    """

    text: str
    names: frozenset[str]
    referenced_tasks: frozenset[str]
    referenced_params: frozenset[str]
    _tree: ast.expr

    # Two expressions are equal by their text: everything else is derived from it, and
    # the tree stays out of equality, hashing and the repr.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return repr_hiding(self, "_tree")

    __rich_repr__ = NO_RICH_REPR

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The value of the expression over `scope`.

        Raises:
            ExpressionError: naming the expression and the reason (missing key, wrong
                types, division by zero, size cap...); never a raw KeyError or TypeError.
        """
        try:
            return evaluate_node(self._tree, scope)
        except EvalError as exc:
            raise ExpressionError(f"expression {short(self.text)!r} failed: {exc}") from None
        except Exception as exc:  # a scope value's own __eq__ failed, or recursion ran out
            raise ExpressionError(
                f"expression {short(self.text)!r} failed: {type(exc).__name__}: {exc}"
            ) from None


def compile_expression(text: str) -> Expression:
    """Parse and check `text` once; the result is cached because templates recur.

    Raises:
        ExpressionError: naming the problem and the offending fragment, e.g.
            ``attribute '__class__' is not allowed in '().__class__' at column 3``.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    return _compile_cached(text)


@lru_cache(maxsize=4096)
def _compile_cached(text: str) -> Expression:
    stripped = text.strip()
    if not stripped:
        raise ExpressionError("empty expression")
    if len(stripped) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(stripped):,} characters; the limit is {MAX_LENGTH:,})"
        )
    tree = _parse(stripped, offset=len(text) - len(text.lstrip()))
    checker = Checker(stripped)
    checker.check(tree)
    return Expression(
        text=stripped,
        names=frozenset(checker.names),
        referenced_tasks=frozenset(checker.tasks),
        referenced_params=frozenset(checker.params),
        _tree=tree.body,
    )


def _parse(text: str, *, offset: int) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f"column {(exc.offset or 1) + (offset if (exc.lineno or 1) == 1 else 0)}"
        if (exc.lineno or 1) > 1:
            where = f"line {exc.lineno}, {where}"
        raise ExpressionError(f"syntax error at {where} in {short(text)!r}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse {short(text)!r}: {exc}") from None
