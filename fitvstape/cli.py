"""The command line: parse, call one library function, render. The only module that prints.

TensorFlow is imported only inside the commands that train, so ``--help``, ``--version`` and
every validation error answer instantly.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fitvstape import __version__
from fitvstape.catalog import BENCH_METHODS
from fitvstape.config import FULL_BATCH, SCHEMA, Setting
from fitvstape.errors import DistributedError, InputError
from fitvstape.pitfalls import PITFALLS

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
FORMATS = ("text", "json", "markdown")
REPORT_WIDTH = 100


class _BatchSize(click.ParamType):
    name = "batch_size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) or value == FULL_BATCH:
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f'{value!r} is not an integer or "{FULL_BATCH}"', param, ctx)


class _Floats(click.ParamType):
    name = "floats"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)


def _option(setting: Setting) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option for one schema setting. Defaults are None: unset flags don't override."""
    default = setting.default()
    shown = setting.option is None and default is not None
    help_text = f"{setting.help} [default: {_show(default)}]" if shown else setting.help
    if setting.kind == "bool":
        name = setting.cli_flag[2:]
        return click.option(f"--{name}/--no-{name}", setting.key, default=None, help=help_text)
    kind = {
        "int": click.INT,
        "float": click.FLOAT,
        "str": click.STRING,
        "path": click.Path(path_type=Path, dir_okay=False),
        "batch_size": _BatchSize(),
        "floats": _Floats(),
        "choice": click.Choice(setting.choices),
    }[setting.kind]
    metavar = {"batch_size": "INT|full", "floats": "W1,W2,...", "path": "PATH.csv"}.get(setting.kind)
    return click.option(
        setting.cli_flag, setting.key, type=kind, default=None, metavar=metavar, help=help_text
    )


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def comparison_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` and ``check``: the training options, output, and ``--pitfall``."""
    func = click.option(
        "--pitfall",
        "pitfalls",
        multiple=True,
        type=click.Choice(list(PITFALLS)),
        help="Write this mistake into the tape loop (repeatable); see `fitvstape pitfalls`.",
    )(func)
    func = click.option(
        "--logdir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Write both paths' losses and weights as TensorBoard scalars under DIR/fit and DIR/tape.",
    )(func)
    func = click.option(
        "--plot",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Draw both loss curves and |Δ| to FILE.png (needs matplotlib: fitvstape[plot]).",
    )(func)
    return training_options(func)


def setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options built from the config schema, plus ``--config``."""
    for setting in reversed(SCHEMA):
        func = _option(setting)(func)
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A TOML config file; flags override it.",
    )(func)


def training_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every training command shares, built from the config schema, plus output."""
    func = setting_options(func)
    func = click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write the report to FILE (atomically) instead of stdout.",
    )(func)
    return format_option(FORMATS)(func)


def format_option(formats: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format``, the same on every command: text for people, the others for machines."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(formats),
        default="text",
        show_default=True,
        help="Output format.",
    )


class _Group(click.Group):
    """Runs commands so that every usage error is one line, ``Error: ...``, and exit status 2."""

    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            hint = f"Try '{exc.ctx.command_path} --help' for help." if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}", err=True)
            if hint:
                click.echo(hint, err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


class BadInput(click.ClickException):
    """An :class:`InputError` on its way out: ``Error: <message>``, exit status 2."""

    exit_code = EXIT_BAD_INPUT


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="fitvstape")
def cli() -> None:
    """Train one linear regression with model.fit() and with a GradientTape loop, and compare.

    Both paths start from the same weights, see the same batches in the same order, and report
    each epoch's loss the way fit does. Set up the same way, they agree bit for bit on CPU.

    \b
    Examples:
      fitvstape run --epochs 10 --lr 0.01
      fitvstape run --optimizer adam --batch-size full --format json
      fitvstape check --config configs/default.toml
    """


@cli.command()
@comparison_options
def run(
    config_path: Path | None,
    output_format: str,
    output: Path | None,
    pitfalls: tuple[str, ...],
    logdir: Path | None,
    plot: Path | None,
    **flags: Any,
) -> None:
    """Train both ways and print the comparison tables.

    Exits 0 whether or not the paths agree (a diverged run is reported, not a crash); use
    ``check`` to gate on agreement.
    """
    from fitvstape import report

    result = _compare(config_path, output, flags, pitfalls, logdir, plot)
    _write_sinks(result, logdir, plot)
    _emit_as(output_format, output, result, report.to_json, report.markdown, report.text)


@cli.command()
@comparison_options
@click.option(
    "--junit-xml",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a JUnit XML report: one testcase per epoch loss and per weight.",
)
def check(
    config_path: Path | None,
    output_format: str,
    output: Path | None,
    pitfalls: tuple[str, ...],
    logdir: Path | None,
    plot: Path | None,
    junit_xml: Path | None,
    **flags: Any,
) -> None:
    """Train both ways and exit 0 if they agree, 1 if they differ or diverge.

    Agreement means |fit - tape| <= atol + rtol*|fit| for every epoch loss and every weight.
    Both tolerances default to 0: exact equality, which is what the two paths reach on CPU
    when set up the same way.
    """
    from fitvstape import report

    result = _compare(config_path, output, flags, pitfalls, logdir, plot)
    _write_sinks(result, logdir, plot, junit_xml)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        from fitvstape.sinks import append_step_summary

        append_step_summary(report.markdown(result), Path(summary))
    if output_format == "text":
        _emit(report.verdict(result.comparison) + "\n", output)
    else:
        _emit_as(output_format, output, result, report.to_json, report.markdown, report.text)
    if not result.comparison.match:
        sys.exit(EXIT_MISMATCH)


@cli.command()
@format_option(("text", "json"))
def pitfalls(output_format: str) -> None:
    """List the common mistakes that make a tape loop disagree with fit, and their fixes."""
    from fitvstape import report

    if output_format == "json":
        click.echo(report.dumps({"pitfalls": [p.to_dict() for p in PITFALLS.values()]}), nl=False)
        return
    _emit(_render_plain(report.pitfall_list(list(PITFALLS.values()))), None)


@cli.command()
@training_options
def explain(config_path: Path | None, output_format: str, output: Path | None, **flags: Any) -> None:
    """Run the aligned comparison, then each pitfall alone, ranked by its effect.

    A pitfall that needs a setting to show (missing-regularization needs L2 > 0) turns that
    setting on for its row and says so.
    """
    from fitvstape import report
    from fitvstape.runner import explain as run_explain

    config = _resolve(config_path, output, flags)
    try:
        explanation = run_explain(config)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    except DistributedError as exc:
        raise click.ClickException(str(exc)) from None
    _emit_as(
        output_format,
        output,
        explanation,
        report.explanation_json,
        report.explanation_markdown,
        report.explanation_text,
    )


@cli.command()
@setting_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the script (FILE.py), atomically.",
)
def export(config_path: Path | None, output: Path, **flags: Any) -> None:
    """Write a standalone Python script that does both trainings exactly as configured.

    It depends only on tensorflow and numpy; run it with --format json and its `epochs` list
    equals `fitvstape run --format json`'s with the same options. Copy it if you want the code
    rather than the tool.
    """
    from fitvstape.data import load
    from fitvstape.export import render_script

    config = _resolve(config_path, output, flags)
    try:
        if config.data.csv is not None:
            load(config.data, config.training.seed, config.origins)  # refuse a bad CSV now
    except InputError as exc:
        raise BadInput(str(exc)) from None
    _emit(render_script(config), output)
    click.echo(f"wrote {output}: python {output} --format json", err=True)


@cli.command()
@training_options
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs per method; the median is over every timed epoch of every run.",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=click.Choice(list(BENCH_METHODS)),
    help="Time only this method (repeatable; fit is always timed as the reference).",
)
def bench(
    config_path: Path | None,
    output_format: str,
    output: Path | None,
    repeat: int,
    methods: tuple[str, ...],
    **flags: Any,
) -> None:
    """Time fit against GradientTape loops (eager, tf.function, whole epoch, XLA) per epoch.

    The first epoch of every run traces and compiles, so it is left out; the table shows the
    median, the spread, steps per second, the speed against fit, and whether each method's
    final weights equal fit's.
    """
    from fitvstape import report
    from fitvstape.bench import bench as run_bench

    config = _resolve(config_path, output, flags)
    progress = _Progress(total=len(methods or BENCH_METHODS), label="bench")
    try:
        with progress:
            result = run_bench(config, repeat, methods or tuple(BENCH_METHODS), progress.step)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    _emit_as(output_format, output, result, report.bench_json, report.bench_markdown, report.bench_text)


@cli.command()
@click.argument("expression")
@click.option("--at", "bindings", multiple=True, metavar="NAME=VALUE", help="Bind a variable (repeatable).")
@format_option(("text", "json"))
def grad(expression: str, bindings: tuple[str, ...], output_format: str) -> None:
    """Differentiate EXPRESSION with tf.GradientTape, checked by finite differences.

    The notebook's autodiff demo: `fitvstape grad "2*w**2 + 5" --at w=2` gives 13 and 8.0.
    Expressions may use numbers, bound variables, + - * / **, parentheses and sin, cos, tan,
    exp, log, sqrt, tanh, sigmoid, abs. Nothing else is evaluated.
    """
    from fitvstape import autodiff, report

    try:
        result = autodiff.gradient(expression, autodiff.parse_bindings(bindings))
    except InputError as exc:
        raise BadInput(str(exc)) from None
    if output_format == "json":
        click.echo(report.dumps(result.to_dict()), nl=False)
        return
    click.echo(f"{expression} = {result.value:.9g}")
    for name, value in result.gradients.items():
        fd = result.finite_difference[name]
        click.echo(f"d/d{name} = {value:.9g}   (tf.GradientTape; finite difference {fd:.9g})")


def _compare(
    config_path: Path | None,
    output: Path | None,
    flags: dict[str, Any],
    pitfalls: tuple[str, ...],
    logdir: Path | None = None,
    plot: Path | None = None,
) -> Any:
    from fitvstape.runner import run_comparison

    config = _resolve(config_path, output, flags)
    from fitvstape.sinks import check_available

    try:
        check_available(logdir, plot)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    progress = _Progress(total=2 * config.training.epochs, label="epochs")
    try:
        with progress:
            return run_comparison(config, pitfalls, on_epoch=lambda path, epoch: progress.step(path))
    except InputError as exc:
        raise BadInput(str(exc)) from None
    except DistributedError as exc:
        raise click.ClickException(str(exc)) from None


class _Progress:
    """A progress bar on stderr, shown only when stderr is a terminal and the work has taken
    longer than about two seconds, so quick runs and pipes stay clean."""

    DELAY_S = 2.0

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.started = 0.0
        self.bar: Any = None
        self.task: Any = None
        self.enabled = sys.stderr.isatty()

    def __enter__(self) -> _Progress:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def step(self, what: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is None and time.perf_counter() - self.started > self.DELAY_S:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task(self.label, total=self.total)
            self.bar.start()
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, description=f"{self.label}: {what}")


def _write_sinks(result: Any, logdir: Path | None, plot: Path | None, junit_xml: Path | None = None) -> None:
    """TensorBoard scalars, the loss plot and JUnit XML, each only when asked for."""
    from fitvstape import sinks

    try:
        if logdir is not None:
            sinks.write_tensorboard(result, logdir)
        if plot is not None:
            sinks.write_plot(result, plot)
        if junit_xml is not None:
            sinks.write_junit(result, junit_xml)
    except InputError as exc:
        raise BadInput(str(exc)) from None


def _resolve(config_path: Path | None, output: Path | None, flags: dict[str, Any]) -> Any:
    from fitvstape.config import resolve

    try:
        config = resolve(config_path, flags)
        _refuse_overwriting_inputs(output, config_path, config.data.csv)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    return config


def _refuse_overwriting_inputs(output: Path | None, *inputs: Path | None) -> None:
    if output is None:
        return
    for given in inputs:
        if given is not None and given.exists() and output.exists() and output.samefile(given):
            raise InputError(f"--output: {output} is an input of this run; refusing to overwrite it")
    if not output.parent.is_dir() and str(output.parent) not in ("", "."):
        raise InputError(f"--output: folder {output.parent} does not exist")


def _emit_as(
    output_format: str,
    output: Path | None,
    value: Any,
    as_json: Callable[[Any], dict[str, Any]],
    as_markdown: Callable[[Any], str],
    as_text: Callable[[Any], Any],
) -> None:
    _emit(_formatted(output_format, output is None, value, as_json, as_markdown, as_text), output)


def _formatted(
    output_format: str,
    styled: bool,
    value: Any,
    as_json: Callable[[Any], dict[str, Any]],
    as_markdown: Callable[[Any], str],
    as_text: Callable[[Any], Any],
) -> str:
    """``value`` through the report builder for ``output_format``: strict JSON, markdown, or rich."""
    from fitvstape import report

    if output_format == "json":
        return report.dumps(as_json(value))
    if output_format == "markdown":
        return as_markdown(value)
    return _render_plain(as_text(value), styled)


def _render_plain(renderable: Any, styled: bool = True) -> str:
    """A rich renderable as text: coloured at the terminal's width on a terminal, else plain."""
    from rich.console import Console

    buffer = io.StringIO()
    terminal = styled and sys.stdout.isatty()
    console = Console(
        file=buffer,
        width=os.get_terminal_size().columns if terminal else REPORT_WIDTH,
        force_terminal=terminal,
        color_system="auto" if terminal else None,
    )
    console.print(renderable)
    return buffer.getvalue()


def _emit(text: str, output: Path | None) -> None:
    """Print, or write ``output`` atomically: a temp file in the same folder, then a rename."""
    if output is None:
        click.echo(text, nl=False)
        return
    from fitvstape.files import atomic_open

    try:
        with atomic_open(output, "w") as fh:
            fh.write(text)
    except InputError as exc:
        raise BadInput(str(exc)) from None
