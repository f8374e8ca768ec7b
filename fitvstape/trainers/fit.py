"""The fit path: a real ``model.compile(...)`` and ``model.fit(...)`` call."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from fitvstape import catalog
from fitvstape.backend import tensorflow
from fitvstape.config import TrainingConfig
from fitvstape.data import BatchPlan, Dataset
from fitvstape.model import Weights, build_model, read_weights
from fitvstape.trainers.common import PathRun, as_floats, planned_batches


def train_fit(
    data: Dataset,
    plan: BatchPlan,
    initial: Weights,
    training: TrainingConfig,
    *,
    strategy: Any = None,
    steps_per_execution: int = 1,
    on_epoch: Callable[[int], None] | None = None,
) -> PathRun:
    """Train with ``model.fit`` on the planned batches and return what History recorded.

    fit receives a dataset of ready-made batches with ``steps_per_epoch`` set, so it cannot
    reshuffle or re-batch: the order is the plan's, not Keras's private shuffle.

    Args:
        data, plan, initial, training: the data, batch plan, starting weights and settings.
        strategy: a ``tf.distribute`` strategy to build and compile the model under. Default
            None: the default (single-device) strategy.
        steps_per_execution: fit's own option: batches run per compiled call. Default 1.
        on_epoch: called with each finished epoch's number (1-based), for progress display.
    """
    tensorflow()
    import keras

    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(data.features, training, initial)
        model.compile(
            optimizer=catalog.OPTIMIZERS[training.optimizer].build(
                training.learning_rate, training.optimizer_settings
            ),
            loss=catalog.LOSSES[training.loss].build(training.loss_settings),
            # "auto" may pick XLA on a GPU, which moves Adam weights by ~1e-9; pin it.
            jit_compile=False,
            steps_per_execution=steps_per_execution,
        )
    timer = _EpochTimer(keras, on_epoch)
    history = model.fit(
        planned_batches(data, plan, training.epochs),
        epochs=training.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        shuffle=False,  # the batches arrive in the plan's order; Keras must not touch it
        verbose=0,
        callbacks=[timer.callback],
    )
    return PathRun(
        name="fit",
        epoch_losses=as_floats(history.history["loss"]),
        weights=read_weights(model),
        epoch_seconds=tuple(timer.seconds),
    )


class _EpochTimer:
    """Wall time per epoch, measured by a Keras callback around fit's own epoch loop."""

    def __init__(self, keras: Any, on_epoch: Callable[[int], None] | None) -> None:
        self.seconds: list[float] = []
        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                timer._start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                timer.seconds.append(time.perf_counter() - timer._start)
                if on_epoch is not None:
                    on_epoch(epoch + 1)

        self._start = 0.0
        self.callback = Callback()
