"""Safe arithmetic over named inputs (`closed / total * 100`); parsed with ast, never eval().

Bounded like every recursion in okrsync: a formula is at most MAX_LENGTH characters,
MAX_TERMS numbers and input names and MAX_DEPTH levels of nesting, checked at validate
time, so evaluating one never recurses deeper than that.
"""

from __future__ import annotations

import ast
import io
import math
import operator
import tokenize
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
# (fewest, most) arguments; None: no upper bound
_ARITY: dict[str, tuple[int, int | None]] = {"min": (2, None), "max": (2, None), "abs": (1, 1)}
ALLOWED = "numbers, input names, + - * / % **, parentheses and min() max() abs()"
MAX_LENGTH = 10_000
MAX_TERMS = 200
MAX_DEPTH = 200
_SIMPLER = "compute part of it at the source or in another KR"


class FormulaError(ValueError):
    """The formula is not plain arithmetic, names an unknown input, or cannot be computed."""


class _NotReal(ArithmeticError):
    """A step of the computation gave no real number (its message says which step)."""


def parse(text: str) -> ast.Expression:
    """Parse and check `text`; FormulaError says what is not allowed."""
    text = text.strip()
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"too long: {len(text):,} characters, at most {MAX_LENGTH:,} ({_SIMPLER})"
        )
    terms = _count_terms(text)  # before ast.parse, whose own limits vary by Python version
    if terms is not None and terms > MAX_TERMS:
        raise _too_many(terms)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a valid arithmetic expression: {exc.msg}") from None
    except ValueError as exc:  # e.g. a NUL character
        raise FormulaError(f"not a valid arithmetic expression: {exc}") from None
    except (RecursionError, MemoryError):  # Python's parser gives up on deep nesting
        raise FormulaError(
            f"too long or too deeply nested to parse: at most {MAX_TERMS} numbers and input "
            f"names and {MAX_DEPTH} levels of nesting ({_SIMPLER})"
        ) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if (
                not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS)
                or node.keywords
            ):
                raise FormulaError(f"only plain arithmetic is allowed ({ALLOWED})")
            _check_arity(node.func.id, len(node.args))
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
    _check_size(tree)
    return tree


def _check_arity(name: str, given: int) -> None:
    fewest, most = _ARITY[name]
    if most == fewest and given != fewest:
        raise FormulaError(f"{name}() takes exactly {_arguments(fewest)}, got {given}")
    if given < fewest:
        raise FormulaError(f"{name}() needs at least {_arguments(fewest)}, got {given}")


def _count_terms(text: str) -> int | None:
    """Numbers and names in `text` that are not function names, from its tokens (no
    recursion, whatever the length); None when it does not even tokenize."""
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.OP)
        ]
    except (tokenize.TokenError, SyntaxError, ValueError):
        return None
    called = {i for i, t in enumerate(tokens[1:]) if t.string == "("}
    return sum(
        t.type == tokenize.NUMBER or (t.type == tokenize.NAME and i not in called)
        for i, t in enumerate(tokens)
    )


def _too_many(terms: int) -> FormulaError:
    return FormulaError(
        f"too long: {terms:,} numbers and input names, at most {MAX_TERMS} ({_SIMPLER})"
    )


def _arguments(count: int) -> str:
    return f"{count} argument" + ("" if count == 1 else "s")


def _check_size(tree: ast.Expression) -> None:
    """At most MAX_TERMS numbers and names, at most MAX_DEPTH levels (walked without recursion)."""
    terms = 0
    depth = 0
    stack: list[tuple[ast.expr, int]] = [(tree.body, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        if isinstance(node, ast.Name | ast.Constant):
            terms += 1
        elif isinstance(node, ast.Call):  # the function's name is not a term
            stack.extend((arg, level + 1) for arg in node.args)
        else:
            stack.extend(
                (c, level + 1) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)
            )
    if terms > MAX_TERMS:
        raise _too_many(terms)
    if depth > MAX_DEPTH:
        raise FormulaError(f"nested too deeply: {depth:,} levels, at most {MAX_DEPTH} ({_SIMPLER})")


def names(tree: ast.Expression) -> set[str]:
    """Input names a parsed formula refers to (function names excluded)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(text: str, values: Mapping[str, float]) -> float:
    """Value of the formula for these input values.

    Every way it can fail to be one real number (division by zero, overflow, a complex
    power, a bad argument) is a FormulaError naming the input values, never another
    exception."""
    tree = parse(text)
    try:
        result = _eval(tree.body, values)
    except ZeroDivisionError:
        raise FormulaError(f"division by zero{_shown(values)}") from None
    except OverflowError:
        raise FormulaError(f"result too large{_shown(values)}") from None
    except _NotReal as exc:
        raise FormulaError(f"{exc}{_shown(values)}") from None
    except FormulaError:
        raise
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise FormulaError(f"cannot compute: {exc}{_shown(values)}") from None
    except (RecursionError, MemoryError):
        raise FormulaError(f"too deeply nested to compute (at most {MAX_DEPTH} levels)") from None
    if not math.isfinite(result):
        raise FormulaError(f"result is {result}{_shown(values)}")
    return result


def _shown(values: Mapping[str, float]) -> str:
    """` (a = 1, b = 2)`: the input values behind a failed computation."""
    if not values:
        return ""
    shown = (f"{k} = {v:g}" if _is_number(v) else f"{k} = {v!r}" for k, v in sorted(values.items()))
    return " (" + ", ".join(shown) + ")"


def _num(value: float) -> str:
    """A number as a formula would write it: `(-96)`, so `(-96) ** 0.5` reads right."""
    return f"({value:g})" if value < 0 else f"{value:g}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _real(result: object, what: str) -> float:
    """`result` as a float; a complex number (a negative base to a fractional power) is an error."""
    if isinstance(result, complex):
        raise _NotReal(f"{what} is not a real number")
    if not _is_number(result):
        raise _NotReal(f"{what} is not a number")
    return float(result)  # type: ignore[arg-type]


def _eval(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant) and _is_number(node.value):
        return float(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise FormulaError(f"unknown input '{node.id}'")
        return _real(values[node.id], f"input '{node.id}'")
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        result = _BINARY[type(node.op)](left, right)
        return _real(result, f"{_num(left)} {_SYMBOLS[type(node.op)]} {_num(right)}")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        _check_arity(name, len(node.args))
        return _FUNCTIONS[name](*(_eval(a, values) for a in node.args))
    raise FormulaError(f"only plain arithmetic is allowed ({ALLOWED})")


_SYMBOLS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.Mod: "%",
}
