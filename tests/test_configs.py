"""Every config shipped in configs/ runs, and passes the check gate, from any working directory."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import CONFIGS

from fitvstape.cli import cli

SHIPPED = sorted(CONFIGS.glob("*.toml"))


def test_the_three_promised_configs_are_shipped():
    assert {p.name for p in SHIPPED} >= {"default.toml", "csv.toml", "adam-minibatch.toml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_passes_check(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative csv path resolves from the config's folder, not the cwd
    result = CliRunner().invoke(cli, ["check", "--config", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("MATCH")


def test_default_config_is_the_notebook_setup(comparison):
    result = comparison(CONFIGS / "default.toml")
    t = result.config.training
    assert (t.epochs, t.learning_rate, t.optimizer, t.loss, t.batch_size, t.shuffle) == (
        10,
        0.01,
        "sgd",
        "mse",
        32,
        True,
    )


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run(
        [sys.executable, "-m", "fitvstape", "--version"], capture_output=True, text=True, check=True
    )
    assert "fitvstape" in done.stdout
