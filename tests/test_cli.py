"""The command line, driven the way a user drives it, through click's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fitvstape import __version__
from fitvstape.cli import cli

SMALL = ["--samples", "40", "--epochs", "3", "--batch-size", "16"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def small_json() -> dict:
    result = invoke("run", *SMALL, "--format", "json")
    assert result.exit_code == 0
    return json.loads(result.stdout)


def test_every_command_has_help_text():
    for name, command in cli.commands.items():
        assert command.help, name
        assert invoke(name, "--help").exit_code == 0


def test_run_and_check_take_the_same_training_options():
    run_opts = {p.name for p in cli.commands["run"].params}
    check_opts = {p.name for p in cli.commands["check"].params}
    assert check_opts - run_opts == {"junit_xml"}  # the gate alone writes JUnit XML
    assert run_opts <= check_opts


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["check", "--help"],
        ["pitfalls"],
        ["run", "--lr", "-1"],
        ["bench", "--repeat", "0"],
    ],
)
def test_help_version_pitfalls_and_bad_input_do_not_import_tensorflow(argv):
    code = (
        "import sys\n"
        "from fitvstape.cli import cli\n"
        "try:\n"
        f"    cli.main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_run_prints_both_tables_and_the_verdict():
    result = invoke("run", *SMALL)
    assert result.exit_code == 0
    out = result.stdout
    assert "Loss per epoch" in out and "Final weights" in out
    assert "MATCH: fit and tape agree bit for bit over 3 epochs." in out
    assert "TensorFlow" in out and "Keras" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_report_is_one_strict_document(small_json):
    doc = small_json
    assert set(doc) >= {"versions", "config", "epochs", "weights", "summary"}
    assert set(doc["versions"]) == {"fitvstape", "tensorflow", "keras"}
    assert doc["config"]["training"]["epochs"] == 3
    assert doc["config"]["training"]["batch_size"] == 16
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2, 3]
    assert all(e["fit_loss"] == e["tape_loss"] and e["abs_diff"] == 0 for e in doc["epochs"])
    assert set(doc["weights"]) == {"initial", "fit", "tape", "closed_form"}
    assert len(doc["weights"]["fit"]["kernel"]) == 1 and len(doc["weights"]["fit"]["bias"]) == 1
    summary = doc["summary"]
    assert summary["match"] is True
    assert summary["max_abs_loss_diff"] == 0 and summary["max_abs_weight_diff"] == 0
    assert summary["max_ulp_diff"] == 0
    assert summary["diverged"] == {"fit": None, "tape": None}


def test_markdown_report_has_github_tables():
    result = invoke("run", *SMALL, "--format", "markdown")
    assert result.exit_code == 0
    assert "| epoch | fit loss | tape loss |" in result.stdout
    assert "| parameter | initial | fit | tape |" in result.stdout


def test_output_writes_the_report_to_a_file_and_prints_nothing(tmp_path):
    target = tmp_path / "report.json"
    result = invoke("run", *SMALL, "--format", "json", "--output", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(target.read_text())["summary"]["match"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left behind


def test_check_passes_with_a_short_verdict():
    result = invoke("check", *SMALL)
    assert result.exit_code == 0
    assert result.stdout.strip() == "MATCH: fit and tape agree bit for bit over 3 epochs."


def test_diverged_run_is_reported_not_crashed_and_fails_check():
    blow_up = ["--samples", "40", "--epochs", "4", "--lr", "1e6", "--batch-size", "full"]
    ran = invoke("run", *blow_up, "--format", "json")
    assert ran.exit_code == 0
    doc = json.loads(ran.stdout)  # strict JSON: inf and nan became null
    assert doc["summary"]["diverged"]["fit"] is not None
    assert doc["summary"]["diverged"]["tape"] is not None
    assert doc["summary"]["match"] is False
    checked = invoke("check", *blow_up)
    assert checked.exit_code == 1
    assert checked.stdout.startswith("DIVERGED")


def test_same_inputs_same_numbers_and_another_seed_changes_them(small_json):
    again = json.loads(invoke("run", *SMALL, "--format", "json").stdout)
    other = json.loads(invoke("run", *SMALL, "--seed", "7", "--format", "json").stdout)
    for doc in (again, other):
        doc.pop("timings")
    first = dict(small_json)
    first.pop("timings")
    assert again == first
    assert other["epochs"] != first["epochs"]
    assert other["weights"]["initial"] != first["weights"]["initial"]


def test_grad_is_the_notebooks_autodiff_demo():
    result = invoke("grad", "2*w**2 + 5", "--at", "w=2")
    assert result.exit_code == 0
    assert "2*w**2 + 5 = 13" in result.stdout
    assert "d/dw = 8   (tf.GradientTape" in result.stdout
    doc = json.loads(invoke("grad", "2*w**2 + 5", "--at", "w=2", "--format", "json").stdout)
    assert doc["value"] == 13.0 and doc["gradients"] == {"w": 8.0}
    assert abs(doc["finite_difference"]["w"] - 8.0) < 1e-6  # float64 central difference, h = 2e-6


@pytest.mark.parametrize(
    "expression", ["__import__('os').system('true')", "w.__class__", "open('/etc/passwd')", "lambda: w"]
)
def test_grad_refuses_anything_but_arithmetic(expression):
    result = CliRunner().invoke(cli, ["grad", expression, "--at", "w=1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_check_writes_tensorboard_plot_junit_and_the_step_summary(tmp_path, monkeypatch):
    """The CLI wiring of fitvstape/sinks.py; the sinks themselves are tested in test_sinks.py."""
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["--logdir", str(tmp_path / "tb"), "--plot", str(tmp_path / "loss.png")]
    result = invoke("check", *SMALL, *args, "--junit-xml", str(tmp_path / "junit.xml"))
    assert result.exit_code == 0
    assert {p.name for p in (tmp_path / "tb").iterdir()} >= {"fit", "tape"}
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<testsuite" in (tmp_path / "junit.xml").read_text()
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "fitvstape: model.fit vs GradientTape" in text


def test_json_timings_tell_the_first_epoch_apart(small_json):
    timings = small_json["timings"]
    for path in ("fit", "tape"):
        assert timings[f"{path}_first_epoch_s"] == timings[f"{path}_epoch_s"][0]
        assert timings[f"{path}_later_epoch_s_median"] > 0
        assert timings[f"{path}_s"] == pytest.approx(sum(timings[f"{path}_epoch_s"]))


def test_no_progress_bar_when_stderr_is_not_a_terminal():
    result = CliRunner().invoke(cli, ["run", *SMALL, "--format", "json"])
    assert result.stderr == ""
    json.loads(result.stdout)


@pytest.mark.parametrize(
    ("flag", "package", "extra"),
    [("--logdir", "tensorboard", "tensorboard"), ("--plot", "matplotlib", "plot")],
)
def test_a_sink_without_its_package_is_refused_before_training(flag, package, extra, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    result = CliRunner().invoke(cli, ["run", flag, str(tmp_path / "out.png")])
    assert result.exit_code == 2
    assert f"{flag} needs {package}: pip install 'fitvstape[{extra}]'" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--replicas", "0"], "--replicas"),
        (["--workers", "0"], "--workers"),
        (["--replicas", "2", "--workers", "2"], "--replicas and --workers"),
        (["--pitfall", "distributed-loss-scale"], "--replicas"),
    ],
)
def test_bad_distribution_settings_are_refused(args, named):
    result = CliRunner().invoke(cli, ["run", "--samples", "20", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output


def test_verdict_says_which_of_losses_and_weights_differ():
    result = invoke("check", *SMALL, "--pitfall", "unweighted-epoch-loss")
    assert result.exit_code == 1
    assert result.stdout.startswith("DIFFER: worst epoch")
    assert result.stdout.rstrip().endswith("final weights equal.")


def test_output_file_gets_the_usual_permissions(tmp_path):
    target = tmp_path / "report.md"
    assert invoke("check", *SMALL, "--format", "markdown", "-o", str(target)).exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert "Δ" in target.read_text(encoding="utf-8")
