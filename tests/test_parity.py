"""The product's claim: set up the same way, model.fit and a GradientTape loop agree bit for bit.

Every assertion here is exact equality (``==`` on float32 values widened exactly to Python
floats). These runs use the real trainers: a real ``model.fit`` and a real
``tape.gradient`` / ``optimizer.apply_gradients`` loop, nothing mocked.
"""

from __future__ import annotations

import numpy as np
import pytest

from fitvstape.config import resolve
from fitvstape.data import batch_plan, load
from fitvstape.model import initial_weights
from fitvstape.runner import RunResult
from fitvstape.trainers.tape import train_tape


def assert_bit_exact(result: RunResult) -> None:
    fit, tape = result.fit, result.tape
    assert fit.epoch_losses == tape.epoch_losses
    np.testing.assert_array_equal(fit.weights.kernel, tape.weights.kernel)
    np.testing.assert_array_equal(fit.weights.bias, tape.weights.bias)
    assert result.comparison.max_ulp_diff == 0
    assert result.comparison.match


SCENARIOS = {
    "full-batch": {"batch_size": None, "samples": 64},
    "minibatch-partial-last": {"batch_size": 32, "samples": 100, "shuffle": False},
    "shuffled": {"batch_size": 16, "samples": 70, "shuffle": True},
    "several-features": {"features": 5, "samples": 90, "batch_size": 8},
    "batch-of-one": {"batch_size": 1, "samples": 12, "epochs": 3},
    "batch-above-samples": {"batch_size": 500, "samples": 40},
}


@pytest.mark.parametrize("settings", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_fit_and_tape_agree_bit_for_bit(comparison, settings):
    result = comparison(**settings)
    assert_bit_exact(result)


def test_partial_last_batch_is_really_partial(comparison):
    result = comparison(**SCENARIOS["minibatch-partial-last"])
    assert result.plan.batch_sizes == [32, 32, 32, 4]


def test_csv_data_agrees_bit_for_bit(comparison, write):
    rows = ["a,b,target"] + [
        f"{i * 0.1:.3f},{(i % 7) - 3},{2 * i * 0.1 - (i % 7) + 1:.4f}" for i in range(45)
    ]
    path = write("data.csv", "\n".join(rows) + "\n")
    result = comparison(csv=path, epochs=5, batch_size=10)
    assert result.data.feature_names == ("a", "b")
    assert_bit_exact(result)


def test_training_actually_moves_the_weights(comparison):
    """Parity would be trivial if nothing trained: the loss falls and the weights leave the start."""
    result = comparison()
    losses = result.fit.epoch_losses
    assert losses[-1] < losses[0]
    assert not np.array_equal(result.fit.weights.kernel, result.initial.kernel)


def test_eager_tape_loop_agrees_with_fit_too(comparison):
    """A tape step run eagerly (no tf.function) gives the same bits as the compiled one."""
    settings = SCENARIOS["shuffled"]
    result = comparison(**settings)
    config = resolve(None, settings)
    data = load(config.data, config.training.seed)
    plan = batch_plan(data.samples, config.training.batch_size, True, config.training.seed)
    eager = train_tape(
        data, plan, initial_weights(data.features, config.training.seed), config.training, mode="eager"
    )
    assert eager.epoch_losses == result.fit.epoch_losses
    np.testing.assert_array_equal(eager.weights.kernel, result.fit.weights.kernel)
    np.testing.assert_array_equal(eager.weights.bias, result.fit.weights.bias)
