"""The optimizer and loss catalogue: one entry per choice, Keras's own defaults, every combination runs.

``fitvstape/catalog.py`` is the single source for ``--optimizer``, ``--loss`` and their options.
These tests hold it to the installed Keras, and run every optimizer x loss x L2 combination
through the CLI from a config file, and check that the same settings as flags resolve the same.
"""

from __future__ import annotations

import inspect
import itertools
import json

import keras
import pytest
from click.testing import CliRunner

from fitvstape import catalog
from fitvstape.cli import cli
from fitvstape.config import resolve

TINY = {"samples": 24, "epochs": 2, "batch_size": 10}


@pytest.mark.parametrize("spec", catalog.OPTIMIZERS.values(), ids=lambda s: s.name)
def test_optimizer_option_defaults_are_keras_defaults(spec):
    signature = inspect.signature(getattr(keras.optimizers, spec.keras_class))
    for option in spec.options:
        assert signature.parameters[option.kwarg].default == option.default, option.key


@pytest.mark.parametrize("spec", catalog.LOSSES.values(), ids=lambda s: s.name)
def test_loss_option_defaults_are_keras_defaults(spec):
    signature = inspect.signature(getattr(keras.losses, spec.keras_class))
    assert signature.parameters["reduction"].default == "sum_over_batch_size"  # what fit reports
    for option in spec.options:
        assert signature.parameters[option.kwarg].default == option.default, option.key


def test_built_optimizer_carries_the_configured_options():
    optimizer = catalog.OPTIMIZERS["sgd"].build(0.05, {"momentum": 0.9, "nesterov": True})
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert (float(optimizer.learning_rate), optimizer.momentum, optimizer.nesterov) == (
        pytest.approx(0.05),
        0.9,
        True,
    )


COMBINATIONS = list(itertools.product(catalog.OPTIMIZERS, catalog.LOSSES, [0.0, 0.01]))


@pytest.mark.parametrize(("optimizer", "loss", "l2"), COMBINATIONS, ids=lambda v: str(v))
def test_every_combination_runs_from_a_config_file_and_matches_its_flags(optimizer, loss, l2, write):
    toml = (
        f"[data]\nsamples = {TINY['samples']}\n"
        f'[training]\noptimizer = "{optimizer}"\nloss = "{loss}"\nl2 = {l2}\n'
        f"epochs = {TINY['epochs']}\nbatch_size = {TINY['batch_size']}\n"
    )
    path = write("combo.toml", toml)
    flags = {"optimizer": optimizer, "loss": loss, "l2": l2, **TINY}
    assert resolve(path, {}).to_dict() == resolve(None, flags).to_dict()

    result = CliRunner().invoke(cli, ["run", "--config", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["max_ulp_diff"] == 0  # final weights: bit-exact for every combination
    if loss != "log_cosh":  # see test_properties.py for LogCosh's reported-loss bound
        assert summary["max_abs_loss_diff"] == 0 and summary["match"] is True
