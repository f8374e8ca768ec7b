"""One comparison, end to end: config -> data -> (fit path, tape path) -> compare.

The CLI calls :func:`run_comparison` and hands the :class:`RunResult` to :mod:`fitvstape.report`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fitvstape import __version__, distribute
from fitvstape.backend import tensorflow
from fitvstape.compare import Comparison, compare
from fitvstape.config import Config, with_training
from fitvstape.data import BatchPlan, Dataset, batch_plan, closed_form, load
from fitvstape.distribute import DistributionInfo
from fitvstape.errors import InputError
from fitvstape.model import Weights, initial_weights
from fitvstape.pitfalls import PITFALLS, Pitfall, recipe
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
    pitfalls: tuple[str, ...] = ()
    distribution: DistributionInfo | None = None


def run_comparison(
    config: Config,
    pitfalls: Sequence[str] = (),
    fit_cache: dict[str, PathRun] | None = None,
    on_epoch: Callable[[str, int], None] | None = None,
) -> RunResult:
    """Train both paths from the same weights on the same batches and compare them.

    With ``training.replicas`` > 1 both paths train under one MirroredStrategy; with
    ``training.workers`` > 1 the work goes to local worker processes
    (:func:`fitvstape.distribute.run_workers`).

    Args:
        config: the resolved settings.
        pitfalls: names from :data:`fitvstape.pitfalls.PITFALLS` to write into the tape loop.
            Default: none, the aligned loop.
        fit_cache: fit runs by config, reused across calls (``explain`` trains fit once per
            distinct setting while the tape loop changes). Default: no cache.
        on_epoch: called as ``on_epoch("fit" or "tape", epoch)`` after each epoch.
    """
    training = config.training
    if training.workers > 1:
        return distribute.run_workers(config, pitfalls)
    tape_recipe = recipe(pitfalls)
    strategy = devices = None
    if training.replicas > 1:
        # Must come before any other TensorFlow work: it splits the CPU into logical devices.
        strategy, devices = distribute.configure_replicas(training.replicas)
    elif distribute.replica_loss_form(tape_recipe) != "aligned":
        needing = [p for p in pitfalls if distribute.replica_loss_form(recipe([p])) != "aligned"]
        raise InputError(f"--pitfall: {', '.join(needing)} needs --replicas 2 or more (or --workers)")
    data = load(config.data, training.seed, config.origins)
    plan = batch_plan(data.samples, training.batch_size, training.shuffle, training.seed)
    if strategy is not None:
        distribute.check_split(plan, training.replicas, "--replicas")

    from fitvstape.trainers.fit import train_fit
    from fitvstape.trainers.tape import train_tape

    initial = initial_weights(data.features, training.seed)
    key = json.dumps(config.to_dict(), sort_keys=True)
    if fit_cache is not None and key in fit_cache:
        fit = fit_cache[key]
    else:
        fit = train_fit(data, plan, initial, training, strategy=strategy, on_epoch=_for_path(on_epoch, "fit"))
        if fit_cache is not None:
            fit_cache[key] = fit
    if strategy is None:
        tape = train_tape(
            data,
            plan,
            initial,
            training,
            mode="eager" if training.eager else "epoch",
            recipe=tape_recipe,
            on_epoch=_for_path(on_epoch, "tape"),
        )
        info = None
    else:
        tape = distribute.train_tape_distributed(
            data,
            plan,
            initial,
            training,
            strategy,
            recipe=tape_recipe,
            eager=training.eager,
            on_epoch_end=_for_path(on_epoch, "tape"),
        )
        info = distribute.DistributionInfo(
            strategy=type(strategy).__name__,
            replicas=strategy.num_replicas_in_sync,
            workers=1,
            devices=list(devices or []),
        )
    return assemble(config, data, plan, initial, fit, tape, pitfalls, info)


def assemble(
    config: Config,
    data: Dataset,
    plan: BatchPlan,
    initial: Weights,
    fit: PathRun,
    tape: PathRun,
    pitfalls: Sequence[str],
    distribution: DistributionInfo | None = None,
) -> RunResult:
    """Compare two finished runs and wrap everything a report needs."""
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
        pitfalls=tuple(pitfalls),
        distribution=distribution,
    )


@dataclass(frozen=True, eq=False)
class PitfallRow:
    """One pitfall applied alone, and the settings ``explain`` turned on so that it shows."""

    pitfall: Pitfall
    result: RunResult
    turned_on: dict[str, Any]

    @property
    def first_differing_epoch(self) -> int | None:
        return next((d.epoch for d in self.result.comparison.epochs if d.abs_diff != 0), None)


@dataclass(frozen=True, eq=False)
class Explanation:
    aligned: RunResult
    rows: tuple[PitfallRow, ...]


def explain(config: Config) -> Explanation:
    """The aligned comparison, then each pitfall alone, ranked by effect (largest first).

    A pitfall that only shows under some setting (regularisation needs L2 > 0) gets that
    setting turned on for its row; the row says so.
    """
    fits: dict[str, PathRun] = {}
    aligned = run_comparison(config, fit_cache=fits)
    rows = []
    for pitfall in PITFALLS.values():
        needs = dict(pitfall.needs(config.training))
        if needs.pop("replicas", 1) > 1:
            # Logical devices can't be added once TensorFlow has started in this process, so a
            # pitfall that needs replicas runs its row on two local worker processes instead.
            needs["workers"] = 2
        row_config = with_training(config, needs) if needs else config
        rows.append(PitfallRow(pitfall, run_comparison(row_config, [pitfall.name], fits), needs))
    rows.sort(
        key=lambda r: (
            -_effect(r.result.comparison.max_abs_weight_diff),
            -_effect(r.result.comparison.max_abs_loss_diff),
        )
    )
    return Explanation(aligned=aligned, rows=tuple(rows))


def _for_path(on_epoch: Callable[[str, int], None] | None, path: str) -> Callable[[int], None] | None:
    return None if on_epoch is None else lambda epoch: on_epoch(path, epoch)


def _effect(value: float) -> float:
    return math.inf if math.isnan(value) else value


def versions() -> dict[str, Any]:
    tf = tensorflow()
    import keras

    return {"fitvstape": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}
