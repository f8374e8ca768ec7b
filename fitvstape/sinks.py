"""Where a finished comparison lands besides stdout: TensorBoard, a plot, JUnit XML, a CI summary.

Every sink is a function of a :class:`~fitvstape.runner.RunResult` and does no training. Files are
written atomically (a temp file in the same folder, then :func:`os.replace`), so a reader never
sees half a plot or half a JUnit report. TensorFlow and matplotlib are imported inside the
functions that need them, so importing this module costs nothing.

- :func:`write_tensorboard`: event files for ``tensorboard --logdir``, the two paths overlaid.
- :func:`write_plot`: the loss curves and the per-epoch ``|Δ loss|`` as an image.
- :func:`write_junit`: one test case per epoch loss and per weight, for CI test reporters.
- :func:`append_step_summary`: markdown appended to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fitvstape.compare import ulp_distance
from fitvstape.errors import InputError
from fitvstape.files import atomic_open
from fitvstape.report import verdict

if TYPE_CHECKING:
    from fitvstape.runner import RunResult

PLOT_INSTALL_HINT = "--plot needs matplotlib: pip install 'fitvstape[plot]'"
TENSORBOARD_INSTALL_HINT = "--logdir needs tensorboard: pip install 'fitvstape[tensorboard]'"


def check_available(logdir: Path | None = None, plot: Path | None = None) -> None:
    """Refuse, before any training, a sink whose optional package is not installed.

    TensorFlow 2.21 no longer installs TensorBoard, and matplotlib is an extra.
    """
    if logdir is not None and not _installed("tensorboard"):
        raise InputError(TENSORBOARD_INSTALL_HINT)
    if plot is not None and not _installed("matplotlib"):
        raise InputError(PLOT_INSTALL_HINT)


def _installed(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


# -- TensorBoard --------------------------------------------------------------------------------


def write_tensorboard(result: RunResult, logdir: Path) -> list[Path]:
    """Write the run as TensorBoard event files; returns ``[logdir/fit, logdir/tape, logdir/diff]``.

    ``fit`` and ``tape`` are two runs that use the same tags, so TensorBoard draws them in one
    chart: ``loss`` at steps 1..E (the loss each path reported for that epoch) and
    ``weights/kernel[0]``, ..., ``weights/bias`` at step E (the final weights). ``diff`` holds
    ``abs_diff``, the per-epoch ``|fit loss - tape loss|``, and the verdict as text.

    TensorBoard stores scalars as float32: the losses and weights are float32 values to begin
    with, so they are stored exactly; ``abs_diff`` is rounded to the nearest float32.
    Writing into a logdir used before adds new event files next to the old ones, and TensorBoard
    shows both; point each run at a fresh folder.
    """
    if logdir.exists() and not logdir.is_dir():
        raise InputError(f"{logdir} is a file; a TensorBoard logdir must be a folder")
    check_available(logdir=logdir)
    from fitvstape.backend import tensorflow

    tf = tensorflow()
    c = result.comparison
    last = len(c.epochs)

    runs = {
        "fit": [("loss", d.fit_loss, d.epoch) for d in c.epochs]
        + [(f"weights/{p.name}", p.fit, last) for p in c.params],
        "tape": [("loss", d.tape_loss, d.epoch) for d in c.epochs]
        + [(f"weights/{p.name}", p.tape, last) for p in c.params],
        "diff": [("abs_diff", d.abs_diff, d.epoch) for d in c.epochs],
    }
    written = []
    for name, points in runs.items():
        run_dir = logdir / name
        writer = tf.summary.create_file_writer(str(run_dir))
        try:
            with writer.as_default():
                for tag, value, step in points:
                    tf.summary.scalar(tag, value, step=step)
                if name == "diff":
                    tf.summary.text("verdict", verdict(c), step=last)
            writer.flush()
        finally:
            writer.close()
        written.append(run_dir)
    return written


# -- the plot -----------------------------------------------------------------------------------


def write_plot(result: RunResult, path: Path) -> None:
    """Draw both loss curves and the per-epoch ``|Δ loss|``, titled with the verdict.

    The format follows the file's suffix (``.png`` when there is none; ``.svg``, ``.pdf`` work).
    Raises :class:`InputError` when matplotlib is not installed or the suffix is not a format.
    """
    try:
        import matplotlib  # noqa: F401  (first, so a missing package fails here and not halfway)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "matplotlib":
            raise  # matplotlib is there but broken: show the real error
        raise InputError(PLOT_INSTALL_HINT) from None

    c = result.comparison
    # A Figure with its own Agg canvas, not pyplot: no global backend switch, nothing left open.
    fig = Figure(figsize=(8, 7), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    fmt = path.suffix[1:].lower() or "png"
    if fmt not in canvas.get_supported_filetypes():
        known = ", ".join(sorted(canvas.get_supported_filetypes()))
        raise InputError(f"{path}: cannot draw a plot as {fmt!r} (use one of: {known})")

    epochs = [d.epoch for d in c.epochs]
    loss_ax, diff_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])

    # Bit-identical curves lie on top of each other: fit is a thick solid line and tape a dashed
    # line with hollow markers on top of it, so both stay visible wherever they coincide.
    loss_ax.plot(epochs, [_finite(d.fit_loss) for d in c.epochs], "-", lw=3, alpha=0.6, label="model.fit")
    loss_ax.plot(
        epochs,
        [_finite(d.tape_loss) for d in c.epochs],
        "--",
        marker="o",
        markerfacecolor="none",
        label="GradientTape loop",
    )
    loss_ax.set_ylabel("loss (reported per epoch)")
    loss_ax.set_title("Loss per epoch", loc="left")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)

    _draw_differences(diff_ax, c.epochs)
    diff_ax.set_xlabel("epoch")
    diff_ax.set_title("|Δ loss| = |fit − tape| per epoch", loc="left")
    diff_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    diff_ax.grid(alpha=0.3)

    fig.suptitle(verdict(c), wrap=True, color="tab:green" if c.match else "tab:red")
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=120)


def _draw_differences(ax: Any, diffs: Any) -> None:
    """``|Δ loss|`` per epoch on a log axis, with zeros and non-finite values shown, not dropped.

    A log axis cannot show 0, and 0 is the interesting value here. So:

    - all differences 0 (the expected case): a linear axis with a single tick at 0, a marker on
      it for every epoch, and the words "bit-identical", so an empty-looking panel never has to
      be interpreted;
    - some non-zero: those on a log axis; epochs at exactly 0 as triangles on the bottom edge
      and non-finite ones as crosses on the top edge, each named in the legend.
    """
    from matplotlib.transforms import blended_transform_factory

    epochs = [d.epoch for d in diffs]
    values = [d.abs_diff for d in diffs]
    if all(v == 0 for v in values):
        ax.plot(epochs, [0.0] * len(epochs), "o", label="|Δ| = 0")
        ax.set_ylim(-1, 1)
        ax.set_yticks([0])
        ax.text(
            0.5,
            0.7,
            "bit-identical: |Δ| = 0 every epoch",
            transform=ax.transAxes,
            ha="center",
            color="tab:green",
        )
        return

    nonzero = [(e, v) for e, v in zip(epochs, values) if math.isfinite(v) and v > 0]
    if nonzero:
        ax.plot(*zip(*nonzero), "o-", color="tab:red", label="|Δ| > 0")
        ax.set_yscale("log")
    edge = blended_transform_factory(ax.transData, ax.transAxes)  # x in epochs, y in 0..1
    zeros = [e for e, v in zip(epochs, values) if v == 0]
    if zeros:
        ax.plot(zeros, [0.0] * len(zeros), "v", transform=edge, clip_on=False, label="|Δ| = 0")
    broken = [e for e, v in zip(epochs, values) if not math.isfinite(v)]
    if broken:
        ax.plot(broken, [1.0] * len(broken), "x", color="black", transform=edge, clip_on=False)
        ax.plot([], [], "x", color="black", label="non-finite")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: edge markers stay visible


def _finite(value: float) -> float:
    """NaN for inf and NaN, so a diverged epoch is a gap in the curve, not a broken y-range."""
    return value if math.isfinite(value) else math.nan


# -- JUnit XML ----------------------------------------------------------------------------------


def write_junit(result: RunResult, path: Path) -> None:
    """A JUnit XML report: one test case per epoch loss, per final weight, and one for divergence.

    A value passes when ``|fit - tape| <= atol + rtol * |fit|`` with the comparison's tolerance
    (the rule of :mod:`fitvstape.compare`; any non-finite value fails). Each failure's message
    names the value and gives fit, tape, ``|Δ|``, the ulp distance and the tolerance.
    """
    c = result.comparison
    rtol, atol = c.tolerance.rtol, c.tolerance.atol
    cases: list[ET.Element] = []

    def case(
        classname: str, name: str, problem: str | None, detail: str = "", kind: str = "mismatch"
    ) -> None:
        element = ET.Element("testcase", classname=classname, name=name)
        if problem is not None:
            failure = ET.SubElement(element, "failure", message=problem, type=kind)
            failure.text = detail or problem
        cases.append(element)

    def check(classname: str, name: str, fit: float, tape: float) -> None:
        if _agree(fit, tape, rtol, atol):
            case(classname, name, None)
            return
        ulp = ulp_distance(fit, tape)
        numbers = {
            "fit": f"{fit:.9g}",
            "tape": f"{tape:.9g}",
            "|Δ|": f"{abs(fit - tape):.3g}",
            "ulp": "-" if ulp is None else str(ulp),
            "rtol": f"{rtol:g}",
            "atol": f"{atol:g}",
        }
        message = (
            f"{name}: fit {numbers['fit']} != tape {numbers['tape']} "
            f"(|Δ| {numbers['|Δ|']}, {numbers['ulp']} ulp; rtol={numbers['rtol']}, atol={numbers['atol']})"
        )
        case(classname, name, message, "".join(f"{key}: {value}\n" for key, value in numbers.items()))

    for d in c.epochs:
        check("fitvstape.loss", f"epoch {d.epoch}", d.fit_loss, d.tape_loss)
    for p in c.params:
        check("fitvstape.weights", p.name, p.fit, p.tape)
    diverged = [f"{name} from epoch {epoch}" for name, epoch in c.diverged.items() if epoch is not None]
    case(
        "fitvstape",
        "diverged",
        f"non-finite loss or weights: {'; '.join(diverged)}" if diverged else None,
        kind="diverged",
    )

    failures = sum(1 for element in cases if element.find("failure") is not None)
    seconds = f"{result.fit.seconds + result.tape.seconds:.3f}"
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": "0"}
    root = ET.Element("testsuites", name="fitvstape", time=seconds, **counts)
    suite = ET.SubElement(root, "testsuite", name="fitvstape", time=seconds, **counts)
    properties = ET.SubElement(suite, "properties")
    for key, value in {**result.versions, "rtol": f"{rtol:g}", "atol": f"{atol:g}"}.items():
        ET.SubElement(properties, "property", name=key, value=str(value))
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = verdict(c) + "\n"
    ET.indent(root)
    with atomic_open(path, "wb") as fh:
        ET.ElementTree(root).write(fh, encoding="utf-8", xml_declaration=True)
        fh.write(b"\n")


def _agree(fit: float, tape: float, rtol: float, atol: float) -> bool:
    """compare.py's rule for one pair of values; non-finite values never agree."""
    if not (math.isfinite(fit) and math.isfinite(tape)):
        return False
    return abs(fit - tape) <= atol + rtol * abs(fit)


# -- GitHub step summary ------------------------------------------------------------------------


def append_step_summary(markdown_text: str, path: Path) -> None:
    """Append ``markdown_text`` to a GitHub Actions step summary (``$GITHUB_STEP_SUMMARY``).

    Appends, never truncates: other steps and tools write to the same file. Creates the file if it
    is missing, and starts on a new line if the file does not end with one.
    """
    text = markdown_text if markdown_text.endswith("\n") else markdown_text + "\n"
    try:
        with path.open("a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    text = "\n" + text
            fh.write(text.encode("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot append to step summary {path}: {exc.strerror or exc}") from None


# -- helpers ------------------------------------------------------------------------------------
