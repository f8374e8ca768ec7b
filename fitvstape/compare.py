"""Two path runs in, differences and a verdict out. Pure NumPy: no TensorFlow, no printing.

Tolerance rule, per value: ``|fit - tape| <= atol + rtol * |fit|`` (fit is the reference).
The defaults are 0 and 0, i.e. exact equality, because exactness is the claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fitvstape.config import CheckConfig
from fitvstape.trainers.common import PathRun


@dataclass(frozen=True)
class EpochDiff:
    epoch: int
    fit_loss: float
    tape_loss: float
    abs_diff: float


@dataclass(frozen=True)
class ParamDiff:
    name: str
    initial: float
    fit: float
    tape: float
    abs_diff: float
    ulp_diff: int | None
    closed_form: float


@dataclass(frozen=True)
class Comparison:
    """Per-epoch and per-parameter differences, the worst of each, and the verdict.

    ``diverged`` maps each path to its first epoch (1-based) with a non-finite loss or, if only
    the final weights are non-finite, the last epoch; None where the path stayed finite.
    """

    epochs: tuple[EpochDiff, ...]
    params: tuple[ParamDiff, ...]
    diverged: dict[str, int | None]
    within_tolerance: bool
    tolerance: CheckConfig

    @property
    def max_abs_loss_diff(self) -> float:
        return _max(d.abs_diff for d in self.epochs)

    @property
    def max_abs_weight_diff(self) -> float:
        return _max(p.abs_diff for p in self.params)

    @property
    def max_ulp_diff(self) -> int | None:
        ulps = [p.ulp_diff for p in self.params]
        return None if any(u is None for u in ulps) else max(ulps, default=0)

    @property
    def match(self) -> bool:
        """Neither path diverged and every value agrees within tolerance."""
        return self.within_tolerance and not any(v is not None for v in self.diverged.values())

    @property
    def worst_epoch(self) -> EpochDiff:
        return max(self.epochs, key=lambda d: _sort_key(d.abs_diff))

    @property
    def worst_param(self) -> ParamDiff:
        return max(self.params, key=lambda p: _sort_key(p.abs_diff))


def compare(
    fit: PathRun,
    tape: PathRun,
    initial: list[tuple[str, float]],
    closed_form: list[float],
    tolerance: CheckConfig,
) -> Comparison:
    """Compare the two runs value by value.

    Args:
        fit, tape: the two path runs.
        initial: the shared initial weights as ``(name, value)`` pairs.
        closed_form: the least-squares optimum, in the same order.
        tolerance: ``rtol`` and ``atol``.
    """
    epochs = tuple(
        EpochDiff(i + 1, a, b, _abs_diff(a, b))
        for i, (a, b) in enumerate(zip(fit.epoch_losses, tape.epoch_losses, strict=True))
    )
    fit_flat = fit.weights.flat()
    tape_flat = tape.weights.flat()
    params = tuple(
        ParamDiff(name, init, a, b, _abs_diff(a, b), ulp_distance(a, b), cf)
        for (name, init), (_, a), (_, b), cf in zip(initial, fit_flat, tape_flat, closed_form, strict=True)
    )
    pairs = [(d.fit_loss, d.tape_loss) for d in epochs] + [(p.fit, p.tape) for p in params]
    ref = np.array([a for a, _ in pairs], dtype=np.float64)
    other = np.array([b for _, b in pairs], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(ref - other) <= tolerance.atol + tolerance.rtol * np.abs(ref)
    return Comparison(
        epochs=epochs,
        params=params,
        diverged={"fit": first_non_finite(fit), "tape": first_non_finite(tape)},
        within_tolerance=bool(close.all()),
        tolerance=tolerance,
    )


def first_non_finite(run: PathRun) -> int | None:
    """The first epoch (1-based) whose loss is not finite; the last epoch if only weights are."""
    for epoch, loss in enumerate(run.epoch_losses, start=1):
        if not math.isfinite(loss):
            return epoch
    if not all(math.isfinite(v) for _, v in run.weights.flat()):
        return len(run.epoch_losses)
    return None


def ulp_distance(a: float, b: float) -> int | None:
    """How many float32 values lie between ``a`` and ``b`` (0 when bit-equal; +0 and -0 are 0).

    The float32 bit patterns are mapped onto a monotonic integer line (negative floats
    reflected), so the distance is a plain subtraction. None when either value is NaN.
    """
    if math.isnan(a) or math.isnan(b):
        return None
    ia, ib = (int(np.array(v, dtype=np.float32).view(np.int32)) for v in (a, b))
    ia, ib = (i if i >= 0 else -(i & 0x7FFFFFFF) for i in (ia, ib))
    return abs(ia - ib)


def _abs_diff(a: float, b: float) -> float:
    if math.isinf(a) and a == b:
        return 0.0
    return abs(a - b)


def _max(values: object) -> float:
    values = list(values)  # type: ignore[call-overload]
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values, default=0.0)


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else value
