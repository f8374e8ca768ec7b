"""compare.py is pure NumPy: differences, ULPs, tolerances and divergence, on hand-made runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fitvstape.compare import compare, first_non_finite, ulp_distance
from fitvstape.config import CheckConfig
from fitvstape.model import Weights
from fitvstape.trainers.common import PathRun

EXACT = CheckConfig()


def path(name, losses, kernel, bias):
    weights = Weights(
        kernel=np.array([[k] for k in kernel], dtype=np.float32), bias=np.array([bias], dtype=np.float32)
    )
    return PathRun(name=name, epoch_losses=tuple(losses), weights=weights, epoch_seconds=(0.0,) * len(losses))


def run_pair(fit_losses, tape_losses, fit_w, tape_w, tolerance=EXACT):
    fit = path("fit", fit_losses, fit_w[:-1], fit_w[-1])
    tape = path("tape", tape_losses, tape_w[:-1], tape_w[-1])
    initial = [(name, 0.0) for name, _ in fit.weights.flat()]
    return compare(fit, tape, initial, [0.0] * len(initial), tolerance)


def next_float32(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(np.inf)))


def test_identical_runs_match_exactly():
    c = run_pair([1.0, 0.5], [1.0, 0.5], [2.0, 1.0], [2.0, 1.0])
    assert c.match and c.max_abs_loss_diff == 0 and c.max_abs_weight_diff == 0 and c.max_ulp_diff == 0


def test_one_ulp_is_a_mismatch_by_default_and_is_reported_as_one_ulp():
    c = run_pair([1.0], [1.0], [2.0, 1.0], [next_float32(2.0), 1.0])
    assert not c.match
    assert c.max_ulp_diff == 1
    assert c.worst_param.name == "kernel[0]"


def test_tolerance_admits_small_differences():
    loose = CheckConfig(rtol=1e-6, atol=0.0)
    c = run_pair([1.0], [next_float32(1.0)], [2.0, 1.0], [2.0, 1.0], loose)
    assert c.match and c.within_tolerance


def test_worst_epoch_is_the_largest_loss_difference():
    c = run_pair([1.0, 0.9, 0.8], [1.0, 0.5, 0.79], [1.0, 0.0], [1.0, 0.0])
    assert c.worst_epoch.epoch == 2
    assert c.max_abs_loss_diff == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("a", "b", "ulps"),
    [
        (1.0, 1.0, 0),
        (0.0, -0.0, 0),
        (1.0, next_float32(1.0), 1),
        (-1.0, float(np.nextafter(np.float32(-1.0), np.float32(0))), 1),
        (float(np.float32(1e-45)), float(-np.float32(1e-45)), 2),  # the two smallest subnormals
        (math.nan, 1.0, None),
    ],
)
def test_ulp_distance(a, b, ulps):
    assert ulp_distance(a, b) == ulps


def test_divergence_is_reported_per_path_and_is_never_a_match():
    c = run_pair([1.0, math.inf, math.nan], [1.0, 2.0, 3.0], [1.0, 0.0], [1.0, 0.0])
    assert c.diverged == {"fit": 2, "tape": None}
    assert not c.match


def test_non_finite_final_weights_count_as_divergence_at_the_last_epoch():
    run = path("fit", [1.0, 2.0], [math.nan], 0.0)
    assert first_non_finite(run) == 2
