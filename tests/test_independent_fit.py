"""An independent check of the fit path: a plain Keras fit written here, without fitvstape's trainers.

The fit path feeds fit a tf.data pipeline of pre-planned batches. Here the same model is trained
the way a user would: NumPy arrays, ``shuffle=False``, one ``fit`` call per epoch on the rows in
the plan's order. Both must report the same History losses and end on the same weights, bit for bit.
"""

from __future__ import annotations

import keras
import numpy as np

from fitvstape.config import resolve
from fitvstape.runner import run_comparison


def plain_keras_fit(x, y, kernel, bias, epochs, batch_size, lr, orders):
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(1)])
    model.set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse", jit_compile=False)
    losses = []
    for epoch in range(epochs):
        order = orders(epoch)
        history = model.fit(x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        losses.append(history.history["loss"][0])
    return losses, model.get_weights()


def test_fit_path_matches_a_plain_keras_fit():
    config = resolve(None, {"samples": 75, "features": 2, "epochs": 4, "batch_size": 16})
    result = run_comparison(config)
    losses, (kernel, bias) = plain_keras_fit(
        result.data.x,
        result.data.y,
        result.initial.kernel,
        result.initial.bias,
        epochs=4,
        batch_size=16,
        lr=0.01,
        orders=result.plan.order,
    )
    assert tuple(losses) == result.fit.epoch_losses
    np.testing.assert_array_equal(kernel, result.fit.weights.kernel)
    np.testing.assert_array_equal(bias, result.fit.weights.bias)
