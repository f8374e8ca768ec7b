"""An independent check of the fit path: plain Keras fit written here, without fitvstape's trainers.

The fit path feeds fit a tf.data pipeline of pre-planned batches. Here the same model is trained
the way a user would: NumPy arrays, ``shuffle=False``, one ``fit`` call per epoch on the rows in
the plan's order. Both must report the same History losses and end on the same weights, bit for
bit.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fitvstape.config import resolve
from fitvstape.runner import run_comparison


def plain_keras_fit(result, optimizer, loss, regularizer=None):
    x, y = result.data.x, result.data.y
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(1, kernel_regularizer=regularizer)]
    )
    model.set_weights([result.initial.kernel, result.initial.bias])
    model.compile(optimizer=optimizer, loss=loss, jit_compile=False)
    losses = []
    for epoch in range(result.config.training.epochs):
        order = result.plan.order(epoch)
        history = model.fit(
            x[order], y[order], batch_size=result.plan.batch_size, epochs=1, shuffle=False, verbose=0
        )
        losses.append(history.history["loss"][0])
    return tuple(losses), model.get_weights()


CASES = {
    "sgd-mse": (
        {"samples": 75, "features": 2, "epochs": 4, "batch_size": 16},
        lambda: (keras.optimizers.SGD(learning_rate=0.01), "mse", None),
    ),
    "adam-huber-l2": (
        {
            "samples": 90,
            "features": 3,
            "epochs": 5,
            "batch_size": 20,
            "optimizer": "adam",
            "loss": "huber",
            "huber_delta": 0.5,
            "l2": 0.01,
        },
        lambda: (
            keras.optimizers.Adam(learning_rate=0.01),
            keras.losses.Huber(delta=0.5),
            keras.regularizers.L2(0.01),
        ),
    ),
}


@pytest.mark.parametrize(("settings", "keras_setup"), CASES.values(), ids=CASES.keys())
def test_fit_path_matches_a_plain_keras_fit(settings, keras_setup):
    result = run_comparison(resolve(None, settings))
    losses, (kernel, bias) = plain_keras_fit(result, *keras_setup())
    assert losses == result.fit.epoch_losses
    np.testing.assert_array_equal(kernel, result.fit.weights.kernel)
    np.testing.assert_array_equal(bias, result.fit.weights.bias)
    assert result.comparison.match  # and the tape path agrees with both
