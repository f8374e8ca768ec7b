"""What both paths share: TensorFlow set-up, the batch pipeline, and the result record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fitvstape.backend import tensorflow
from fitvstape.data import BatchPlan, Dataset
from fitvstape.model import Weights


@dataclass(frozen=True, eq=False)
class PathRun:
    """One path's record: the loss it reported each epoch, its final weights, its timings.

    ``epoch_losses`` are the float32 values the path reported, widened exactly to Python floats.
    """

    name: str
    epoch_losses: tuple[float, ...]
    weights: Weights
    epoch_seconds: tuple[float, ...]

    @property
    def seconds(self) -> float:
        return float(sum(self.epoch_seconds))


def planned_batches(data: Dataset, plan: BatchPlan, epochs: int) -> Any:
    """A ``tf.data.Dataset`` of ``(x, y)`` batches: every epoch of ``plan``, one after another.

    Each path builds its own: ``fit`` and a plain loop iterate a dataset differently (fit keeps
    one iterator across epochs when ``steps_per_epoch`` is set, see ``EpochIterator``), so
    sharing one instance would be a trap.
    """
    tf = tensorflow()
    x = tf.constant(data.x)
    y = tf.constant(data.y)
    if not plan.shuffle:
        unshuffled = tf.data.Dataset.from_tensor_slices((x, y)).batch(plan.batch_size)
        return unshuffled.repeat(epochs).prefetch(tf.data.AUTOTUNE)

    def epoch_order(epoch: Any) -> Any:
        order = tf.numpy_function(lambda e: plan.order(int(e)), [epoch], tf.int64, stateful=False)
        order.set_shape([plan.samples])
        return tf.data.Dataset.from_tensor_slices(order).batch(plan.batch_size)

    indices = tf.data.Dataset.range(epochs).flat_map(epoch_order)
    batches = indices.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)))
    return batches.prefetch(tf.data.AUTOTUNE)


def as_floats(values: Any) -> tuple[float, ...]:
    """float32 values widened to Python floats; exact, so no bit is lost in the comparison."""
    return tuple(float(np.float32(v)) for v in values)
