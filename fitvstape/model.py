"""The linear model both paths train, and its one seeded initialisation.

``Sequential([Input((F,)), Dense(1)])``, as in the notebook's ``model.fit`` cell. The initial
weights are drawn once, with Keras's own ``Dense`` defaults (``glorot_uniform`` kernel, ``zeros``
bias) and an explicit seed, then copied into each path's model: two models built one after the
other draw different weights even after ``set_random_seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fitvstape.backend import tensorflow
from fitvstape.config import TrainingConfig

PARAMETERS = ("kernel", "bias")


@dataclass(frozen=True, eq=False)
class Weights:
    """A snapshot of the model: ``kernel`` (F, 1) and ``bias`` (1,), as float32 NumPy arrays."""

    kernel: np.ndarray
    bias: np.ndarray

    def as_list(self) -> list[np.ndarray]:
        """In ``model.get_weights()`` order."""
        return [self.kernel, self.bias]

    def flat(self) -> list[tuple[str, float]]:
        """``("kernel[0]", value), ..., ("bias", value)``: one entry per scalar parameter."""
        named = [(f"kernel[{i}]", float(v)) for i, v in enumerate(self.kernel[:, 0])]
        return named + [("bias", float(self.bias[0]))]

    def to_dict(self) -> dict[str, list[Any]]:
        return {"kernel": self.kernel.tolist(), "bias": self.bias.tolist()}


def initial_weights(features: int, seed: int) -> Weights:
    """Keras's ``Dense`` initialisation, drawn once from ``seed``."""
    tensorflow()
    import keras

    kernel = keras.initializers.GlorotUniform(seed=seed)(shape=(features, 1), dtype="float32")
    return Weights(
        kernel=np.asarray(kernel, dtype=np.float32),
        bias=np.zeros((1,), dtype=np.float32),
    )


def build_model(features: int, training: TrainingConfig, weights: Weights) -> Any:
    """A fresh ``Sequential([Input((F,)), Dense(1)])`` holding a copy of ``weights``.

    L1/L2 are a kernel regulariser on the Dense layer, so ``model.losses`` carries the penalty:
    fit adds it to the loss it optimises and reports, and so must a tape loop.
    """
    tensorflow()
    import keras

    regularizer = None
    if training.l1 or training.l2:
        regularizer = keras.regularizers.L1L2(l1=training.l1, l2=training.l2)
    model = keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(1, kernel_regularizer=regularizer)]
    )
    model.set_weights(weights.as_list())
    return model


def read_weights(model: Any) -> Weights:
    kernel, bias = model.get_weights()
    return Weights(kernel=np.asarray(kernel), bias=np.asarray(bias))
