"""The optimizer and loss catalogue: the one place that says what ``--optimizer`` and ``--loss`` take.

Each entry names the Keras class it builds and the options a user may set on it, with Keras's own
default for each (checked against the installed Keras by ``tests/test_catalog.py``). The CLI
flags, the config schema, the report and the tests all read this module; adding an optimizer is
one :class:`OptimizerSpec` in :data:`OPTIMIZERS`.

Nothing here imports TensorFlow at module level: ``--help`` reads the catalogue too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One setting of an optimizer or a loss.

    Args:
        key: the config key under ``[training]``; the flag is ``--`` + key with ``-`` for ``_``.
        kwarg: the Keras constructor argument it sets.
        kind: ``float`` or ``bool``.
        default: Keras's default for ``kwarg``; used when the user leaves the option unset.
        bounds: for floats, ``(low, high, low_open, high_open)``; ``None`` for bools.
        help: one line for ``--help``.
    """

    key: str
    kwarg: str
    kind: type
    default: Any
    help: str
    bounds: tuple[float, float, bool, bool] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None when it is."""
        if self.bounds is None:
            return None
        low, high, low_open, high_open = self.bounds
        if not math.isfinite(value):
            return "must be a finite number"
        if value < low or (low_open and value == low):
            return f"must be {'>' if low_open else '>='} {low:g}"
        if value > high or (high_open and value == high):
            return f"must be {'<' if high_open else '<='} {high:g}"
        return None


_INF = math.inf

MOMENTUM = Option("momentum", "momentum", float, 0.0, "Momentum (SGD, RMSprop).", (0, 1, False, True))
NESTEROV = Option("nesterov", "nesterov", bool, False, "Nesterov momentum (SGD).")
BETA_1 = Option("beta_1", "beta_1", float, 0.9, "First-moment decay (Adam, AdamW).", (0, 1, False, True))
BETA_2 = Option("beta_2", "beta_2", float, 0.999, "Second-moment decay (Adam, AdamW).", (0, 1, False, True))
EPSILON = Option("epsilon", "epsilon", float, 1e-7, "Numerical-stability epsilon.", (0, _INF, True, True))
WEIGHT_DECAY = Option(
    "weight_decay", "weight_decay", float, 0.004, "Decoupled weight decay (AdamW).", (0, _INF, False, True)
)
RHO = Option(
    "rho",
    "rho",
    float,
    0.9,
    "Discounting factor for the squared-gradient average (RMSprop).",
    (0, 1, False, True),
)
HUBER_DELTA = Option(
    "huber_delta", "delta", float, 1.0, "Where Huber turns from quadratic to linear.", (0, _INF, True, True)
)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer users can pick with ``--optimizer``.

    Args:
        name: the CLI and config name.
        keras_class: the class name in ``keras.optimizers``.
        options: the settings that apply to it; any other optimizer option is an error.
        summary: the update rule, in one line.
    """

    name: str
    keras_class: str
    options: tuple[Option, ...]
    summary: str
    default_learning_rate: float = 0.001

    def build(self, learning_rate: float, settings: Mapping[str, Any]) -> Any:
        """A fresh Keras optimizer. Each path needs its own instance (Keras raises on reuse)."""
        import keras

        kwargs = _kwargs(self.options, settings)
        return getattr(keras.optimizers, self.keras_class)(learning_rate=learning_rate, **kwargs)


@dataclass(frozen=True)
class LossSpec:
    """A loss users can pick with ``--loss``; it is reduced with ``sum_over_batch_size``, as in fit."""

    name: str
    keras_class: str
    options: tuple[Option, ...]
    summary: str

    def build(self, settings: Mapping[str, Any]) -> Any:
        """A Keras ``Loss`` instance. Both paths call the same class, so the arithmetic is shared."""
        import keras

        return getattr(keras.losses, self.keras_class)(**_kwargs(self.options, settings))


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec(
            "sgd",
            "SGD",
            (MOMENTUM, NESTEROV),
            "w -= lr*g; with momentum m: v = m*v - lr*g, w += v",
            default_learning_rate=0.01,
        ),
        OptimizerSpec("adam", "Adam", (BETA_1, BETA_2, EPSILON), "bias-corrected first and second moments"),
        OptimizerSpec(
            "adamw", "AdamW", (BETA_1, BETA_2, EPSILON, WEIGHT_DECAY), "Adam with decoupled weight decay"
        ),
        OptimizerSpec(
            "rmsprop", "RMSprop", (RHO, MOMENTUM, EPSILON), "divide by a moving RMS of the gradient"
        ),
        OptimizerSpec("adagrad", "Adagrad", (EPSILON,), "divide by the root of the summed squared gradients"),
    )
}

LOSSES: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("mse", "MeanSquaredError", (), "mean of (y - y_pred)^2"),
        LossSpec("mae", "MeanAbsoluteError", (), "mean of |y - y_pred|"),
        LossSpec("huber", "Huber", (HUBER_DELTA,), "quadratic within delta, linear beyond"),
        LossSpec("log_cosh", "LogCosh", (), "mean of log(cosh(y_pred - y))"),
    )
}


def optimizer_options() -> tuple[Option, ...]:
    """Every optimizer option, once each, in catalogue order."""
    return _unique(opt for spec in OPTIMIZERS.values() for opt in spec.options)


def loss_options() -> tuple[Option, ...]:
    """Every loss option, once each, in catalogue order."""
    return _unique(opt for spec in LOSSES.values() for opt in spec.options)


def users_of(option: Option, catalogue: Mapping[str, OptimizerSpec | LossSpec]) -> list[str]:
    """The names of the catalogue entries that take ``option``."""
    return [name for name, spec in catalogue.items() if option in spec.options]


def _kwargs(options: tuple[Option, ...], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Keras constructor arguments: the user's value where set, else Keras's default."""
    return {opt.kwarg: opt.default if settings.get(opt.key) is None else settings[opt.key] for opt in options}


def _unique(options: Any) -> tuple[Option, ...]:
    seen: dict[str, Option] = {}
    for opt in options:
        seen.setdefault(opt.key, opt)
    return tuple(seen.values())


# What ``fitvstape bench`` times, in order, with a line on each: the CLI's --method choices and
# the bench report both read this.
BENCH_METHODS: dict[str, str] = {
    "fit": "model.fit, one step per compiled call",
    "fit_steps_per_execution": "model.fit with steps_per_execution = steps per epoch",
    "tape_eager": "GradientTape loop, eager, step by step",
    "tape_function": "GradientTape step in a tf.function",
    "tape_compiled_epoch": "a whole epoch of GradientTape steps in one tf.function",
    "tape_xla": "GradientTape step in a tf.function with jit_compile=True",
    "closed_form": "NumPy least-squares solve (the floor; not a training loop)",
}
