"""One comparison, end to end: config -> data -> (fit path, tape path) -> compare.

The CLI calls :func:`run_comparison` and hands the :class:`RunResult` to :mod:`fitvstape.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fitvstape import __version__
from fitvstape.backend import tensorflow
from fitvstape.compare import Comparison, compare
from fitvstape.config import Config
from fitvstape.data import BatchPlan, Dataset, batch_plan, closed_form, load
from fitvstape.model import Weights, initial_weights
from fitvstape.trainers.common import PathRun


@dataclass(frozen=True, eq=False)
class RunResult:
    config: Config
    data: Dataset
    plan: BatchPlan
    initial: Weights
    closed_form: Weights
    fit: PathRun
    tape: PathRun
    comparison: Comparison
    versions: dict[str, str]


def run_comparison(config: Config) -> RunResult:
    """Train both paths from the same weights on the same batches and compare them."""
    training = config.training
    data = load(config.data, training.seed, config.origins)
    plan = batch_plan(data.samples, training.batch_size, training.shuffle, training.seed)

    from fitvstape.trainers.fit import train_fit
    from fitvstape.trainers.tape import train_tape

    initial = initial_weights(data.features, training.seed)
    fit = train_fit(data, plan, initial, training)
    tape = train_tape(data, plan, initial, training)
    kernel, bias = closed_form(data)
    optimum = Weights(kernel=kernel, bias=bias)
    comparison = compare(fit, tape, initial.flat(), [v for _, v in optimum.flat()], config.check)
    return RunResult(
        config=config,
        data=data,
        plan=plan,
        initial=initial,
        closed_form=optimum,
        fit=fit,
        tape=tape,
        comparison=comparison,
        versions=versions(),
    )


def versions() -> dict[str, Any]:
    tf = tensorflow()
    import keras

    return {"fitvstape": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}
