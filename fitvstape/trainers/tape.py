"""The tape path: an explicit ``tf.GradientTape`` loop with ``optimizer.apply_gradients``.

Written the way fit's own ``train_step`` is (``keras/src/backend/tensorflow/trainer.py``):

1. forward pass and loss inside the tape; the loss is the compiled loss plus ``model.losses``
   (the regularisation penalties), as ``Trainer.compute_loss`` adds them;
2. the epoch loss is a ``keras.metrics.Mean`` weighted by the batch size, updated with the loss
   computed *before* the update;
3. ``tape.gradient`` and ``optimizer.apply_gradients(zip(grads, variables))``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fitvstape import catalog
from fitvstape.backend import tensorflow
from fitvstape.config import TrainingConfig
from fitvstape.data import BatchPlan, Dataset, batch_plan
from fitvstape.model import Weights, build_model, read_weights
from fitvstape.pitfalls import Recipe
from fitvstape.trainers.common import PathRun, as_floats, planned_batches

ALIGNED = Recipe()
MODES = ("epoch", "step", "eager", "xla")


def apply_recipe(
    recipe: Recipe, initial: Weights, plan: BatchPlan, training: TrainingConfig
) -> tuple[Weights, BatchPlan, float]:
    """The starting weights, batch plan and learning rate a loop with ``recipe``'s pitfalls uses."""
    if recipe.zeros_init:
        initial = Weights(kernel=np.zeros_like(initial.kernel), bias=np.zeros_like(initial.bias))
    if recipe.full_batch:
        plan = batch_plan(plan.samples, None, plan.shuffle, plan.seed)
    if recipe.file_order:
        plan = dataclasses.replace(plan, shuffle=False)
    spec = catalog.OPTIMIZERS[training.optimizer]
    learning_rate = spec.default_learning_rate if recipe.default_learning_rate else training.learning_rate
    return initial, plan, learning_rate


def train_tape(
    data: Dataset,
    plan: BatchPlan,
    initial: Weights,
    training: TrainingConfig,
    *,
    mode: str = "epoch",
    recipe: Recipe = ALIGNED,
    on_epoch: Callable[[int], None] | None = None,
) -> PathRun:
    """Train with a hand-written GradientTape loop.

    Args:
        data, plan, initial, training: as for :func:`fitvstape.trainers.fit.train_fit`.
        mode: how the loop runs, one of :data:`MODES`. Default ``"epoch"``: each epoch is one
            ``tf.function`` call looping over its batches in the graph, the fastest way on CPU.
            ``"step"`` compiles one step per call, ``"eager"`` runs step by step in Python,
            ``"xla"`` compiles the step with ``jit_compile=True``. On CPU the first three are
            bit-identical to fit; XLA fuses ops differently and may not be.
        recipe: which pitfalls to write into the loop (:mod:`fitvstape.pitfalls`). Default: none,
            the aligned loop.
        on_epoch: called with each finished epoch's number (1-based), for progress display.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    tf = tensorflow()
    import keras

    initial, plan, learning_rate = apply_recipe(recipe, initial, plan, training)
    spec = catalog.OPTIMIZERS[training.optimizer]

    model = build_model(data.features, training, initial)
    optimizer = spec.build(learning_rate, training.optimizer_settings)
    loss_fn = catalog.LOSSES[training.loss].build(training.loss_settings)
    epoch_loss = keras.metrics.Mean()
    variables = model.trainable_variables

    def compute_loss(x: Any, y: Any) -> Any:
        y_pred = model(x, training=True)
        if recipe.broadcast_shape:
            loss = tf.reduce_mean(tf.square(y[:, 0] - y_pred))  # (n,) - (n, 1) -> (n, n)
        else:
            loss = loss_fn(y, y_pred)
        # Summed as Trainer.compute_loss sums them: ops.sum over the stacked list. Written
        # as `loss + penalty` (or tf.add_n), grappler may merge it with the regulariser's
        # own additions and reorder them, which moved Huber + L1 + L2 losses by 1 ulp.
        if model.losses and not recipe.skip_regularization:
            loss = tf.reduce_sum(tf.stack([loss, *model.losses]))
        return loss

    def train_step(x: Any, y: Any) -> None:
        with tf.GradientTape() as tape:
            loss = compute_loss(x, y)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        if recipe.post_update_loss:
            loss = compute_loss(x, y)
        weight = 1 if recipe.unweighted_epoch_loss else tf.shape(x)[0]
        epoch_loss.update_state(loss, sample_weight=weight)

    # The batch dimension is left unknown, as in fit's traced train function, so the partial
    # last batch reuses the same graph instead of tracing a second one.
    signature = [
        tf.TensorSpec((None, data.features), tf.float32),
        tf.TensorSpec((None, 1), tf.float32),
    ]
    if mode == "eager":
        step = train_step
    else:
        step = tf.function(train_step, input_signature=signature, jit_compile=mode == "xla")

    def run_epoch(batches: Any, steps: Any) -> None:
        for _ in tf.range(steps):
            step(*next(batches))

    compiled_epoch = tf.function(run_epoch, jit_compile=False)

    if recipe.reused_optimizer_state:
        # An earlier run (one epoch) leaves iterations and slots in the optimizer; only the
        # weights are reset, as a re-run notebook cell that rebuilds the model would.
        for x, y in planned_batches(data, plan, 1):
            step(x, y)
        model.set_weights(initial.as_list())

    losses: list[float] = []
    seconds: list[float] = []
    batches = iter(planned_batches(data, plan, training.epochs))
    for _ in range(training.epochs):
        start = time.perf_counter()
        epoch_loss.reset_state()
        if mode == "epoch":
            compiled_epoch(batches, tf.constant(plan.steps_per_epoch))
        else:
            for _ in range(plan.steps_per_epoch):
                step(*next(batches))
        losses.append(epoch_loss.result().numpy())
        seconds.append(time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(len(losses))
    return PathRun(
        name="tape",
        epoch_losses=as_floats(losses),
        weights=read_weights(model),
        epoch_seconds=tuple(seconds),
    )
