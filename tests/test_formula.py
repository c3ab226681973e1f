"""Formulas are plain arithmetic over named inputs, checked with ast and never eval()'d."""

from __future__ import annotations

import ast

import pytest

from okrsync.config import formula


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("closed / total * 100", 25.0),
        ("(closed + 5) / total", 0.375),
        ("-closed + total ** 2 % 7", -10 + 1600 % 7),
        ("min(closed, 3) + max(total, 1) + abs(-1)", 3 + 40 + 1),
    ],
)
def test_evaluate_arithmetic(text: str, value: float) -> None:
    """Arithmetic with names, numbers, parentheses and min/max/abs computes as expected."""
    assert formula.evaluate(text, {"closed": 10, "total": 40}) == pytest.approx(value)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('x')",
        "closed.real",
        "closed if total else 1",
        "[closed]",
        "closed < total",
        "'a' * 3",
        "lambda: 1",
        "pow(closed, 2)",
        "min(closed, key=abs)",
    ],
)
def test_anything_but_arithmetic_is_rejected(text: str) -> None:
    """Calls, attributes, comparisons, strings and lambdas are rejected before any evaluation."""
    with pytest.raises(formula.FormulaError, match=r"plain arithmetic|not a valid"):
        formula.parse(text)


def test_names_lists_inputs_only() -> None:
    """Function names are not inputs."""
    assert formula.names(formula.parse("min(a, b) / c")) == {"a", "b", "c"}


def test_division_by_zero_names_the_inputs() -> None:
    """Dividing by a zero input is a clear error showing the input values."""
    with pytest.raises(formula.FormulaError, match=r"division by zero \(closed = 3, total = 0\)"):
        formula.evaluate("closed / total", {"closed": 3, "total": 0})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min()", "min() needs at least 2 arguments, got 0"),
        ("max(a)", "max() needs at least 2 arguments, got 1"),
        ("abs(a, b)", "abs() takes exactly 1 argument, got 2"),
        ("abs()", "abs() takes exactly 1 argument, got 0"),
        ("1 + min(max(a), b)", "max() needs at least 2 arguments, got 1"),
    ],
)
def test_functions_get_the_arguments_they_need(text: str, message: str) -> None:
    """min/max compare at least two values and abs takes exactly one, checked at parse time."""
    with pytest.raises(formula.FormulaError) as info:
        formula.parse(text)
    assert str(info.value) == message


def test_functions_with_enough_arguments_parse() -> None:
    """Two or more arguments for min/max and one for abs are fine."""
    assert formula.evaluate("min(a, b, 3) + max(a, b) + abs(a - b)", {"a": 1, "b": 5}) == 10


SIMPLER = "(compute part of it at the source or in another KR)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            " + ".join(["a"] * 1500),
            f"too long: 1,500 numbers and input names, at most 200 {SIMPLER}",
        ),
        ("-" * 300 + "a", f"nested too deeply: 301 levels, at most 200 {SIMPLER}"),
        (  # counted before ast.parse, which would run out of stack
            "+".join("a" * 4000),
            f"too long: 4,000 numbers and input names, at most 200 {SIMPLER}",
        ),
        ("a" * 10_001, f"too long: 10,001 characters, at most 10,000 {SIMPLER}"),
        (
            "(" * 300 + "a" + ")" * 300,
            "not a valid arithmetic expression: too many nested parentheses",
        ),
        ("a\0", "not a valid arithmetic expression: source code string cannot contain null bytes"),
    ],
)
def test_size_and_depth_are_bounded(text: str, message: str) -> None:
    """Too many terms, too deep a nesting or too long a text is a formula error, never a
    RecursionError or MemoryError from ast."""
    with pytest.raises(formula.FormulaError) as info:
        formula.parse(text)
    assert str(info.value) == message


def test_a_parser_out_of_stack_or_memory_is_a_formula_error() -> None:
    """Deep nesting that Python's own parser cannot take (its limits vary by version: a
    RecursionError or MemoryError) is reported like any other formula error."""
    with pytest.raises(formula.FormulaError, match=r"too deeply nested|nested too deeply"):
        formula.parse("-" * 9000 + "a")


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_ast_giving_up_is_a_formula_error(
    error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RecursionError and MemoryError from ast.parse become one clear formula error."""

    def parse(*args: object, **kwargs: object) -> object:
        raise error

    monkeypatch.setattr(ast, "parse", parse)
    with pytest.raises(formula.FormulaError) as info:
        formula.parse("a + b")
    assert str(info.value) == (
        "too long or too deeply nested to parse: at most 200 numbers and input names "
        f"and 200 levels of nesting {SIMPLER}"
    )


def test_the_largest_allowed_formula_evaluates() -> None:
    """200 terms, 200 levels deep, is still computed."""
    text = " + ".join(["a"] * 200)
    assert formula.evaluate(text, {"a": 1}) == 200
    assert formula.evaluate("-" * 199 + "a", {"a": 1}) == -1


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("(a - 100) ** 0.5", {"a": 4}, "(-96) ** 0.5 is not a real number (a = 4)"),
        ("max(a, (0 - a) ** 0.5)", {"a": 2}, "(-2) ** 0.5 is not a real number (a = 2)"),
        ("a ** 1000", {"a": 10}, "result too large (a = 10)"),
        ("a * 1e308 * 10", {"a": 1}, "result is inf (a = 1)"),
        ("a * 1e308 * 10 - a * 1e308 * 10", {"a": 1}, "result is nan (a = 1)"),
        ("0 ** a", {"a": -1}, "division by zero (a = -1)"),
        ("a % b", {"a": 1, "b": 0}, "division by zero (a = 1, b = 0)"),
    ],
)
def test_no_real_finite_result_is_a_formula_error(
    text: str, values: dict[str, float], message: str
) -> None:
    """A complex power, an overflow or a non-finite result fails with the input values shown."""
    with pytest.raises(formula.FormulaError) as info:
        formula.evaluate(text, values)
    assert str(info.value) == message


def test_a_non_number_input_is_a_formula_error() -> None:
    """An input value that is not a real number (a connector bug) is reported, not raised."""
    with pytest.raises(formula.FormulaError, match=r"^input 'a' is not a real number"):
        formula.evaluate("a + 1", {"a": 1j})  # type: ignore[dict-item]
    with pytest.raises(formula.FormulaError, match=r"^input 'a' is not a number"):
        formula.evaluate("a + 1", {"a": "7"})  # type: ignore[dict-item]


def test_a_type_error_while_computing_is_a_formula_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TypeError from a function (here a stand-in for a bug) becomes a FormulaError."""

    def broken(*args: float) -> float:
        raise TypeError("unsupported operand")

    monkeypatch.setitem(formula._FUNCTIONS, "min", broken)
    with pytest.raises(formula.FormulaError) as info:
        formula.evaluate("min(a, 2)", {"a": 1})
    assert str(info.value) == "cannot compute: unsupported operand (a = 1)"


def test_running_out_of_stack_while_computing_is_a_formula_error() -> None:
    """Evaluated with little stack left, a deep formula fails with a FormulaError."""
    import sys

    depth, frame = 0, sys._getframe()
    while frame.f_back is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)
    try:
        with pytest.raises(formula.FormulaError, match="too deeply nested to compute"):
            formula.evaluate("-" * 150 + "a", {"a": 1})
    finally:
        sys.setrecursionlimit(limit)
