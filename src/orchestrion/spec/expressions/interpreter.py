"""The interpreter that walks a checked expression's tree over a scope of plain values."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from orchestrion.spec.expressions.check import CONSTANT_NAMES
from orchestrion.spec.expressions.functions import FUNCTIONS
from orchestrion.spec.expressions.values import (
    SCALARS,
    EvalError,
    MissingValue,
    check_size,
    contains,
    is_number,
    kind_of,
    orderable,
    short,
)

__all__ = ["evaluate_node"]


def evaluate_node(node: ast.expr, scope: Mapping[str, Any]) -> Any:
    """The value of a checked expression's `node` over `scope`; raises `EvalError` (a `MissingValue`
    for an absent name or key)."""
    return _EVALUATORS[type(node)](node, scope)


def _eval_constant(node: ast.Constant, scope: Mapping[str, Any]) -> Any:
    return node.value


def _eval_name(node: ast.Name, scope: Mapping[str, Any]) -> Any:
    if node.id in CONSTANT_NAMES:
        return CONSTANT_NAMES[node.id]
    if node.id not in scope:
        raise MissingValue(f"unknown name {node.id!r}")
    return scope[node.id]


def _eval_attribute(node: ast.Attribute, scope: Mapping[str, Any]) -> Any:
    return _lookup(evaluate_node(node.value, scope), node.attr, node.value)


def _lookup(obj: Any, key: Any, owner: ast.expr) -> Any:
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except KeyError:
            raise MissingValue(f"{short(ast.unparse(owner), 40)} has no key {key!r}") from None
        except TypeError:
            raise EvalError(f"{key!r} cannot be a mapping key") from None
    raise EvalError(f"cannot read key {key!r} of {kind_of(obj)} {short(ast.unparse(owner), 40)}")


def _eval_subscript(node: ast.Subscript, scope: Mapping[str, Any]) -> Any:
    obj = evaluate_node(node.value, scope)
    if isinstance(node.slice, ast.Slice):
        return _slice(obj, node.slice, scope)
    key = evaluate_node(node.slice, scope)
    if isinstance(obj, Mapping):
        return _lookup(obj, key, node.value)
    if isinstance(obj, str | list | tuple):
        if not isinstance(key, int) or isinstance(key, bool):
            raise EvalError(f"a {kind_of(obj)} index must be an integer, got {kind_of(key)}")
        if not -len(obj) <= key < len(obj):
            raise MissingValue(
                f"index {key} is out of range for a {kind_of(obj)} of length {len(obj)}"
            )
        return obj[key]
    raise EvalError(f"cannot index {kind_of(obj)} {short(ast.unparse(node.value), 40)}")


def _slice(obj: Any, node: ast.Slice, scope: Mapping[str, Any]) -> Any:
    if not isinstance(obj, str | list | tuple):
        raise EvalError(f"cannot slice {kind_of(obj)}")
    bounds = []
    for part in (node.lower, node.upper, node.step):
        value = None if part is None else evaluate_node(part, scope)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise EvalError(f"slice bounds must be integers, got {kind_of(value)}")
        bounds.append(value)
    if bounds[2] == 0:
        raise EvalError("slice step cannot be zero")
    result = obj[slice(*bounds)]
    return list(result) if isinstance(result, tuple) else result


def _eval_compare(node: ast.Compare, scope: Mapping[str, Any]) -> bool:
    left = evaluate_node(node.left, scope)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = evaluate_node(comparator, scope)
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
        return contains(right, left) == isinstance(op, ast.In)
    if not orderable(left, right):
        raise EvalError(f"cannot compare {kind_of(left)} with {kind_of(right)}")
    return bool(_ORDERINGS[type(op)](left, right))


_ORDERINGS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _eval_boolop(node: ast.BoolOp, scope: Mapping[str, Any]) -> Any:
    is_and = isinstance(node.op, ast.And)
    value: Any = None
    for operand in node.values:
        value = evaluate_node(operand, scope)
        if bool(value) != is_and:
            return value
    return value


def _eval_unaryop(node: ast.UnaryOp, scope: Mapping[str, Any]) -> Any:
    value = evaluate_node(node.operand, scope)
    if isinstance(node.op, ast.Not):
        return not value
    if not is_number(value):
        raise EvalError(f"unary minus or plus needs a number, got {kind_of(value)}")
    return -value if isinstance(node.op, ast.USub) else value


def _eval_binop(node: ast.BinOp, scope: Mapping[str, Any]) -> Any:
    left = evaluate_node(node.left, scope)
    right = evaluate_node(node.right, scope)
    try:
        return _BINARY[type(node.op)](left, right)
    except ZeroDivisionError:
        raise EvalError("division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise EvalError(f"arithmetic failed: {exc}") from None


def _add(left: Any, right: Any) -> Any:
    if is_number(left) and is_number(right):
        return left + right
    if isinstance(left, str) and isinstance(right, str):
        check_size(len(left) + len(right))
        return left + right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        check_size(len(left) + len(right))
        return [*left, *right]
    raise EvalError(f"cannot add {kind_of(left)} and {kind_of(right)} (use str(x) to join text)")


def _multiply(left: Any, right: Any) -> Any:
    if is_number(left) and is_number(right):
        return left * right
    seq, times = (left, right) if isinstance(right, int) else (right, left)
    if (
        isinstance(seq, str | list | tuple)
        and isinstance(times, int)
        and not isinstance(times, bool)
    ):
        check_size(len(seq) * max(times, 0))
        return seq * times if isinstance(seq, str) else list(seq) * times
    raise EvalError(f"cannot multiply {kind_of(left)} and {kind_of(right)}")


def _arithmetic(name: str, func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if not (is_number(left) and is_number(right)):
            raise EvalError(f"cannot {name} {kind_of(left)} and {kind_of(right)}")
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
    return evaluate_node(node.body if evaluate_node(node.test, scope) else node.orelse, scope)


def _eval_sequence(node: ast.List | ast.Tuple, scope: Mapping[str, Any]) -> list[Any]:
    return [evaluate_node(element, scope) for element in node.elts]


def _eval_dict(node: ast.Dict, scope: Mapping[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key_node, value_node in zip(node.keys, node.values, strict=True):
        key = evaluate_node(key_node, scope) if key_node is not None else None
        if not isinstance(key, SCALARS):
            raise EvalError(f"mapping keys must be strings or numbers, got {kind_of(key)}")
        out[key] = evaluate_node(value_node, scope)
    return out


def _eval_call(node: ast.Call, scope: Mapping[str, Any]) -> Any:
    assert isinstance(node.func, ast.Name)  # the checker allows nothing else
    name = node.func.id
    if name == "default":
        try:
            value = evaluate_node(node.args[0], scope)
        except MissingValue:
            value = None
        return evaluate_node(node.args[1], scope) if value is None else value
    args = [evaluate_node(arg, scope) for arg in node.args]
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
