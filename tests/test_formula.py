"""Formulas are plain arithmetic over named inputs, checked with ast and never eval()'d."""

from __future__ import annotations

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
