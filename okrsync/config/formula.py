"""Safe arithmetic over named inputs (`closed / total * 100`); parsed with ast, never eval()."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs}
ALLOWED = "numbers, input names, + - * / % **, parentheses and min() max() abs()"


class FormulaError(ValueError):
    """The formula is not plain arithmetic, names an unknown input, or cannot be computed."""


def parse(text: str) -> ast.Expression:
    """Parse and check `text`; FormulaError says what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a valid arithmetic expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if (
                not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS)
                or node.keywords
            ):
                raise FormulaError(f"only plain arithmetic is allowed ({ALLOWED})")
        elif (
            not isinstance(
                node,
                ast.Expression
                | ast.BinOp
                | ast.UnaryOp
                | ast.Name
                | ast.Load
                | ast.Constant
                | ast.operator
                | ast.unaryop,
            )
            or (isinstance(node, ast.BinOp) and type(node.op) not in _BINARY)
            or (isinstance(node, ast.UnaryOp) and type(node.op) not in _UNARY)
            or (isinstance(node, ast.Constant) and not _is_number(node.value))
        ):
            raise FormulaError(f"only plain arithmetic is allowed ({ALLOWED})")
    return tree


def names(tree: ast.Expression) -> set[str]:
    """Input names a parsed formula refers to (function names excluded)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(text: str, values: Mapping[str, float]) -> float:
    """Value of the formula for these input values; FormulaError on e.g. division by zero."""
    tree = parse(text)
    try:
        result = float(_eval(tree.body, values))
    except ZeroDivisionError:
        shown = ", ".join(f"{k} = {v:g}" for k, v in sorted(values.items()))
        raise FormulaError(f"division by zero ({shown})") from None
    except OverflowError:
        raise FormulaError("result too large") from None
    if not math.isfinite(result):
        raise FormulaError(f"result is {result}")
    return result


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _eval(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant) and _is_number(node.value):
        return float(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise FormulaError(f"unknown input '{node.id}'")
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    raise FormulaError(f"only plain arithmetic is allowed ({ALLOWED})")
