"""``fitvstape bench``: "why is my loop slow?", answered with per-epoch timings on your setup.

Every method trains the same model on the same planned batches from the same weights. The first
epoch of each run is left out of the timings: it traces and compiles the graph. What is left
is summarised by its median (robust to a noisy, shared machine) and its spread (min and max).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fitvstape.catalog import BENCH_METHODS as METHODS
from fitvstape.config import Config
from fitvstape.data import BatchPlan, Dataset, batch_plan, closed_form, load
from fitvstape.errors import InputError
from fitvstape.model import Weights, initial_weights
from fitvstape.trainers.common import PathRun


@dataclass(frozen=True)
class BenchRow:
    """One method's timings. ``epoch_s`` holds every timed epoch, first epochs left out."""

    method: str
    description: str
    epoch_s: tuple[float, ...]
    steps_per_epoch: int
    weights_equal_fit: bool
    fit_median: float

    @property
    def epoch_s_median(self) -> float:
        return statistics.median(self.epoch_s)

    @property
    def epoch_s_min(self) -> float:
        return min(self.epoch_s)

    @property
    def epoch_s_max(self) -> float:
        return max(self.epoch_s)

    @property
    def steps_per_s(self) -> float | None:
        if self.method == "closed_form":
            return None
        return self.steps_per_epoch / self.epoch_s_median

    @property
    def speed_vs_fit(self) -> float:
        """How many times faster than fit, median against median (above 1 is faster)."""
        return self.fit_median / self.epoch_s_median

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "description": self.description,
            "epoch_s_median": self.epoch_s_median,
            "epoch_s_min": self.epoch_s_min,
            "epoch_s_max": self.epoch_s_max,
            "timed_epochs": len(self.epoch_s),
            "steps_per_s": self.steps_per_s,
            "speed_vs_fit": self.speed_vs_fit,
            "weights_equal_fit": self.weights_equal_fit,
        }


@dataclass(frozen=True)
class BenchResult:
    config: Config
    data: Dataset
    plan: BatchPlan
    repeat: int
    rows: tuple[BenchRow, ...]


def bench(
    config: Config,
    repeat: int = 3,
    methods: tuple[str, ...] = tuple(METHODS),
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Time each method ``repeat`` times on ``config``'s setup.

    Args:
        config: the resolved settings; ``epochs`` must be at least 2 (the first is left out).
        repeat: runs per method. Default 3.
        methods: which of :data:`METHODS`, in order; ``fit`` is always run first (the reference).
        progress: called with each method's name before it runs. Default: nothing.
    """
    training = config.training
    if training.epochs < 2:
        raise InputError(
            f"--epochs: {training.epochs}: bench needs at least 2 (the first epoch is not timed)"
        )
    if repeat < 1:
        raise InputError(f"--repeat: {repeat} must be >= 1")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"--method: unknown {unknown[0]!r} (choose from {', '.join(METHODS)})")
    data = load(config.data, training.seed, config.origins)
    plan = batch_plan(data.samples, training.batch_size, training.shuffle, training.seed)
    initial = initial_weights(data.features, training.seed)
    trainers = _trainers(data, plan, initial, config)

    order = ["fit", *[m for m in methods if m != "fit"]]
    timings: dict[str, list[float]] = {}
    weights: dict[str, Weights] = {}
    for method in order:
        if progress is not None:
            progress(method)
        timings[method] = []
        for _ in range(repeat):
            run = trainers[method]()
            timings[method].extend(run.epoch_seconds[1:])
            weights[method] = run.weights
    fit_median = statistics.median(timings["fit"])
    rows = tuple(
        BenchRow(
            method=m,
            description=METHODS[m],
            epoch_s=tuple(timings[m]),
            steps_per_epoch=plan.steps_per_epoch,
            weights_equal_fit=_same(weights[m], weights["fit"]),
            fit_median=fit_median,
        )
        for m in order
        if m in methods
    )
    return BenchResult(config=config, data=data, plan=plan, repeat=repeat, rows=rows)


def _trainers(
    data: Dataset, plan: BatchPlan, initial: Weights, config: Config
) -> dict[str, Callable[[], PathRun]]:
    from fitvstape.trainers.fit import train_fit
    from fitvstape.trainers.tape import train_tape

    t = config.training

    def tape(mode: str) -> Callable[[], PathRun]:
        return lambda: train_tape(data, plan, initial, t, mode=mode)

    return {
        "fit": lambda: train_fit(data, plan, initial, t),
        "fit_steps_per_execution": lambda: train_fit(
            data, plan, initial, t, steps_per_execution=plan.steps_per_epoch
        ),
        "tape_eager": tape("eager"),
        "tape_function": tape("step"),
        "tape_compiled_epoch": tape("epoch"),
        "tape_xla": tape("xla"),
        "closed_form": lambda: _closed_form_run(data, t.epochs),
    }


def _closed_form_run(data: Dataset, epochs: int) -> PathRun:
    """The least-squares solve, timed ``epochs`` times so it lines up with the training rows."""
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        kernel, bias = closed_form(data)
        seconds.append(time.perf_counter() - start)
    weights = Weights(kernel=kernel.astype(np.float32), bias=bias.astype(np.float32))
    return PathRun(name="closed_form", epoch_losses=(), weights=weights, epoch_seconds=tuple(seconds))


def _same(a: Weights, b: Weights) -> bool:
    return bool(np.array_equal(a.kernel, b.kernel) and np.array_equal(a.bias, b.bias))
