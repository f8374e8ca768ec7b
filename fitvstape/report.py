"""A :class:`~fitvstape.runner.RunResult` as a JSON document, rich tables, or GitHub markdown.

Builders return values (a dict, renderables, a string) and never print: the CLI decides where
output goes. Loss and weight values are shown with 9 significant digits, enough to tell any two
float32 values apart, so equal-looking numbers in a table are equal numbers.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fitvstape.bench import BenchResult, BenchRow
from fitvstape.compare import Comparison
from fitvstape.pitfalls import Pitfall
from fitvstape.runner import Explanation, PitfallRow, RunResult


def to_json(result: RunResult) -> dict[str, Any]:
    """The machine-readable report. Non-finite numbers become null in :func:`dumps`."""
    c = result.comparison
    return {
        "versions": result.versions,
        "config": result.config.to_dict(),
        "pitfalls": list(result.pitfalls),
        "distribution": None if result.distribution is None else result.distribution.to_dict(),
        "data": result.data.describe(),
        "plan": {
            "batch_size": result.plan.batch_size,
            "steps_per_epoch": result.plan.steps_per_epoch,
            "last_batch_size": result.plan.batch_sizes[-1],
        },
        "epochs": [
            {"epoch": d.epoch, "fit_loss": d.fit_loss, "tape_loss": d.tape_loss, "abs_diff": d.abs_diff}
            for d in c.epochs
        ],
        "weights": {
            "initial": result.initial.to_dict(),
            "fit": result.fit.weights.to_dict(),
            "tape": result.tape.weights.to_dict(),
            "closed_form": result.closed_form.to_dict(),
        },
        "summary": {
            "max_abs_loss_diff": c.max_abs_loss_diff,
            "max_abs_weight_diff": c.max_abs_weight_diff,
            "max_ulp_diff": c.max_ulp_diff,
            "worst_epoch": c.worst_epoch.epoch,
            "worst_parameter": c.worst_param.name,
            "diverged": c.diverged,
            "within_tolerance": c.within_tolerance,
            "match": c.match,
            "verdict": verdict(c),
        },
        "timings": {
            "fit_s": result.fit.seconds,
            "tape_s": result.tape.seconds,
            "tape_mode": "eager" if result.config.training.eager else "compiled epoch",
            **{
                f"{k}_{name}": v
                for k, path in (("fit", result.fit), ("tape", result.tape))
                for name, v in _epoch_timings(path.epoch_seconds).items()
            },
            "fit_epoch_s": list(result.fit.epoch_seconds),
            "tape_epoch_s": list(result.tape.epoch_seconds),
        },
    }


def dumps(document: dict[str, Any]) -> str:
    """Strict JSON (no NaN or Infinity tokens): non-finite floats are written as null."""
    return json.dumps(_finite_or_none(document), indent=2, allow_nan=False) + "\n"


def verdict(c: Comparison) -> str:
    """One line: MATCH, DIFFER or DIVERGED, naming the worst epoch or parameter."""
    diverged = [f"{path} from epoch {epoch}" for path, epoch in c.diverged.items() if epoch]
    if diverged:
        return f"DIVERGED: non-finite loss or weights ({'; '.join(diverged)})."
    exact = c.tolerance.rtol == 0 and c.tolerance.atol == 0
    tol = "" if exact else f" (rtol={c.tolerance.rtol:g}, atol={c.tolerance.atol:g})"
    if c.match:
        if c.max_abs_loss_diff == 0 and c.max_abs_weight_diff == 0:
            return f"MATCH: fit and tape agree bit for bit over {len(c.epochs)} epochs."
        return (
            f"MATCH within tolerance{tol}: max |Δ loss| {_g(c.max_abs_loss_diff)}, "
            f"max |Δ weight| {_g(c.max_abs_weight_diff)} ({c.max_ulp_diff} ulp)."
        )
    e, p = c.worst_epoch, c.worst_param
    losses = f"worst epoch {e.epoch} (|Δ loss| {_g(e.abs_diff)})" if e.abs_diff != 0 else "losses equal"
    weights = (
        f"worst parameter {p.name} (|Δ| {_g(p.abs_diff)}, {p.ulp_diff} ulp)"
        if p.abs_diff != 0
        else "final weights equal"
    )
    return f"DIFFER{' beyond tolerance' + tol if tol else ''}: {losses}, {weights}."


def text(result: RunResult) -> RenderableType:
    """The human report: the epoch table, the weights table, the verdict and the versions."""
    c = result.comparison
    epochs = Table(title="Loss per epoch")
    for name in ("epoch", "fit loss", "tape loss", "|Δ|"):
        epochs.add_column(name, justify="right")
    for d in c.epochs:
        epochs.add_row(str(d.epoch), _f(d.fit_loss), _f(d.tape_loss), _g(d.abs_diff))

    weights = Table(title="Final weights")
    for name in ("parameter", "initial", "fit", "tape", "|Δ|", "ulp", "least squares"):
        weights.add_column(name, justify="left" if name == "parameter" else "right")
    for p in c.params:
        weights.add_row(
            p.name,
            _f(p.initial),
            _f(p.fit),
            _f(p.tape),
            _g(p.abs_diff),
            "-" if p.ulp_diff is None else str(p.ulp_diff),
            _f(p.closed_form),
        )

    style = "bold green" if c.match else "bold red"
    v = result.versions
    footer = (
        f"{_setup(result)}\n"
        f"{_timing_line('fit', result.fit.epoch_seconds)}\n"
        f"{_timing_line('tape', result.tape.epoch_seconds)}\n"
        f"TensorFlow {v['tensorflow']}, Keras {v['keras']}, fitvstape {v['fitvstape']}"
    )
    return Group(epochs, weights, Text(verdict(c), style=style), Text(footer, style="dim"))


def markdown(result: RunResult) -> str:
    """The same tables as GitHub markdown, for CI job summaries."""
    c = result.comparison
    lines = [
        "## fitvstape: model.fit vs GradientTape",
        "",
        f"**{verdict(c)}**",
        "",
        _setup(result),
        "",
        "| epoch | fit loss | tape loss | \\|Δ\\| |",
        "| ---: | ---: | ---: | ---: |",
        *(f"| {d.epoch} | {_f(d.fit_loss)} | {_f(d.tape_loss)} | {_g(d.abs_diff)} |" for d in c.epochs),
        "",
        "| parameter | initial | fit | tape | \\|Δ\\| | ulp | least squares |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {p.name} | {_f(p.initial)} | {_f(p.fit)} | {_f(p.tape)} | {_g(p.abs_diff)} "
            f"| {'-' if p.ulp_diff is None else p.ulp_diff} | {_f(p.closed_form)} |"
            for p in c.params
        ),
        "",
        f"TensorFlow {result.versions['tensorflow']}, Keras {result.versions['keras']}, "
        f"fitvstape {result.versions['fitvstape']}",
    ]
    return "\n".join(lines) + "\n"


def _epoch_timings(seconds: tuple[float, ...]) -> dict[str, float | None]:
    """The first epoch (tracing and compiling) apart from the median of the rest."""
    median = statistics.median(seconds[1:]) if len(seconds) > 1 else None
    return {"first_epoch_s": seconds[0] if seconds else None, "later_epoch_s_median": median}


def _timing_line(name: str, seconds: tuple[float, ...]) -> str:
    t = _epoch_timings(seconds)
    later = "" if t["later_epoch_s_median"] is None else f", then {t['later_epoch_s_median']:.3f} s/epoch"
    return f"{name} {sum(seconds):.2f} s (first epoch {t['first_epoch_s']:.2f} s{later})"


def _setup(result: RunResult) -> str:
    t = result.config.training
    d = result.data
    batch = (
        "full batch"
        if result.plan.steps_per_epoch == 1
        else (
            f"batch {result.plan.batch_size} ({result.plan.steps_per_epoch} steps, "
            f"last {result.plan.batch_sizes[-1]})"
        )
    )
    mistakes = f"\ntape loop with pitfalls: {', '.join(result.pitfalls)}" if result.pitfalls else ""
    if result.distribution is not None:
        info = result.distribution
        mistakes += (
            f"\n{info.strategy}: {info.replicas} replicas, {info.workers} worker(s) "
            f"on {', '.join(info.devices)}"
        )
    return (
        f"{d.source} data: {d.samples} samples x {d.features} feature{'s' * (d.features != 1)}, "
        f"seed {t.seed}{mistakes}\n"
        f"{t.epochs} epochs · {t.optimizer} lr={t.learning_rate:g} · {t.loss} · {batch} · "
        f"{'shuffled' if t.shuffle else 'in order'}"
    )


def _f(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.9g}"


def _g(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "0" if value == 0 else f"{value:.3g}"


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def pitfall_list(pitfalls: list[Pitfall]) -> RenderableType:
    """The pitfall catalogue as a table: name, what goes wrong, the fix."""
    table = Table(title="Why a GradientTape loop disagrees with fit", show_lines=True)
    table.add_column("pitfall", no_wrap=True)
    table.add_column("what goes wrong")
    table.add_column("fix")
    for p in pitfalls:
        table.add_row(p.name, p.explanation, p.fix)
    return table


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    """``explain --format json``: the aligned baseline and one row per pitfall, largest effect first."""
    aligned = explanation.aligned.comparison
    return {
        "versions": explanation.aligned.versions,
        "config": explanation.aligned.config.to_dict(),
        "aligned": {
            "max_abs_weight_diff": aligned.max_abs_weight_diff,
            "max_abs_loss_diff": aligned.max_abs_loss_diff,
            "match": aligned.match,
        },
        "pitfalls": [_row_json(row) for row in explanation.rows],
    }


def _row_json(row: PitfallRow) -> dict[str, Any]:
    c = row.result.comparison
    return {
        "name": row.pitfall.name,
        "max_abs_weight_diff": c.max_abs_weight_diff,
        "max_abs_loss_diff": c.max_abs_loss_diff,
        "fit_final_loss": c.epochs[-1].fit_loss,
        "tape_final_loss": c.epochs[-1].tape_loss,
        "first_differing_epoch": row.first_differing_epoch,
        "turned_on": row.turned_on,
        "fix": row.pitfall.fix,
        "diverged": c.diverged,
    }


def explanation_text(explanation: Explanation) -> RenderableType:
    """``explain``'s table: each pitfall alone, ranked by its effect on the final weights."""
    table = Table(title="Each pitfall alone, largest effect first", show_lines=True)
    table.add_column("pitfall", no_wrap=True)
    table.add_column("final loss\nfit / tape", justify="right", no_wrap=True)
    table.add_column("max\n|Δ weight|", justify="right", no_wrap=True)
    table.add_column("first\nepoch off", justify="right", no_wrap=True)
    table.add_column("fix", overflow="fold")
    for row in explanation.rows:
        c = row.result.comparison
        name = row.pitfall.name
        if row.turned_on:
            name += "\nwith " + ", ".join(f"{k}={_show(v)}" for k, v in row.turned_on.items())
        table.add_row(
            name,
            f"{_f(c.epochs[-1].fit_loss)}\n{_f(c.epochs[-1].tape_loss)}",
            _g(c.max_abs_weight_diff),
            str(row.first_differing_epoch or "-"),
            row.pitfall.fix,
        )
    aligned = explanation.aligned
    baseline = Text(f"Aligned loop: {verdict(aligned.comparison)}", style="bold")
    return Group(baseline, Text(_setup(aligned), style="dim"), table)


def explanation_markdown(explanation: Explanation) -> str:
    aligned = explanation.aligned
    lines = [
        "## fitvstape explain",
        "",
        f"Aligned loop: **{verdict(aligned.comparison)}**",
        "",
        "| pitfall | fit final loss | tape final loss | max \\|Δ weight\\| | first epoch off | fix |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in explanation.rows:
        c = row.result.comparison
        extra = (
            f" (with {', '.join(f'{k}={_show(v)}' for k, v in row.turned_on.items())})"
            if row.turned_on
            else ""
        )
        lines.append(
            f"| {row.pitfall.name}{extra} | {_f(c.epochs[-1].fit_loss)} | {_f(c.epochs[-1].tape_loss)} "
            f"| {_g(c.max_abs_weight_diff)} | {row.first_differing_epoch or '-'} | `{row.pitfall.fix}` |"
        )
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return (
        str(value).lower()
        if isinstance(value, bool)
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def bench_json(result: BenchResult) -> dict[str, Any]:
    return {
        "config": result.config.to_dict(),
        "data": result.data.describe(),
        "steps_per_epoch": result.plan.steps_per_epoch,
        "repeat": result.repeat,
        "methods": [row.to_dict() for row in result.rows],
    }


def bench_text(result: BenchResult) -> RenderableType:
    t = result.config.training
    table = Table(
        title=f"Seconds per epoch, first epoch left out ({result.repeat} runs x {t.epochs - 1} epochs)"
    )
    for name in ("method", "median s", "min - max s", "steps/s", "vs fit", "= fit weights"):
        table.add_column(name, justify="left" if name == "method" else "right", no_wrap=True)
    for row in result.rows:
        table.add_row(*_bench_cells(row))
    setup = (
        f"{result.data.samples} samples x {result.data.features} features · batch "
        f"{result.plan.batch_size} ({result.plan.steps_per_epoch} steps/epoch) · {t.optimizer} · {t.loss}"
    )
    return Group(table, Text(setup, style="dim"))


def bench_markdown(result: BenchResult) -> str:
    lines = [
        "| method | median s/epoch | min - max s | steps/s | vs fit | = fit weights |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
        *("| " + " | ".join(_bench_cells(row)) + " |" for row in result.rows),
    ]
    return "\n".join(lines) + "\n"


def _bench_cells(row: BenchRow) -> list[str]:
    return [
        row.method,
        f"{row.epoch_s_median:.4f}",
        f"{row.epoch_s_min:.4f} - {row.epoch_s_max:.4f}",
        "-" if row.steps_per_s is None else f"{row.steps_per_s:,.0f}",
        f"{row.speed_vs_fit:.2f}x",
        "yes" if row.weights_equal_fit else "no",
    ]
