"""``fitvstape bench``: per-epoch timings of fit against the ways a tape loop can run.

These tests check the shape and the honesty of the report (first epochs left out, weights
compared bit for bit), never the speed itself: timings belong in benchmarks/, not in tests on a
shared machine.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fitvstape.bench import METHODS
from fitvstape.cli import cli

TINY = ["--samples", "64", "--epochs", "3", "--batch-size", "16", "--repeat", "2"]


@pytest.fixture(scope="module")
def bench_doc() -> dict:
    result = CliRunner().invoke(cli, ["bench", *TINY, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_method_is_timed_with_fit_first(bench_doc):
    assert [m["method"] for m in bench_doc["methods"]] == list(METHODS)


def test_first_epochs_are_left_out_of_the_timings(bench_doc):
    for method in bench_doc["methods"]:
        assert method["timed_epochs"] == 2 * (3 - 1)  # 2 repeats x (3 epochs - the first)
        assert 0 < method["epoch_s_min"] <= method["epoch_s_median"] <= method["epoch_s_max"]


def test_speed_is_relative_to_fit(bench_doc):
    fit = bench_doc["methods"][0]
    assert fit["speed_vs_fit"] == 1.0
    for method in bench_doc["methods"]:
        assert method["speed_vs_fit"] == pytest.approx(fit["epoch_s_median"] / method["epoch_s_median"])


def test_compiled_and_eager_tape_loops_end_on_fits_weights(bench_doc):
    equal = {m["method"]: m["weights_equal_fit"] for m in bench_doc["methods"]}
    assert equal["tape_eager"] and equal["tape_function"] and equal["tape_compiled_epoch"]
    assert equal["fit_steps_per_execution"]
    assert not equal["closed_form"]  # the least-squares optimum, not 2 epochs of SGD


def test_bench_text_table_and_a_single_method():
    result = CliRunner().invoke(cli, ["bench", *TINY, "--method", "tape_compiled_epoch"])
    assert result.exit_code == 0
    assert "tape_compiled_epoch" in result.stdout and "fit" in result.stdout
    assert "tape_eager" not in result.stdout


def test_bench_needs_two_epochs():
    result = CliRunner().invoke(cli, ["bench", "--epochs", "1"])
    assert result.exit_code == 2
    assert "--epochs" in result.output and "1" in result.output
