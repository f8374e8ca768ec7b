"""Tests for fitvstape.autodiff: gradients from a real tf.GradientTape.

Read top to bottom: the notebook case, then other functions checked against
their textbook derivatives, then several variables, then everything the
parser must refuse, then the ``--at NAME=VALUE`` bindings.

Tolerances used below, and why:

* TAPE_REL: the tape runs in float32 (like the notebook's ``tf.Variable(2.)``),
  whose machine epsilon is about 1.2e-7.  Each op rounds once, and the
  expressions here have a handful of ops, so 1e-5 relative leaves ~100x margin.
* FD_REL / FD_ABS: the central difference runs in float64 with
  h = 1e-6 * max(1, |x|).  Truncation error is |f'''| h²/6 ≈ 1e-13 and
  rounding error is about eps * |f| / h ≈ 2e-16 / 1e-6 ≈ 2e-10 for f of
  order one, so 1e-7 relative (plus 1e-9 absolute near zero) is comfortable.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fitvstape.autodiff import (
    MAX_EXPRESSION_LENGTH,
    ExpressionError,
    GradientResult,
    gradient,
    parse_bindings,
    parse_expression,
    variables,
)

TAPE_REL = 1e-5
TAPE_ABS = 1e-6
FD_REL = 1e-7
FD_ABS = 1e-9

PWNED = Path("/tmp/pwned_fitvstape")


# --------------------------------------------------------------------------
# The notebook demo
# --------------------------------------------------------------------------


def test_notebook_case_gradient_of_2w_squared_plus_5_at_2_is_8() -> None:
    result = gradient("2*w**2 + 5", {"w": 2.0})

    # f(2) = 2·4 + 5 = 13 and f'(w) = 4w = 8.  Every intermediate (2, 4, 8,
    # 13) is exactly representable in float32, so the tape is exact too.
    assert result.value == 13.0
    assert result.gradients == {"w": 8.0}

    # f is quadratic, so f''' = 0 and the central difference has no
    # truncation error; only float64 rounding remains: about
    # eps·|f|/h = 2.2e-16 · 13 / 1e-6 ≈ 3e-9.  1e-8 absolute covers it.
    assert result.finite_difference["w"] == pytest.approx(8.0, abs=1e-8)
    assert result.step == 1e-6
    assert result.expression == "2*w**2 + 5"
    assert result.at == {"w": 2.0}


def test_to_dict_is_json_ready() -> None:
    data = gradient("2*w**2 + 5", {"w": 2.0}).to_dict()

    assert data["expression"] == "2*w**2 + 5"
    assert data["at"] == {"w": 2.0}
    assert data["value"] == 13.0
    assert data["gradients"] == {"w": 8.0}
    assert data["finite_difference"]["w"] == pytest.approx(8.0, abs=1e-8)
    assert data["finite_difference_step"] == 1e-6
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN/Infinity


def test_to_dict_turns_non_finite_numbers_into_none() -> None:
    # log(-1) is NaN in both float32 and float64.
    data = gradient("log(w)", {"w": -1.0}).to_dict()

    assert data["value"] is None
    assert data["finite_difference"]["w"] is None
    json.dumps(data, allow_nan=False)


def test_result_is_frozen() -> None:
    result = gradient("w", {"w": 1.0})
    assert isinstance(result, GradientResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------
# Each function against its analytic derivative
# --------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# (expression, w, f(w), f'(w)) — textbook derivatives.
ANALYTIC_CASES = [
    ("sin(w)", 0.5, math.sin(0.5), math.cos(0.5)),
    ("cos(w)", 0.5, math.cos(0.5), -math.sin(0.5)),
    ("tan(w)", 0.3, math.tan(0.3), 1.0 / math.cos(0.3) ** 2),
    ("exp(w)", 1.5, math.exp(1.5), math.exp(1.5)),
    ("log(w)", 3.0, math.log(3.0), 1.0 / 3.0),
    ("sqrt(w)", 4.0, 2.0, 0.25),  # d/dw √w = 1/(2√w)
    ("tanh(w)", 0.7, math.tanh(0.7), 1.0 - math.tanh(0.7) ** 2),
    ("sigmoid(w)", 0.0, 0.5, 0.25),  # σ' = σ(1 - σ)
    ("sigmoid(w)", -1.0, _sigmoid(-1.0), _sigmoid(-1.0) * (1 - _sigmoid(-1.0))),
    ("abs(w)", -3.0, 3.0, -1.0),  # d|w|/dw = sign(w)
    ("1/w", 4.0, 0.25, -1.0 / 16.0),
    ("3 - w/2", 1.0, 2.5, -0.5),
    ("-w**3", 2.0, -8.0, -12.0),  # parsed as -(w**3)
    ("+w", 5.0, 5.0, 1.0),
    ("w**-2", 2.0, 0.25, -0.25),  # -2 w⁻³
    ("2**w", 3.0, 8.0, 8.0 * math.log(2.0)),  # d/dw aʷ = aʷ ln a
    ("w**w", 2.0, 4.0, 4.0 * (math.log(2.0) + 1.0)),  # wʷ (ln w + 1)
    ("exp(-w**2/2)", 1.0, math.exp(-0.5), -math.exp(-0.5)),
    ("sin(cos(w))", 0.4, math.sin(math.cos(0.4)), -math.cos(math.cos(0.4)) * math.sin(0.4)),
]


@pytest.mark.parametrize(("expression", "w", "value", "derivative"), ANALYTIC_CASES)
def test_tape_and_finite_difference_match_analytic_derivative(
    expression: str, w: float, value: float, derivative: float
) -> None:
    result = gradient(expression, {"w": w})

    assert result.value == pytest.approx(value, rel=TAPE_REL, abs=TAPE_ABS)
    assert result.gradients["w"] == pytest.approx(derivative, rel=TAPE_REL, abs=TAPE_ABS)
    assert result.finite_difference["w"] == pytest.approx(derivative, rel=FD_REL, abs=FD_ABS)


def test_constant_expression_has_a_value_and_no_gradients() -> None:
    result = gradient("2 + 3*4", {})
    assert result.value == 14.0
    assert result.gradients == {}
    assert result.finite_difference == {}


# --------------------------------------------------------------------------
# Several variables
# --------------------------------------------------------------------------


def test_partial_derivatives_of_several_variables() -> None:
    # f = w·x + sin(x):  ∂f/∂w = x,  ∂f/∂x = w + cos(x)
    result = gradient("w*x + sin(x)", {"x": 0.5, "w": 2.0})

    assert list(result.gradients) == ["w", "x"]  # order of first appearance
    assert result.value == pytest.approx(1.0 + math.sin(0.5), rel=TAPE_REL)
    assert result.gradients["w"] == pytest.approx(0.5, rel=TAPE_REL)
    assert result.gradients["x"] == pytest.approx(2.0 + math.cos(0.5), rel=TAPE_REL)
    for name, expected in {"w": 0.5, "x": 2.0 + math.cos(0.5)}.items():
        assert result.finite_difference[name] == pytest.approx(expected, rel=FD_REL)
    assert result.at == {"w": 2.0, "x": 0.5}


def test_variable_used_twice_accumulates_both_paths() -> None:
    # f = w·w + w  =>  f' = 2w + 1 = 7 at w = 3 (the tape sums both uses).
    result = gradient("w*w + w", {"w": 3.0})
    assert result.gradients == {"w": 7.0}


def test_variables_are_listed_in_order_of_first_appearance() -> None:
    tree = parse_expression("b + a*b + sin(c) - a")
    assert variables(tree) == ["b", "a", "c"]  # 'sin' is a function, not a variable


def test_variables_of_a_constant_expression_is_empty() -> None:
    assert variables(parse_expression("1 + 2")) == []


# --------------------------------------------------------------------------
# Refused expressions: never evaluated, always ExpressionError
# --------------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('touch /tmp/pwned_fitvstape')",
    "().__class__.__bases__[0].__subclasses__()",
    "w.__class__",
    "open('/etc/passwd')",
    "lambda: 1",
    "'a'",
    "b'a'",
    "w if w else 1",
    "w < 1",
    "[w]",
    "w[0]",
    "(w := 1)",
    "exec('1')",
    "eval('1')",
    "globals()",
    "print(w)",
    "sin(w, w)",
    "sin(x=w)",
    "sin()",
    "sin(*w)",
    "f'{w}'",
    "w and 1",
    "not w",
    "w % 2",
    "w // 2",
    "~w",
    "True",
    "1j",
    "1e400",  # parses to inf
    "[x for x in (1,)]",
    "sin + 1",  # a function name used as a variable
    "",
    "   ",
    "w +",
    "import os",
    "w = 1",
    "w\x00",  # a NUL byte
    "-" * 250 + "w",  # nested too deeply
    "(" * 300 + "w" + ")" * 300,  # CPython's own nesting limit
    "w+" * 999 + "w",  # 1999 characters: too long
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text[:40]))
def test_hostile_expression_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    message = str(info.value)
    assert "\n" not in message  # one short line
    assert len(message) < 300


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text[:40]))
def test_gradient_refuses_hostile_expression_before_evaluating(text: str) -> None:
    with pytest.raises(ExpressionError):
        gradient(text, {"w": 1.0})


def test_refused_shell_command_is_never_run() -> None:
    PWNED.unlink(missing_ok=True)
    with pytest.raises(ExpressionError, match="not allowed"):
        gradient("__import__('os').system('touch /tmp/pwned_fitvstape')", {})
    assert not PWNED.exists()


def test_parsing_never_evaluates_or_compiles_to_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ast.parse may run; eval, exec and compile-to-bytecode must not."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec must never be called")

    real_compile = builtins.compile

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        # ast.parse itself is compile(..., flags=PyCF_ONLY_AST): allow only that.
        import ast

        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compile to code must never be called")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)

    with pytest.raises(ExpressionError):
        parse_expression("eval('__import__(\"os\")')")
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os').system('touch /tmp/pwned_fitvstape')")
    # A good expression still parses under the same restrictions.
    assert variables(parse_expression("2*w**2 + 5")) == ["w"]


def test_error_messages_name_the_offending_piece() -> None:
    with pytest.raises(ExpressionError, match="calls to '__import__' are not allowed"):
        parse_expression('__import__("os")')
    with pytest.raises(ExpressionError, match="attribute access"):
        parse_expression("w.__class__")
    with pytest.raises(ExpressionError, match="'sin' used as a variable"):
        parse_expression("sin + 1")
    with pytest.raises(ExpressionError, match="column"):
        parse_expression("w + * 2")
    with pytest.raises(ExpressionError, match="too long"):
        parse_expression("w" * (MAX_EXPRESSION_LENGTH + 1))
    with pytest.raises(ExpressionError, match="empty expression"):
        parse_expression("")


def test_expression_at_the_length_limit_is_accepted() -> None:
    # 1000 characters exactly: w times a long (but finite) float literal.
    text = "w*1." + "0" * (MAX_EXPRESSION_LENGTH - 4)
    assert len(text) == MAX_EXPRESSION_LENGTH
    assert variables(parse_expression(text)) == ["w"]


def test_long_flat_sum_is_accepted_and_differentiated() -> None:
    # 150 terms nest 149 levels deep (+ is left-associative): under the limit.
    result = gradient("+".join(["w"] * 150), {"w": 1.0})
    assert result.value == 150.0
    assert result.gradients == {"w": 150.0}


def test_importing_and_parsing_does_not_import_tensorflow() -> None:
    # The CLI's --help and early refusals must stay fast: no TensorFlow.
    code = (
        "import sys\n"
        "from fitvstape.autodiff import ExpressionError, parse_expression, parse_bindings\n"
        "parse_expression('2*w**2 + 5'); parse_bindings(['w=2'])\n"
        "try:\n"
        "    parse_expression('w.__class__')\n"
        "except ExpressionError:\n"
        "    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    root = Path(__file__).resolve().parent.parent
    paths = [str(root), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


# --------------------------------------------------------------------------
# Bindings: every variable bound, every binding used
# --------------------------------------------------------------------------


def test_unbound_variable_is_named_with_a_hint() -> None:
    hint = r"unbound variable 'x' \(bind it with --at x=VALUE\)"
    with pytest.raises(ExpressionError, match=hint):
        gradient("w*x", {"w": 1.0})


def test_unused_binding_is_refused_as_a_likely_typo() -> None:
    with pytest.raises(ExpressionError, match="unused binding 'W'"):
        gradient("w", {"w": 1.0, "W": 2.0})


def test_value_that_overflows_float32_is_refused() -> None:
    with pytest.raises(ExpressionError, match="float32"):
        gradient("w", {"w": 1e39})


def test_parse_bindings_reads_name_equals_value() -> None:
    assert parse_bindings(["w=2", " x = -1.5e3 "]) == {"w": 2.0, "x": -1500.0}
    assert parse_bindings([]) == {}


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (["w"], "'w'"),  # no '='
        (["=2"], "'=2'"),  # no name
        (["w=abc"], "'w=abc'"),  # not a number
        (["w="], "'w='"),  # empty value
        (["w=nan"], "'w=nan'"),  # not finite
        (["w=inf"], "'w=inf'"),
        (["w=1e400"], "'w=1e400'"),  # overflows to inf
        (["2w=1"], "'2w=1'"),  # not an identifier
        (["if=1"], "'if=1'"),  # a keyword
        (["sin=1"], "'sin=1'"),  # collides with a function name
        (["w=1", "w=1"], "duplicate binding for 'w'"),
    ],
)
def test_malformed_bindings_are_refused_naming_the_item(items: list[str], fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_bindings(items)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------
# A property: the tape agrees with the power rule for any quadratic
# --------------------------------------------------------------------------

_coefficient = st.floats(min_value=-10, max_value=10, allow_nan=False).map(lambda x: round(x, 3))


@settings(max_examples=25, deadline=None)
@given(a=_coefficient, b=_coefficient, c=_coefficient, w=_coefficient)
def test_quadratic_gradient_matches_power_rule(a: float, b: float, c: float, w: float) -> None:
    # d/dw (a w² + b w + c) = 2 a w + b.  Terms reach |a w²| ≤ 1000, where
    # float32 rounding is ~1000 · 6e-8 per op, hence the 1e-3 absolute slack.
    result = gradient(f"({a})*w**2 + ({b})*w + ({c})", {"w": w})
    expected = 2 * a * w + b
    assert result.gradients["w"] == pytest.approx(expected, rel=TAPE_REL, abs=1e-3)
    assert result.finite_difference["w"] == pytest.approx(expected, rel=FD_REL, abs=1e-6)
