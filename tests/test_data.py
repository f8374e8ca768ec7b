"""Data and the batch plan: what both paths are fed, epoch by epoch."""

from __future__ import annotations

import numpy as np
import pytest

from fitvstape.config import DataConfig
from fitvstape.data import batch_plan, closed_form, read_csv, synthesize


def test_synthetic_data_is_seeded_float32_columns():
    a = synthesize(DataConfig(samples=50, features=3), seed=1)
    b = synthesize(DataConfig(samples=50, features=3), seed=1)
    c = synthesize(DataConfig(samples=50, features=3), seed=2)
    assert a.x.dtype == np.float32 and a.x.shape == (50, 3) and a.y.shape == (50, 1)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.true_weights == (2.0, 0.5, -1.0)  # evenly from 2 to -1


def test_noise_free_data_is_exactly_linear():
    data = synthesize(DataConfig(samples=20, features=2, noise=0.0, true_weights=(3.0, -1.0)), seed=0)
    kernel, bias = closed_form(data)
    np.testing.assert_allclose(kernel[:, 0], [3.0, -1.0], atol=1e-6)  # float32 storage of y
    np.testing.assert_allclose(bias, [0.5], atol=1e-6)


def test_closed_form_in_chunks_equals_a_direct_least_squares_solve():
    data = synthesize(DataConfig(samples=101, features=4), seed=3)
    kernel, bias = closed_form(data, chunk_rows=7)
    x = np.hstack([data.x.astype(np.float64), np.ones((101, 1))])
    direct, *_ = np.linalg.lstsq(x, data.y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(np.vstack([kernel, bias[:, None]]), direct, rtol=1e-10, atol=1e-12)


def test_every_epoch_visits_every_sample_once_in_a_seeded_order():
    plan = batch_plan(samples=70, batch_size=16, shuffle=True, seed=5)
    assert plan.batch_sizes == [16, 16, 16, 16, 6] and plan.steps_per_epoch == 5
    orders = [plan.order(e) for e in range(3)]
    for order in orders:
        assert sorted(order) == list(range(70))
    assert not np.array_equal(orders[0], orders[1])  # a new permutation each epoch
    np.testing.assert_array_equal(orders[2], batch_plan(70, 16, True, 5).order(2))


@pytest.mark.parametrize(("batch_size", "expected"), [(None, [70]), (500, [70]), (70, [70]), (1, [1] * 70)])
def test_full_batch_and_oversized_batches_are_one_batch(batch_size, expected):
    assert batch_plan(70, batch_size, False, 0).batch_sizes == expected


def test_unshuffled_plan_is_file_order():
    np.testing.assert_array_equal(batch_plan(5, 2, False, 0).order(3), np.arange(5))


def test_csv_features_are_every_other_column_in_file_order(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a, target ,b\n1,10,2\n3,30,4\n")
    data = read_csv(path, "target")
    assert data.feature_names == ("a", "b") and data.target_name == "target"
    np.testing.assert_array_equal(data.x, np.array([[1, 2], [3, 4]], dtype=np.float32))
    np.testing.assert_array_equal(data.y, np.array([[10], [30]], dtype=np.float32))
    assert read_csv(path).target_name == "b"  # default: the last column
