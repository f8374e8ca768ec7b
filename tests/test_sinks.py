"""sinks.py: a finished comparison written to TensorBoard, a plot, JUnit XML and a step summary.

One real run trains once for this module (a bit-for-bit match). The other cases are made from it
without training again: the tape path's record is edited (one weight one float32 ulp up, a loss
made NaN, ...) and compared with :func:`fitvstape.compare.compare` again, so every failing case
is a real comparison result, not a hand-written one.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fitvstape.compare import compare
from fitvstape.config import CheckConfig
from fitvstape.errors import InputError
from fitvstape.model import Weights
from fitvstape.report import markdown, verdict
from fitvstape.runner import RunResult
from fitvstape.sinks import append_step_summary, write_junit, write_plot, write_tensorboard
from fitvstape.trainers.common import PathRun

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- the runs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result(comparison) -> RunResult:
    """The one real run: 30 samples, 3 epochs, batches of 8 (conftest's cache of run_comparison)."""
    run = comparison(samples=30, epochs=3, batch_size=8)
    assert run.comparison.match, "this module needs a passing run to start from"
    return run


def up_one_ulp(value: float) -> float:
    """The next float32 above ``value``."""
    return float(np.nextafter(np.float32(value), np.float32(np.inf)))


def with_tape(result: RunResult, tape: PathRun, check: CheckConfig | None = None) -> RunResult:
    """``result`` with a different tape path, compared again (with ``check``, or the run's own)."""
    comparison = compare(
        result.fit,
        tape,
        result.initial.flat(),
        [v for _, v in result.closed_form.flat()],
        check or result.config.check,
    )
    return dataclasses.replace(result, tape=tape, comparison=comparison)


def nudged_kernel(result: RunResult) -> PathRun:
    """The tape path with ``kernel[0]`` one float32 ulp higher: the smallest possible mismatch."""
    kernel = result.tape.weights.kernel.copy()
    kernel[0, 0] = np.nextafter(kernel[0, 0], np.float32(np.inf))
    weights = Weights(kernel=kernel, bias=result.tape.weights.bias.copy())
    return dataclasses.replace(result.tape, weights=weights)


def edited_losses(result: RunResult, **by_epoch: float) -> PathRun:
    """The tape path with some epoch losses replaced: ``edited_losses(result, epoch_3=nan)``."""
    losses = list(result.tape.epoch_losses)
    for key, value in by_epoch.items():
        losses[int(key.removeprefix("epoch_")) - 1] = value
    return dataclasses.replace(result.tape, epoch_losses=tuple(losses))


@pytest.fixture(scope="module")
def failing(result) -> RunResult:
    """kernel[0] differs by one ulp; every loss is still equal."""
    run = with_tape(result, nudged_kernel(result))
    assert not run.comparison.match and run.comparison.max_ulp_diff == 1
    return run


@pytest.fixture(scope="module")
def drifting(result) -> RunResult:
    """The epoch-2 loss differs by one ulp: |Δ loss| is 0, > 0, 0 over the three epochs."""
    return with_tape(result, edited_losses(result, epoch_2=up_one_ulp(result.tape.epoch_losses[1])))


@pytest.fixture(scope="module")
def diverged(result) -> RunResult:
    """The tape path's epoch-3 loss is NaN."""
    run = with_tape(result, edited_losses(result, epoch_3=math.nan))
    assert run.comparison.diverged == {"fit": None, "tape": 3}
    return run


# -- TensorBoard --------------------------------------------------------------------------------


def read_run(run_dir: Path) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every tensor summary in a run folder, as ``{tag: [(step, value), ...]}``.

    TF2 summaries are stored as tensors (plugin "scalars"), not as legacy scalar events.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from fitvstape.backend import tensorflow

    tf = tensorflow()
    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})  # 0: keep every event
    acc.Reload()
    return {
        tag: [(event.step, tf.make_ndarray(event.tensor_proto)) for event in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
    }


@pytest.fixture(scope="module")
def logdir(result, tmp_path_factory) -> Path:
    logdir = tmp_path_factory.mktemp("tensorboard")
    assert write_tensorboard(result, logdir) == [logdir / "fit", logdir / "tape", logdir / "diff"]
    return logdir


def test_tensorboard_writes_one_run_folder_per_path_and_one_for_the_difference(logdir):
    for run in ("fit", "tape", "diff"):
        assert list((logdir / run).glob("events.out.tfevents.*")), f"no event file in {run}/"


@pytest.mark.parametrize("path", ["fit", "tape"])
def test_tensorboard_loss_uses_the_same_tag_in_both_runs_so_they_overlay(result, logdir, path):
    losses = read_run(logdir / path)["loss"]
    assert [step for step, _ in losses] == [1, 2, 3]
    reported = getattr(result, path).epoch_losses
    assert [value for _, value in losses] == [np.float32(loss) for loss in reported]
    assert all(value.dtype == np.float32 for _, value in losses)


@pytest.mark.parametrize("path", ["fit", "tape"])
def test_tensorboard_final_weights_are_written_at_the_last_epoch(result, logdir, path):
    written = read_run(logdir / path)
    for name, value in getattr(result, path).weights.flat():
        assert written[f"weights/{name}"] == [(3, np.float32(value))]
    assert set(written) == {"loss", "weights/kernel[0]", "weights/bias"}


def test_tensorboard_diff_run_holds_abs_diff_per_epoch_and_the_verdict(result, logdir):
    written = read_run(logdir / "diff")
    assert written["abs_diff"] == [(1, 0.0), (2, 0.0), (3, 0.0)]
    [(step, text)] = written["verdict"]
    assert step == 3 and text.item().decode() == verdict(result.comparison)


def test_tensorboard_diff_run_shows_a_real_difference(drifting, tmp_path):
    write_tensorboard(drifting, tmp_path)
    diffs = [float(value) for _, value in read_run(tmp_path / "diff")["abs_diff"]]
    assert diffs[0] == 0 and diffs[2] == 0
    assert diffs[1] == np.float32(drifting.comparison.epochs[1].abs_diff) > 0


def test_tensorboard_refuses_a_file_as_logdir(result, tmp_path):
    not_a_folder = tmp_path / "logs"
    not_a_folder.write_text("")
    with pytest.raises(InputError, match="must be a folder"):
        write_tensorboard(result, not_a_folder)


# -- the plot -----------------------------------------------------------------------------------


def assert_png(path: Path) -> None:
    """A real PNG: the signature, and an image with rows, columns and colour channels."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, channels = matplotlib.image.imread(path).shape
    assert height > 100 and width > 100 and channels in (3, 4)


def test_plot_is_a_png_image(result, tmp_path):
    write_plot(result, tmp_path / "fit-vs-tape.png")
    assert_png(tmp_path / "fit-vs-tape.png")
    assert [p.name for p in tmp_path.iterdir()] == ["fit-vs-tape.png"], "a temp file was left behind"


@pytest.mark.parametrize("case", ["failing", "drifting", "diverged"])
def test_plot_draws_differences_and_divergence_too(request, tmp_path, case):
    """Zeros next to non-zero differences, and NaN losses, must not break the log axis."""
    write_plot(request.getfixturevalue(case), tmp_path / "plot.png")
    assert_png(tmp_path / "plot.png")


def svg_text(run: RunResult, path: Path) -> str:
    """The plot as SVG with its words kept as text, so a test can read them."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        write_plot(run, path)
    return path.read_text(encoding="utf-8")


def test_plot_of_a_bit_for_bit_match_says_so_instead_of_an_empty_log_axis(result, tmp_path):
    svg = svg_text(result, tmp_path / "plot.svg")
    assert "bit-identical: |Δ| = 0 every epoch" in svg
    assert verdict(result.comparison) in svg  # the title


def test_plot_of_a_difference_titles_it_with_the_verdict(drifting, tmp_path):
    svg = svg_text(drifting, tmp_path / "plot.svg")
    assert verdict(drifting.comparison).startswith("DIFFER")
    assert "DIFFER" in svg and "bit-identical" not in svg


def test_plot_replaces_an_existing_file(result, tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"an old plot")
    write_plot(result, target)
    assert_png(target)


def test_plot_refuses_a_suffix_that_is_not_an_image_format(result, tmp_path):
    with pytest.raises(InputError, match="cannot draw a plot as 'txt'"):
        write_plot(result, tmp_path / "plot.txt")
    assert not list(tmp_path.iterdir())


def test_plot_without_matplotlib_says_how_to_install_it(result, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(InputError) as error:
        write_plot(result, tmp_path / "plot.png")
    assert str(error.value) == "--plot needs matplotlib: pip install 'fitvstape[plot]'"
    assert not list(tmp_path.iterdir())


# -- JUnit XML ----------------------------------------------------------------------------------


def junit(run: RunResult, path: Path) -> ET.Element:
    """Write ``run`` as JUnit XML and parse it back; returns the one <testsuite>."""
    write_junit(run, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "fitvstape"
    assert (root.get("tests"), root.get("failures")) == (suite.get("tests"), suite.get("failures"))
    return suite


def failures(suite: ET.Element) -> dict[str, ET.Element]:
    """``{"classname name": <failure>}`` for every failing test case."""
    return {
        f"{case.get('classname')} {case.get('name')}": case.find("failure")
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }


def test_junit_has_a_case_per_epoch_loss_per_weight_and_one_for_divergence(result, tmp_path):
    suite = junit(result, tmp_path / "junit.xml")
    cases = [(case.get("classname"), case.get("name")) for case in suite.iter("testcase")]
    assert cases == [
        ("fitvstape.loss", "epoch 1"),
        ("fitvstape.loss", "epoch 2"),
        ("fitvstape.loss", "epoch 3"),
        ("fitvstape.weights", "kernel[0]"),
        ("fitvstape.weights", "bias"),
        ("fitvstape", "diverged"),
    ]
    assert suite.get("tests") == "6" and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert failures(suite) == {}
    assert suite.findtext("system-out").strip() == verdict(result.comparison)


def test_junit_one_ulp_off_fails_only_that_weight_and_gives_the_numbers(failing, tmp_path):
    suite = junit(failing, tmp_path / "junit.xml")
    assert suite.get("tests") == "6" and suite.get("failures") == "1"
    [(case, failure)] = failures(suite).items()
    assert case == "fitvstape.weights kernel[0]"
    assert failure.get("type") == "mismatch"

    kernel = failing.comparison.params[0]
    assert failure.get("message") == (
        f"kernel[0]: fit {kernel.fit:.9g} != tape {kernel.tape:.9g} "
        f"(|Δ| {kernel.abs_diff:.3g}, 1 ulp; rtol=0, atol=0)"
    )
    assert f"fit: {kernel.fit:.9g}\n" in failure.text and "ulp: 1\n" in failure.text


def test_junit_uses_the_comparisons_tolerance(result, tmp_path):
    """The same one-ulp difference passes with rtol=1e-6: the rule is compare.py's."""
    tolerant = with_tape(result, nudged_kernel(result), CheckConfig(rtol=1e-6))
    assert tolerant.comparison.match
    suite = junit(tolerant, tmp_path / "junit.xml")
    assert suite.get("failures") == "0"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["rtol"] == "1e-06" and properties["atol"] == "0"


def test_junit_divergence_fails_the_epoch_and_the_diverged_case(diverged, tmp_path):
    found = failures(junit(diverged, tmp_path / "junit.xml"))
    assert set(found) == {"fitvstape.loss epoch 3", "fitvstape diverged"}
    assert "tape nan" in found["fitvstape.loss epoch 3"].get("message")
    assert found["fitvstape diverged"].get("message") == "non-finite loss or weights: tape from epoch 3"


@pytest.mark.parametrize("case", ["result", "failing", "drifting", "diverged"])
def test_junit_fails_exactly_when_the_comparison_does_not_match(request, tmp_path, case):
    run = request.getfixturevalue(case)
    suite = junit(run, tmp_path / "junit.xml")
    assert (suite.get("failures") == "0") == run.comparison.match


def test_junit_replaces_an_existing_file_and_leaves_no_temp_file(failing, tmp_path):
    target = tmp_path / "junit.xml"
    target.write_text("<not-junit/>")
    junit(failing, target)
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]


def test_junit_into_a_missing_folder_is_an_input_error(result, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_junit(result, tmp_path / "missing" / "junit.xml")


# -- GitHub step summary ------------------------------------------------------------------------


def test_step_summary_is_created_and_then_appended_to(result, tmp_path):
    summary = tmp_path / "step_summary.md"
    append_step_summary(markdown(result), summary)
    append_step_summary("second run\n", summary)
    assert summary.read_text(encoding="utf-8") == markdown(result) + "second run\n"


def test_step_summary_keeps_what_other_steps_wrote(tmp_path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("## an earlier step", encoding="utf-8")  # no final newline
    append_step_summary("## fitvstape", summary)
    assert summary.read_text(encoding="utf-8") == "## an earlier step\n## fitvstape\n"
