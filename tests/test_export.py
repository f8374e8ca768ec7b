"""The exported script: a standalone copy of one comparison that trains exactly like the tool.

``render_script(config)`` writes a Python file that needs only TensorFlow, Keras and NumPy. Run
with ``--format json``, it must print the same ``epochs`` list and the same final weights as
``fitvstape run --format json`` with the same options: equal, not close.

Starting TensorFlow in a fresh interpreter costs several seconds, so exactly three exported
scripts are run as subprocesses (one per scenario below); everything else reads the script's
text or runs it in this process.
"""

from __future__ import annotations

import ast
import json
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from fitvstape import __version__, catalog
from fitvstape.cli import cli
from fitvstape.config import SETTINGS, resolve
from fitvstape.data import load
from fitvstape.export import render_script

# The scenarios run end to end: each is exported, run in a fresh interpreter, and compared with
# `fitvstape run` given the same options.
SMALL = {"samples": 40, "epochs": 3, "batch_size": 16}
ADAM_HUBER_L2 = {
    "samples": 50,
    "features": 3,
    "epochs": 3,
    "batch_size": 16,  # 16 + 16 + 16 + 2: a partial last batch
    "shuffle": True,
    "optimizer": "adam",
    "loss": "huber",
    "huber_delta": 0.5,
    "l2": 0.01,
}
CSV_TEXT = """\
rooms,price,age
3,2.5,10
4,3.1,4.5
2,1.2,30
5,4.8,2
3,2.9,12
4,3.5,8
1,0.9,41
2,1.7,25
5,5.2,1
3,2.4,15
"""
CSV = {"target": "price", "epochs": 4, "batch_size": 4, "shuffle": False, "learning_rate": 0.02}

STANDALONE_MODULES = {"argparse", "csv", "json", "math", "os", "keras", "numpy", "tensorflow"}


def cli_args(settings: dict[str, Any]) -> list[str]:
    """The `fitvstape run` flags for ``settings``, e.g. ``{"shuffle": False}`` -> ``--no-shuffle``."""
    args: list[str] = []
    for key, value in settings.items():
        flag = SETTINGS[key].cli_flag
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args += [flag, str(value)]
    return args


def export(settings: dict[str, Any], folder: Path) -> Path:
    path = folder / "fit_vs_tape.py"
    path.write_text(render_script(resolve(None, settings)), encoding="utf-8")
    return path


def tool_report(settings: dict[str, Any]) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["run", *cli_args(settings), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def script_report(script: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(script), "--format", "json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # exactly one JSON document, nothing else on stdout


def module_constants(script: str) -> dict[str, Any]:
    """The script's top-level ``NAME = <literal>`` settings, evaluated."""
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(script).body
        if isinstance(node, ast.Assign) and node.targets[0].id.isupper()
    }


def imported_modules(script: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(script)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def some_configs(tmp_path: Path) -> dict[str, str]:
    """Scripts for every optimizer and loss, with and without a regulariser, and for a CSV."""
    csv = tmp_path / "data.csv"
    csv.write_text(CSV_TEXT, encoding="utf-8")
    scripts = {
        f"{optimizer}-{loss}": render_script(resolve(None, {"optimizer": optimizer, "loss": loss}))
        for optimizer in catalog.OPTIMIZERS
        for loss in catalog.LOSSES
    }
    scripts["l1-l2-full-batch"] = render_script(resolve(None, {"l1": 0.1, "l2": 0.2, "batch_size": "full"}))
    scripts["csv"] = render_script(resolve(None, {"csv": csv, **CSV}))
    return scripts


# -- the script trains exactly like the tool ------------------------------------------------------


@pytest.mark.parametrize(
    "settings", [SMALL, ADAM_HUBER_L2, CSV], ids=["sgd-mse", "adam-huber-l2-3-features", "csv-in-order"]
)
def test_exported_script_reports_the_same_losses_and_weights_as_fitvstape_run(settings, tmp_path):
    if settings is CSV:  # the file goes in this test's own folder
        csv = tmp_path / "houses.csv"
        csv.write_text(CSV_TEXT, encoding="utf-8")
        settings = {"csv": csv, **CSV}

    script = script_report(export(settings, tmp_path))
    tool = tool_report(settings)

    assert script["epochs"] == tool["epochs"]  # fit_loss, tape_loss and abs_diff, every epoch
    for path in ("initial", "fit", "tape"):
        assert script["weights"][path] == tool["weights"][path], path
    assert script["identical"] is True
    assert script["exported_by"] == f"fitvstape {__version__}"


def test_text_format_prints_the_epoch_table_weights_and_verdict(tmp_path, monkeypatch, capsys):
    # `python fit_vs_tape.py`, run in this process to spare a second TensorFlow start-up.
    script = export(SMALL, tmp_path)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # the script's setdefault leaves it as it is
    monkeypatch.setattr(sys, "argv", [str(script)])
    runpy.run_path(str(script), run_name="__main__")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "fit", "loss", "tape", "loss", "|fit", "-", "tape|"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "3"]
    assert [line.split()[0] for line in lines[5:8]] == ["parameter", "kernel[0]", "bias"]
    assert lines[-1] == "fit and tape agree bit for bit over 3 epochs."


# -- the script stands alone and reads like code --------------------------------------------------


def test_script_imports_nothing_from_fitvstape_and_compiles(tmp_path):
    for name, script in some_configs(tmp_path).items():
        assert "fitvstape" not in imported_modules(script), name
        assert imported_modules(script) <= STANDALONE_MODULES, name
        compile(script, f"{name}.py", "exec")


def test_settings_are_plain_constants_that_round_trip_exactly():
    awkward = 0.1 + 0.2  # 0.30000000000000004: only repr writes it back exactly
    script = render_script(
        resolve(None, {"samples": 7, "true_weights": (awkward, -1.0), "learning_rate": awkward, "seed": 3})
    )
    constants = module_constants(script)
    assert constants["SAMPLES"] == 7
    assert constants["TRUE_WEIGHTS"] == (awkward, -1.0)
    assert constants["LEARNING_RATE"] == awkward
    assert constants["SEED"] == 3
    assert constants["EPOCHS"] == 10 and constants["BATCH_SIZE"] == 32 and constants["SHUFFLE"] is True


def test_only_the_chosen_optimizer_loss_and_regulariser_appear():
    plain = render_script(resolve(None, {}))
    assert "keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=MOMENTUM, nesterov=NESTEROV)" in plain
    assert "keras.losses.MeanSquaredError()" in plain
    assert "BETA_1" not in plain and "L1L2" not in plain and "model.losses]" not in plain

    tuned = render_script(
        resolve(None, {"optimizer": "adam", "loss": "huber", "huber_delta": 0.5, "l1": 0.1})
    )
    constants = module_constants(tuned)
    assert {"BETA_1": 0.9, "BETA_2": 0.999, "EPSILON": 1e-7, "HUBER_DELTA": 0.5}.items() <= constants.items()
    assert "MOMENTUM" not in constants
    assert "keras.losses.Huber(delta=HUBER_DELTA)" in tuned
    assert "keras.regularizers.L1L2(l1=L1, l2=L2)" in tuned
    assert "tf.reduce_sum(tf.stack([loss, *model.losses]))" in tuned


def test_the_docstring_settings_are_a_config_file_for_the_same_run(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text(CSV_TEXT, encoding="utf-8")
    for settings in (ADAM_HUBER_L2, {"csv": csv, **CSV}, {"batch_size": "full", "true_weights": (1.5, -2.0)}):
        config = resolve(None, settings)
        docstring = ast.get_docstring(ast.parse(render_script(config)))
        (tmp_path / "exported.toml").write_text(docstring[docstring.index("[data]") :], encoding="utf-8")
        reloaded = resolve(tmp_path / "exported.toml")

        assert reloaded.to_dict()["training"] == config.to_dict()["training"]
        for a, b in zip(as_arrays(config), as_arrays(reloaded)):
            np.testing.assert_array_equal(a, b)


def as_arrays(config):
    data = load(config.data, config.training.seed)
    return data.x, data.y


def test_exported_scripts_are_ruff_clean(tmp_path):
    # One ruff run over many exports; ruff starts in milliseconds, unlike a TensorFlow script.
    for name, script in some_configs(tmp_path).items():
        (tmp_path / f"{name.replace('-', '_')}.py").write_text(script, encoding="utf-8")
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(pyproject), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


def test_export_command_writes_the_script(tmp_path):
    target = tmp_path / "loop.py"
    result = CliRunner().invoke(cli, ["export", "--samples", "40", "--optimizer", "adam", "-o", str(target)])
    assert result.exit_code == 0, result.output
    script = target.read_text()
    assert "GradientTape" in script and "apply_gradients" in script and "model.fit(" in script
    compile(script, str(target), "exec")


def test_export_needs_an_output_file_and_refuses_a_bad_csv(tmp_path):
    assert CliRunner().invoke(cli, ["export"]).exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,2\n3\n")
    result = CliRunner().invoke(cli, ["export", "--data", str(bad), "-o", str(tmp_path / "x.py")])
    assert result.exit_code == 2 and "row 3" in result.output
    assert not (tmp_path / "x.py").exists()
