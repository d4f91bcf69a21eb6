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

Templates are strings holding ``{{ expression }}``: see `render`.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final
from urllib.parse import quote

from orchestrion.errors import ExpressionError

__all__ = [
    "FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "MAX_SIZE", "TEMPLATE_RE", "Expression",
    "compile_expression", "is_template", "render", "render_url", "template_references",
    "to_text", "whole_template",
]  # fmt: skip

#: Longest expression text, in characters.
MAX_LENGTH: Final = 2_000
#: Most AST nodes (operators and contexts excluded) in one expression.
MAX_NODES: Final = 500
#: Deepest AST nesting; also bounds the interpreter's recursion.
MAX_DEPTH: Final = 100
#: Longest string (characters) or list (elements) an expression may build.
MAX_SIZE: Final = 1_000_000

#: One ``{{ expression }}`` inside a string. Non-greedy: the expression ends at the first ``}}``.
TEMPLATE_RE: Final = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

_CONSTANT_NAMES: Final[Mapping[str, Any]] = {"true": True, "false": False, "null": None}
_SCALARS: Final = (str, int, float, bool, type(None))

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


class _EvalError(Exception):
    """A reason evaluation failed; `Expression.evaluate` wraps it into ExpressionError."""


class _Missing(_EvalError):
    """A key, index or name is absent: the one failure `default(x, fallback)` absorbs."""


# --------------------------------------------------------------------------- Expression


@dataclass(frozen=True, slots=True)
class Expression:
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
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The value of the expression over `scope`.

        Raises:
            ExpressionError: naming the expression and the reason (missing key, wrong
                types, division by zero, size cap...); never a raw KeyError or TypeError.
        """
        try:
            return _eval(self._tree, scope)
        except _EvalError as exc:
            raise ExpressionError(f"expression {_short(self.text)!r} failed: {exc}") from None
        except Exception as exc:  # a scope value's own __eq__ failed, or recursion ran out
            raise ExpressionError(
                f"expression {_short(self.text)!r} failed: {type(exc).__name__}: {exc}"
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
    checker = _Checker(stripped)
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
        raise ExpressionError(f"syntax error at {where} in {_short(text)!r}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse {_short(text)!r}: {exc}") from None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- checking


class _Checker:
    """The compile-time whitelist: one iterative pass, so deep trees cannot overflow it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.names: set[str] = set()
        self.tasks: set[str] = set()
        self.params: set[str] = set()
        self._task_roots: set[int] = set()  # ids of `tasks` Name nodes followed by a key
        self._callees: set[int] = set()  # ids of function-name Name nodes: not scope names

    def check(self, tree: ast.Expression) -> None:
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
        column = getattr(node, "col_offset", 0) + 1
        return ExpressionError(f"{problem} in {_short(self.text)!r} at column {column}")

    def check_node(self, node: ast.AST) -> None:
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
        if not isinstance(node.value, _SCALARS):
            raise self.fail(node, f"{type(node.value).__name__} literals are not allowed")

    def name(self, node: ast.Name) -> None:
        if node.id.startswith("_"):
            raise self.fail(node, f"name {node.id!r} is not allowed")
        if node.id in _CONSTANT_NAMES or id(node) in self._callees:
            return
        if node.id == "tasks" and id(node) not in self._task_roots:
            raise self.fail(node, "'tasks' must be followed by a task name, as in tasks.extract")
        self.names.add(node.id)

    def attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            raise self.fail(node, f"attribute {node.attr!r} is not allowed")
        self._note_reference(node.value, node.attr)

    def subscript(self, node: ast.Subscript) -> None:
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
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not _is_none(right):
                raise self.fail(node, "'is' and 'is not' only compare with None")

    def dict_(self, node: ast.Dict) -> None:
        if any(key is None for key in node.keys):
            raise self.fail(node, "'**' unpacking is not allowed")

    def call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            fragment = ast.unparse(node.func)
            raise self.fail(
                node,
                f"method call '{_short(fragment, 40)}()' is not allowed (write f(x), not x.f())",
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


_CHECKS: Final[Mapping[type[ast.AST], Callable[[_Checker, Any], None]]] = {
    ast.Constant: _Checker.constant,
    ast.Name: _Checker.name,
    ast.Attribute: _Checker.attribute,
    ast.Subscript: _Checker.subscript,
    ast.Compare: _Checker.compare,
    ast.Dict: _Checker.dict_,
    ast.Call: _Checker.call,
}


# --------------------------------------------------------------------------- evaluation


def _eval(node: ast.expr, scope: Mapping[str, Any]) -> Any:
    return _EVALUATORS[type(node)](node, scope)


def _eval_constant(node: ast.Constant, scope: Mapping[str, Any]) -> Any:
    return node.value


def _eval_name(node: ast.Name, scope: Mapping[str, Any]) -> Any:
    if node.id in _CONSTANT_NAMES:
        return _CONSTANT_NAMES[node.id]
    if node.id not in scope:
        raise _Missing(f"unknown name {node.id!r}")
    return scope[node.id]


def _eval_attribute(node: ast.Attribute, scope: Mapping[str, Any]) -> Any:
    return _lookup(_eval(node.value, scope), node.attr, node.value)


def _lookup(obj: Any, key: Any, owner: ast.expr) -> Any:
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except KeyError:
            raise _Missing(f"{_short(ast.unparse(owner), 40)} has no key {key!r}") from None
        except TypeError:
            raise _EvalError(f"{key!r} cannot be a mapping key") from None
    raise _EvalError(f"cannot read key {key!r} of {_kind(obj)} {_short(ast.unparse(owner), 40)}")


def _eval_subscript(node: ast.Subscript, scope: Mapping[str, Any]) -> Any:
    obj = _eval(node.value, scope)
    if isinstance(node.slice, ast.Slice):
        return _slice(obj, node.slice, scope)
    key = _eval(node.slice, scope)
    if isinstance(obj, Mapping):
        return _lookup(obj, key, node.value)
    if isinstance(obj, str | list | tuple):
        if not isinstance(key, int) or isinstance(key, bool):
            raise _EvalError(f"a {_kind(obj)} index must be an integer, got {_kind(key)}")
        if not -len(obj) <= key < len(obj):
            raise _Missing(f"index {key} is out of range for a {_kind(obj)} of length {len(obj)}")
        return obj[key]
    raise _EvalError(f"cannot index {_kind(obj)} {_short(ast.unparse(node.value), 40)}")


def _slice(obj: Any, node: ast.Slice, scope: Mapping[str, Any]) -> Any:
    if not isinstance(obj, str | list | tuple):
        raise _EvalError(f"cannot slice {_kind(obj)}")
    bounds = []
    for part in (node.lower, node.upper, node.step):
        value = None if part is None else _eval(part, scope)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _EvalError(f"slice bounds must be integers, got {_kind(value)}")
        bounds.append(value)
    if bounds[2] == 0:
        raise _EvalError("slice step cannot be zero")
    result = obj[slice(*bounds)]
    return list(result) if isinstance(result, tuple) else result


def _eval_compare(node: ast.Compare, scope: Mapping[str, Any]) -> bool:
    left = _eval(node.left, scope)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _eval(comparator, scope)
        if not _compare(op, left, right):
            return False
        left = right
    return True


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, ast.Eq):
        return bool(left == right)
    if isinstance(op, ast.NotEq):
        return bool(left != right)
    if isinstance(op, ast.Is):
        return left is None
    if isinstance(op, ast.IsNot):
        return left is not None
    if isinstance(op, ast.In | ast.NotIn):
        return _contains(right, left) == isinstance(op, ast.In)
    if not _orderable(left, right):
        raise _EvalError(f"cannot compare {_kind(left)} with {_kind(right)}")
    return bool(_ORDERINGS[type(op)](left, right))


_ORDERINGS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _orderable(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return True
    return (isinstance(left, str) and isinstance(right, str)) or (
        isinstance(left, list | tuple) and isinstance(right, list | tuple)
    )


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise _EvalError(f"'in <string>' needs a string on the left, got {_kind(item)}")
        return item in container
    if isinstance(container, Mapping | list | tuple):
        try:
            return item in container
        except TypeError:
            return False  # an unhashable key cannot be in a mapping
    raise _EvalError(f"'in' needs a string, list or mapping on the right, got {_kind(container)}")


def _eval_boolop(node: ast.BoolOp, scope: Mapping[str, Any]) -> Any:
    is_and = isinstance(node.op, ast.And)
    value: Any = None
    for operand in node.values:
        value = _eval(operand, scope)
        if bool(value) != is_and:
            return value
    return value


def _eval_unaryop(node: ast.UnaryOp, scope: Mapping[str, Any]) -> Any:
    value = _eval(node.operand, scope)
    if isinstance(node.op, ast.Not):
        return not value
    if not _is_number(value):
        raise _EvalError(f"unary minus or plus needs a number, got {_kind(value)}")
    return -value if isinstance(node.op, ast.USub) else value


def _eval_binop(node: ast.BinOp, scope: Mapping[str, Any]) -> Any:
    left = _eval(node.left, scope)
    right = _eval(node.right, scope)
    try:
        return _BINARY[type(node.op)](left, right)
    except ZeroDivisionError:
        raise _EvalError("division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise _EvalError(f"arithmetic failed: {exc}") from None


def _add(left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return left + right
    if isinstance(left, str) and isinstance(right, str):
        _check_size(len(left) + len(right))
        return left + right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        _check_size(len(left) + len(right))
        return [*left, *right]
    raise _EvalError(f"cannot add {_kind(left)} and {_kind(right)} (use str(x) to join text)")


def _multiply(left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return left * right
    seq, times = (left, right) if isinstance(right, int) else (right, left)
    if (
        isinstance(seq, str | list | tuple)
        and isinstance(times, int)
        and not isinstance(times, bool)
    ):
        _check_size(len(seq) * max(times, 0))
        return seq * times if isinstance(seq, str) else list(seq) * times
    raise _EvalError(f"cannot multiply {_kind(left)} and {_kind(right)}")


def _arithmetic(name: str, func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if not (_is_number(left) and _is_number(right)):
            raise _EvalError(f"cannot {name} {_kind(left)} and {_kind(right)}")
        return func(left, right)

    return apply


_BINARY: Final[Mapping[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: _add,
    ast.Mult: _multiply,
    ast.Sub: _arithmetic("subtract", operator.sub),
    ast.Div: _arithmetic("divide", operator.truediv),
    ast.FloorDiv: _arithmetic("divide", operator.floordiv),
    ast.Mod: _arithmetic("take the remainder of", operator.mod),
}


def _eval_ifexp(node: ast.IfExp, scope: Mapping[str, Any]) -> Any:
    return _eval(node.body if _eval(node.test, scope) else node.orelse, scope)


def _eval_sequence(node: ast.List | ast.Tuple, scope: Mapping[str, Any]) -> list[Any]:
    return [_eval(element, scope) for element in node.elts]


def _eval_dict(node: ast.Dict, scope: Mapping[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key_node, value_node in zip(node.keys, node.values, strict=True):
        key = _eval(key_node, scope) if key_node is not None else None
        if not isinstance(key, _SCALARS):
            raise _EvalError(f"mapping keys must be strings or numbers, got {_kind(key)}")
        out[key] = _eval(value_node, scope)
    return out


def _eval_call(node: ast.Call, scope: Mapping[str, Any]) -> Any:
    assert isinstance(node.func, ast.Name)  # the checker allows nothing else
    name = node.func.id
    if name == "default":
        try:
            value = _eval(node.args[0], scope)
        except _Missing:
            value = None
        return _eval(node.args[1], scope) if value is None else value
    args = [_eval(arg, scope) for arg in node.args]
    return FUNCTIONS[name][2](*args)


_EVALUATORS: Final[Mapping[type[ast.AST], Callable[[Any, Mapping[str, Any]], Any]]] = {
    ast.Constant: _eval_constant,
    ast.Name: _eval_name,
    ast.Attribute: _eval_attribute,
    ast.Subscript: _eval_subscript,
    ast.Compare: _eval_compare,
    ast.BoolOp: _eval_boolop,
    ast.UnaryOp: _eval_unaryop,
    ast.BinOp: _eval_binop,
    ast.IfExp: _eval_ifexp,
    ast.List: _eval_sequence,
    ast.Tuple: _eval_sequence,
    ast.Dict: _eval_dict,
    ast.Call: _eval_call,
}


# --------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for types, name in _KIND_NAMES:
        if isinstance(value, types):
            return name
    return type(value).__name__


_KIND_NAMES: Final = (
    (str, "string"), (int, "integer"), (float, "number"), (list | tuple, "list"),
    (Mapping, "mapping"),
)  # fmt: skip


def _check_size(size: int) -> None:
    if size > MAX_SIZE:
        raise _EvalError(f"result is too large ({size:,} items; the limit is {MAX_SIZE:,})")


def _check_text_size(value: Any) -> None:
    """Bound the JSON text of `value` before building it: the C encoder builds it whole."""
    budget = MAX_SIZE
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            budget -= len(item) + 2
        elif isinstance(item, Mapping):
            budget -= len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            budget -= len(item) + 2
            stack.extend(item)
        else:
            budget -= 24
        if budget < 0:
            raise _EvalError(f"text would be longer than the {MAX_SIZE:,}-character limit")


def to_text(value: Any) -> str:
    """The text a template puts in place of a value: what a YAML author expects to see.

    Strings stay as they are, booleans become ``true``/``false``, null becomes ``null``,
    lists and mappings become compact JSON; numbers use Python's usual spelling.

    Raises:
        ExpressionError: when the text would exceed `MAX_SIZE` characters.
    """
    try:
        return _text(value)
    except _EvalError as exc:
        raise ExpressionError(str(exc)) from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping | list | tuple):
        _check_text_size(value)
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError) as exc:
            raise _EvalError(f"cannot convert {_kind(value)} to text: {exc}") from None
    try:
        return str(value)
    except ValueError as exc:  # ints beyond Python's digit limit
        raise _EvalError(str(exc)) from None


# --------------------------------------------------------------------------- functions


def _need(name: str, value: Any, types: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, types):
        raise _EvalError(f"{name}() expects {what}, got {_kind(value)}")


def _fn_len(value: Any) -> int:
    _need("len", value, (str, list, tuple, Mapping), "a string, list or mapping")
    return len(value)


def _fn_int(value: Any) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _EvalError(f"int() cannot convert {value!r}")
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,100}\s*", value):
        return int(value)
    raise _EvalError(f"int() cannot convert {_kind(value)} {_short(repr(value), 40)}")


def _fn_float(value: Any) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str) and len(value) <= 100:
        try:
            return float(value)
        except ValueError:
            pass
    raise _EvalError(f"float() cannot convert {_kind(value)} {_short(repr(value), 40)}")


def _fn_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise _EvalError(f"bool() of a string needs 'true' or 'false', got {_short(value, 40)!r}")
    return bool(value)


def _string_method(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def apply(value: Any, *args: Any) -> Any:
        _need(name, value, str, "a string")
        for arg in args:
            if arg is not None:
                _need(name, arg, str, "string arguments")
        return method(value, *args)

    return apply


def _fn_extreme(name: str, pick: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        items = args[0] if len(args) == 1 else args
        _need(name, items, (list, tuple), "a list or several values")
        if not items:
            raise _EvalError(f"{name}() of an empty list")
        if not all(_orderable(items[0], other) for other in items):
            raise _EvalError(f"{name}() needs values of one comparable type")
        return pick(items)

    return apply


def _fn_sum(items: Any) -> Any:
    _need("sum", items, (list, tuple), "a list of numbers")
    if not all(_is_number(item) for item in items):
        raise _EvalError("sum() expects a list of numbers")
    return sum(items)


def _fn_abs(value: Any) -> Any:
    if not _is_number(value):
        raise _EvalError(f"abs() expects a number, got {_kind(value)}")
    return abs(value)


def _fn_round(value: Any, digits: Any = None) -> Any:
    if not _is_number(value):
        raise _EvalError(f"round() expects a number, got {_kind(value)}")
    if digits is None:
        return round(value)
    if not isinstance(digits, int) or isinstance(digits, bool) or abs(digits) > 100:
        raise _EvalError("round() digits must be an integer between -100 and 100")
    return round(value, digits)


def _mapping_view(name: str, view: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def apply(value: Any) -> list[Any]:
        _need(name, value, Mapping, "a mapping")
        return list(view(value))

    return apply


def _fn_join(items: Any, separator: Any = "") -> str:
    _need("join", items, (list, tuple), "a list")
    _need("join", separator, str, "a string separator")
    parts = [_text(item) for item in items]
    _check_size(sum(len(part) for part in parts) + len(separator) * max(len(parts) - 1, 0))
    return str(separator).join(parts)


def _fn_split(value: Any, separator: Any = None, limit: Any = -1) -> list[str]:
    _need("split", value, str, "a string")
    if separator is not None:
        _need("split", separator, str, "a string separator")
        if not separator:
            raise _EvalError("split() separator cannot be empty")
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise _EvalError("split() limit must be an integer")
    return list(value.split(separator, limit))


#: name -> (min args, max args, implementation). The only callables an expression can reach.
FUNCTIONS: Final[Mapping[str, tuple[int, int, Callable[..., Any]]]] = {
    "len": (1, 1, _fn_len),
    "str": (1, 1, _text),
    "int": (1, 1, _fn_int),
    "float": (1, 1, _fn_float),
    "bool": (1, 1, _fn_bool),
    "lower": (1, 1, _string_method("lower", str.lower)),
    "upper": (1, 1, _string_method("upper", str.upper)),
    "strip": (1, 2, _string_method("strip", str.strip)),
    "startswith": (2, 2, _string_method("startswith", str.startswith)),
    "endswith": (2, 2, _string_method("endswith", str.endswith)),
    "contains": (2, 2, _contains),
    "min": (1, 100, _fn_extreme("min", min)),
    "max": (1, 100, _fn_extreme("max", max)),
    "sum": (1, 1, _fn_sum),
    "abs": (1, 1, _fn_abs),
    "round": (1, 2, _fn_round),
    "keys": (1, 1, _mapping_view("keys", lambda m: m.keys())),
    "values": (1, 1, _mapping_view("values", lambda m: m.values())),
    "join": (1, 2, _fn_join),
    "split": (1, 3, _fn_split),
    "default": (2, 2, lambda value, fallback: value),  # special-cased in _eval_call
}


# --------------------------------------------------------------------------- templates


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
