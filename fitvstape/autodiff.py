"""Differentiate a small arithmetic expression with a real ``tf.GradientTape``.

This is the notebook demo "the gradient of 2w² + 5 at w = 2 is 8.0" turned
into a function: the user types an expression and binds its variables, we
record the forward computation on a tape and ask TensorFlow for

    ∂f/∂xᵢ  evaluated at the bound point,

then cross-check every partial derivative with an independent central finite
difference computed in float64 by NumPy.

Safety model: the expression is user input, so it is parsed with
``ast.parse(text, mode="eval")`` and every node is checked against a small
WHITELIST before anything is evaluated.  Evaluation is done by two tiny
recursive interpreters (one mapping nodes onto TensorFlow ops, one onto NumPy
functions) that only know the whitelisted node types.  Nothing is ever passed
to ``eval``, ``exec`` or ``compile``, so there is no Python object graph to
escape into (``().__class__.__bases__``...): refused syntax is never run.

TensorFlow is imported lazily inside :func:`gradient` only; parsing and
validation are pure Python so ``--help`` and bad expressions stay fast.
"""

from __future__ import annotations

import ast
import keyword
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fitvstape.errors import InputError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "RELATIVE_STEP",
    "ExpressionError",
    "GradientResult",
    "gradient",
    "parse_bindings",
    "parse_expression",
    "variables",
]

#: Longest expression accepted (characters); longer input is refused before parsing.
MAX_EXPRESSION_LENGTH = 1000

#: Deepest node nesting accepted.  Both interpreters are recursive, so this
#: bounds their stack use well below Python's default recursion limit (1000).
#: Note that ``a + b + c`` nests to the left, so a flat sum of more than about
#: 200 terms is refused too; CPython itself stops at 200 nested parentheses.
MAX_DEPTH = 200

#: Relative finite-difference step: variable x uses h = RELATIVE_STEP * max(1, |x|).
RELATIVE_STEP = 1e-6

#: The only callables an expression may use, each taking exactly one argument.
FUNCTIONS: frozenset[str] = frozenset({"sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid", "abs"})

_FUNCTION_LIST = ", ".join(sorted(FUNCTIONS))

_BINARY_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}

# Friendly names for refused syntax, so the error says *what* was refused.
_REFUSED_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.Starred: "starred arguments",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


class ExpressionError(InputError):
    """A refused or invalid expression or binding.

    The message is one short line naming the offending piece.
    """


# --------------------------------------------------------------------------
# Parsing and validation (pure Python: no TensorFlow here)
# --------------------------------------------------------------------------


def _shorten(text: str, limit: int = 60) -> str:
    """Clip ``text`` so error messages stay one short line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str, limit: int = 60) -> str:
    # repr() escapes newlines and control characters, keeping messages on one line.
    return repr(_shorten(text, limit))


def parse_expression(text: str) -> ast.Expression:
    """Parse ``text`` into a validated :class:`ast.Expression`.

    Grammar accepted (everything else raises :class:`ExpressionError`)::

        expr := NUMBER | NAME | expr (+ | - | * | / | **) expr
              | (- | +) expr | FUNC "(" expr ")"
        FUNC := sin | cos | tan | exp | log | sqrt | tanh | sigmoid | abs

    NUMBER is a finite int or float literal (not bool, complex, str, bytes).
    NAME is a variable; it may not be one of the FUNC names.

    The returned tree is only ever walked by this module's interpreters; it
    is never compiled to code.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression {_quote(text, 30)}: too long "
            f"({len(text)} characters, at most {MAX_EXPRESSION_LENGTH})"
        )
    # Leading whitespace is an IndentationError in eval mode; users type
    # `--expr " 2*w"` by accident, so strip it (positions refer to the stripped text).
    source = text.strip()
    if not source:
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"expression {_quote(source)}: {exc.msg} {_position(source, exc)}") from None
    except (RecursionError, MemoryError):
        # CPython's own parser gives up on very deep nesting (e.g. 999 unary minuses).
        raise ExpressionError(f"expression {_quote(source)}: too deeply nested to parse") from None
    except ValueError as exc:  # e.g. a NUL byte, on Pythons that raise ValueError for it
        raise ExpressionError(f"expression {_quote(source)}: {exc}") from None
    _Validator(source).check(tree.body, depth=0)
    return tree


def _position(source: str, exc: SyntaxError) -> str:
    """Describe where a SyntaxError happened, e.g. ``at column 5``."""
    if not exc.offset or exc.offset < 1:
        # CPython reports offset 0 when the input ended too early (e.g. "w +").
        return "at end of input"
    if "\n" in source and exc.lineno:
        return f"at line {exc.lineno}, column {exc.offset}"
    return f"at column {exc.offset}"


class _Validator:
    """Walks a parsed tree and refuses every node outside the whitelist."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, reason: str) -> ExpressionError:
        return ExpressionError(f"expression {_quote(self.source)}: {reason}")

    def piece(self, node: ast.AST) -> str:
        """The source text of ``node``, quoted and clipped, for messages."""
        segment = ast.get_source_segment(self.source, node) or type(node).__name__
        return _quote(segment, 40)

    def check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep")

        if isinstance(node, ast.Constant):
            self.check_constant(node)
        elif isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                raise self.fail(f"assignment to {node.id!r} is not allowed")
            if node.id in FUNCTIONS:
                raise self.fail(f"function {node.id!r} used as a variable (call it: {node.id}(x))")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPERATORS:
                raise self.fail(f"operator in {self.piece(node)} is not allowed (only + - * / **)")
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.fail(f"operator in {self.piece(node)} is not allowed (only unary - and +)")
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.Call):
            self.check_call(node, depth)
        else:
            what = _REFUSED_NAMES.get(type(node), f"{type(node).__name__} nodes")
            raise self.fail(f"{what} ({self.piece(node)}) not allowed")

    def check_constant(self, node: ast.Constant) -> None:
        value = node.value
        # bool is a subclass of int, so it must be refused explicitly.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"constant {self.piece(node)} is not allowed (only int and float numbers)")
        try:
            as_float = float(value)
        except OverflowError:  # a huge int literal such as 10000...0 (400 digits)
            as_float = math.inf
        if not math.isfinite(as_float):
            # "1e400" parses to inf; refuse it rather than propagate a silent inf.
            raise self.fail(f"constant {self.piece(node)} is not a finite float")

    def check_call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail(
                f"calls to {self.piece(func)} are not allowed (allowed functions: {_FUNCTION_LIST})"
            )
        if func.id not in FUNCTIONS:
            raise self.fail(f"calls to {func.id!r} are not allowed (allowed functions: {_FUNCTION_LIST})")
        if node.keywords or len(node.args) != 1:
            raise self.fail(f"{func.id}() takes exactly one positional argument, got {self.piece(node)}")
        self.check(node.args[0], depth + 1)


def variables(tree: ast.Expression) -> list[str]:
    """The free variables of a parsed expression, in order of first appearance.

    Function names in call position (``sin`` in ``sin(w)``) are not variables.
    """
    call_targets = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in call_targets]
    # ast.walk is breadth-first, so sort by source position for "first appearance".
    names.sort(key=lambda node: (node.lineno, node.col_offset))
    return list(dict.fromkeys(node.id for node in names))


def _normalise_name(name: str) -> str:
    # Python's parser NFKC-normalises identifiers (so "ｗ" parses as "w"); do the
    # same to bindings, otherwise such a binding could never match its variable.
    return unicodedata.normalize("NFKC", name)


def _check_variable_name(name: str, item: str) -> None:
    if not name:
        raise ExpressionError(f"bad binding {item!r}: missing variable name before '='")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ExpressionError(f"bad binding {item!r}: {name!r} is not a valid variable name")
    if name in FUNCTIONS:
        raise ExpressionError(f"bad binding {item!r}: {name!r} is a function name and cannot be a variable")


def parse_bindings(items: Sequence[str]) -> dict[str, float]:
    """Parse ``NAME=VALUE`` strings (the CLI's repeatable ``--at``) into a dict.

    Each NAME must be a Python identifier that is not a keyword nor one of
    the function names; each VALUE must parse as a finite float.  A name may
    appear once only.  Insertion order is preserved.
    """
    if isinstance(items, str):
        # A bare string is a Sequence[str] of characters; that is never meant.
        items = [items]
    bindings: dict[str, float] = {}
    seen_item: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ExpressionError(f"bad binding {item!r}: expected NAME=VALUE, e.g. w=2")
        raw_name, _, raw_value = item.partition("=")
        name = _normalise_name(raw_name.strip())
        _check_variable_name(name, item)
        try:
            value = float(raw_value.strip())
        except ValueError:
            raise ExpressionError(f"bad binding {item!r}: {raw_value.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise ExpressionError(f"bad binding {item!r}: value must be finite")
        if name in bindings:
            raise ExpressionError(f"duplicate binding for {name!r}: {seen_item[name]!r} and {item!r}")
        bindings[name] = value
        seen_item[name] = item
    return bindings


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN/Infinity; None is the honest "no number here".
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class GradientResult:
    """The value and gradient of an expression at a point.

    ``gradients[x]`` is ∂f/∂x from ``tf.GradientTape`` (float32, like the
    notebook's ``tf.Variable(2.)``); ``finite_difference[x]`` is the float64
    central difference ``(f(x+h) - f(x-h)) / 2h`` with
    ``h = step * max(1, |x|)`` — so ``step`` is the *relative* step.
    ``at`` holds the bindings, in variable order.
    """

    expression: str
    value: float
    gradients: dict[str, float]
    finite_difference: dict[str, float]
    step: float
    at: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite floats (NaN, ±inf) become ``None``."""
        return {
            "expression": self.expression,
            "at": {k: _finite_or_none(v) for k, v in self.at.items()},
            "value": _finite_or_none(self.value),
            "gradients": {k: _finite_or_none(v) for k, v in self.gradients.items()},
            "finite_difference": {k: _finite_or_none(v) for k, v in self.finite_difference.items()},
            "finite_difference_step": _finite_or_none(self.step),
        }


# --------------------------------------------------------------------------
# Interpreters
# --------------------------------------------------------------------------


def _interpret(
    node: ast.AST,
    env: Mapping[str, Any],
    constant: Callable[[float], Any],
    functions: Mapping[str, Callable[[Any], Any]],
    binary: Mapping[type[ast.operator], Callable[[Any, Any], Any]],
) -> Any:
    """Evaluate a *validated* tree with the given backend operations.

    Only the whitelisted node types are handled; anything else is a bug in
    the validator, so it raises rather than guessing.
    """
    if isinstance(node, ast.Constant):
        return constant(float(node.value))
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left = _interpret(node.left, env, constant, functions, binary)
        right = _interpret(node.right, env, constant, functions, binary)
        return binary[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _interpret(node.operand, env, constant, functions, binary)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        argument = _interpret(node.args[0], env, constant, functions, binary)
        return functions[node.func.id](argument)
    raise ExpressionError(f"internal error: unvalidated node {type(node).__name__}")


def _numpy_sigmoid(x: np.float64) -> np.float64:
    # Split on the sign so exp() never overflows: 1/(1+e^-x) == e^x/(1+e^x).
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    z = np.exp(x)
    return z / (1.0 + z)


_NUMPY_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "sigmoid": _numpy_sigmoid,
    "abs": np.abs,
}

_NUMPY_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}


def _evaluate_numpy(tree: ast.Expression, env: Mapping[str, float]) -> float:
    """f(env) in float64.  Domain errors give NaN/inf, never an exception."""
    values = {name: np.float64(v) for name, v in env.items()}
    # np.float64 scalars keep IEEE semantics (1/0 = inf, log(-1) = nan);
    # the warnings are expected for out-of-domain points, so silence them.
    with np.errstate(all="ignore"):
        result = _interpret(tree.body, values, np.float64, _NUMPY_FUNCTIONS, _NUMPY_BINARY)
    return float(result)


def _central_difference(
    tree: ast.Expression, point: Mapping[str, float], name: str, relative_step: float
) -> float:
    """∂f/∂name ≈ (f(x + h) - f(x - h)) / ((x + h) - (x - h)), in float64.

    Taylor expansion gives a truncation error of f'''(x)·h²/6, while rounding
    f to float64 costs about eps·|f|/h (eps ≈ 2.2e-16).  The total is smallest
    near h ≈ eps^(1/3)·scale ≈ 6e-6·scale, so h = 1e-6·max(1, |x|) sits at
    that optimum (error ≈ 1e-10 relative for well-scaled f); scaling by |x|
    keeps x ± h distinct from x for large |x|.

    The denominator is the *representable* distance between x + h and x - h
    rather than 2h, which removes the error from rounding x ± h itself.
    """
    x = point[name]
    h = relative_step * max(1.0, abs(x))
    plus, minus = dict(point), dict(point)
    plus[name], minus[name] = x + h, x - h
    return (_evaluate_numpy(tree, plus) - _evaluate_numpy(tree, minus)) / (plus[name] - minus[name])


# --------------------------------------------------------------------------
# The tape
# --------------------------------------------------------------------------

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_bindings(names: list[str], bindings: Mapping[str, float]) -> dict[str, float]:
    """Every variable bound, every binding used; returns values in variable order."""
    unbound = [name for name in names if name not in bindings]
    if len(unbound) == 1:
        name = unbound[0]
        raise ExpressionError(f"unbound variable {name!r} (bind it with --at {name}=VALUE)")
    if unbound:
        listed = ", ".join(repr(name) for name in unbound)
        raise ExpressionError(f"unbound variables {listed} (bind each with --at NAME=VALUE)")
    # An unused binding is almost always a typo (--at W=2 for w); refuse it.
    unused = [name for name in bindings if name not in names]
    if unused:
        listed = ", ".join(repr(name) for name in unused)
        noun = "binding" if len(unused) == 1 else "bindings"
        raise ExpressionError(f"unused {noun} {listed} (not a variable of the expression)")
    point: dict[str, float] = {}
    for name in names:
        value = bindings[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ExpressionError(f"value for {name!r} must be a number, not {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ExpressionError(f"value for {name!r} must be finite, not {value!r}")
        if abs(value) > _FLOAT32_MAX:
            # The tape runs in float32, where this would silently become inf.
            raise ExpressionError(f"value for {name!r} ({value:g}) overflows float32")
        point[name] = value
    return point


def gradient(text: str, bindings: Mapping[str, float]) -> GradientResult:
    """Value and gradient of expression ``text`` at the point ``bindings``.

    For f(x₁, …, xₙ) this returns f(a) and ∇f(a) = (∂f/∂x₁, …, ∂f/∂xₙ)(a)
    computed by reverse-mode automatic differentiation: each variable is a
    float32 ``tf.Variable`` (as in the notebook's ``tf.Variable(2.)``), the
    forward pass is recorded on a ``tf.GradientTape`` and
    ``tape.gradient(f, [x₁, …, xₙ])`` plays it backwards.  Example::

        >>> gradient("2*w**2 + 5", {"w": 2.0}).gradients
        {'w': 8.0}

    because d/dw (2w² + 5) = 4w = 8 at w = 2.  Each partial is cross-checked
    by a float64 central difference (see :func:`_central_difference`).

    Raises :class:`ExpressionError` for a refused expression, an unbound
    variable, an unused binding, or a non-finite / float32-overflowing value.
    """
    tree = parse_expression(text)  # refuse bad input before importing TensorFlow
    names = variables(tree)
    point = _check_bindings(names, bindings)

    from fitvstape.backend import tensorflow

    tf = tensorflow()  # lazy: importing TensorFlow takes seconds

    tf_functions: dict[str, Callable[[Any], Any]] = {
        "sin": tf.math.sin,
        "cos": tf.math.cos,
        "tan": tf.math.tan,
        "exp": tf.math.exp,
        "log": tf.math.log,
        "sqrt": tf.math.sqrt,
        "tanh": tf.math.tanh,
        "sigmoid": tf.math.sigmoid,
        "abs": tf.abs,
    }
    tf_binary: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
        ast.Add: tf.add,
        ast.Sub: tf.subtract,
        ast.Mult: tf.multiply,
        ast.Div: tf.divide,
        ast.Pow: tf.pow,
    }

    def constant(value: float) -> Any:
        return tf.constant(value, dtype=tf.float32)

    # No name= argument: TensorFlow restricts variable names, ours may be any identifier.
    tf_vars = [tf.Variable(point[name], dtype=tf.float32) for name in names]
    env = dict(zip(names, tf_vars, strict=True))
    with tf.GradientTape() as tape:
        # Trainable variables are watched automatically; constants are not.
        # identity() makes the target a tensor even when f is a bare variable ("w").
        value = tf.identity(_interpret(tree.body, env, constant, tf_functions, tf_binary))
    grads = tape.gradient(value, tf_vars)

    gradients = {
        # None means "f does not depend on this variable" (cannot happen for a
        # variable that appears in the tree, but a zero is the right answer).
        name: 0.0 if grad is None else float(grad.numpy())
        for name, grad in zip(names, grads, strict=True)
    }
    finite_difference = {name: _central_difference(tree, point, name, RELATIVE_STEP) for name in names}
    return GradientResult(
        expression=text.strip(),
        value=float(value.numpy()),
        gradients=gradients,
        finite_difference=finite_difference,
        step=RELATIVE_STEP,
        at=point,
    )
