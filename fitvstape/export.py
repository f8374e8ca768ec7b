"""One comparison as a standalone Python script: the code, not the tool.

:func:`render_script` turns a resolved :class:`~fitvstape.config.Config` into the text of a script
that needs only TensorFlow (Keras 3) and NumPy. It draws the same data, follows the same batch
plan, starts from the same initial weights and trains the same two ways as ``fitvstape run``, so
its ``--format json`` ``epochs`` list and final weights equal the tool's, bit for bit.

The script is written for a reader: the settings are plain constants at the top, only the chosen
optimizer, loss and regulariser appear, and the comments say which Keras fact each line mirrors.
Rendering imports neither TensorFlow nor the data: it is pure text, and instant.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from fitvstape import __version__, catalog
from fitvstape.config import FULL_BATCH, Config
from fitvstape.data import default_true_weights

LINE_LENGTH = 110
"""The repo's ruff line length; the script stays within it so it is ruff-clean as exported."""


def render_script(config: Config) -> str:
    """The text of a standalone script that trains ``config`` with model.fit and a GradientTape loop.

    The script depends only on TensorFlow, Keras and NumPy (no fitvstape), compiles, and is
    ruff-clean under this repo's settings. A CSV path is embedded as an absolute path, resolved
    now, so the script can be run from any folder.
    """
    csv = config.data.csv is not None
    head = "\n".join([_docstring(config), _imports(csv), _settings(config)])
    sections = [
        head,
        _csv_data() if csv else _synthetic_data(),
        _BATCH_PLAN,
        _model(regularised=_regularised(config)),
        _optimizer_and_loss(config),
        _FIT_PATH,
        _tape_path(regularised=_regularised(config)),
        _MAIN,
    ]
    return "\n\n".join(section.strip("\n") + "\n" for section in sections)


# -- the docstring --------------------------------------------------------------------------------


def _docstring(config: Config) -> str:
    paragraphs = [_ABOUT.format(version=__version__)]
    if config.training.loss == "log_cosh":
        paragraphs.append(_LOG_COSH_NOTE)
    paragraphs += [_USAGE, _SETTINGS_INTRO + textwrap.indent(_settings_toml(config), "    ")]
    body = "\n\n".join(p.strip("\n") for p in paragraphs) + "\n"
    escaped = body.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    text = f'"""{escaped}"""'
    if any(len(line) > LINE_LENGTH for line in text.splitlines()):
        text += "  # noqa: E501"  # a long CSV path; ruff reads a string's noqa at its end
    return text


_ABOUT = """
model.fit() vs a tf.GradientTape loop: one linear regression, trained both ways.

Exported by fitvstape {version}. Standalone: it needs TensorFlow (with Keras 3) and NumPy.
Both paths start from the same initial weights, see the same batches in the same order and
report each epoch's loss the way fit does. Set up this way they agree bit for bit on CPU.
"""

_LOG_COSH_NOTE = """
With LogCosh the final weights are still bit-exact, but a reported epoch loss may differ by a
few float32 ULPs: grappler's constant folding inside fit's compiled train function treats
LogCosh's x + softplus(-2x) - log(2) differently ("Where bit-exactness ends", fitvstape's README).
"""

_USAGE = """
    python this_script.py                 # per-epoch losses and final weights, as tables
    python this_script.py --format json   # the same as one JSON document
"""

_SETTINGS_INTRO = """
The settings, resolved at export. They are also a fitvstape config file, so
`fitvstape run --config FILE` trains exactly the same:

"""


def _settings_toml(config: Config) -> str:
    """The resolved settings as the ``[data]`` and ``[training]`` tables of a config file."""
    data: dict[str, Any]
    if config.data.csv is not None:
        data = {"csv": str(_absolute(config.data.csv))}
        if config.data.target is not None:
            data["target"] = config.data.target
    else:
        weights = _true_weights(config)
        data = {
            "samples": config.data.samples,
            "features": len(weights),
            "noise": config.data.noise,
            "true_weights": weights,
            "true_bias": config.data.true_bias,
        }
    t = config.training
    training = {
        "epochs": t.epochs,
        "learning_rate": t.learning_rate,
        "batch_size": FULL_BATCH if t.batch_size is None else t.batch_size,
        "shuffle": t.shuffle,
        "seed": t.seed,
        "optimizer": t.optimizer,
        "loss": t.loss,
        "l1": t.l1,
        "l2": t.l2,
        **t.optimizer_settings,
        **t.loss_settings,
    }
    lines = ["[data]", *(f"{k} = {_toml(v)}" for k, v in data.items()), ""]
    lines += ["[training]", *(f"{k} = {_toml(v)}" for k, v in training.items())]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    return "[" + ", ".join(_toml(float(v)) for v in value) + "]"


# -- the settings as constants --------------------------------------------------------------------


def _settings(config: Config) -> str:
    t = config.training
    lines = [
        _rule("settings"),
        "",
        _assign("EXPORTED_BY", f"fitvstape {__version__}"),
        _assign("SEED", t.seed, "seeds the data, the initial weights and every epoch's shuffle order"),
        "",
    ]
    if config.data.csv is not None:
        lines += [
            "# Data: a CSV file with a header row. TARGET is the column to predict (None: the last);",
            "# every other column is a feature, in file order.",
            _assign("CSV_PATH", str(_absolute(config.data.csv))),
            _assign("TARGET", config.data.target),
        ]
    else:
        lines += [
            "# Data: y = x @ TRUE_WEIGHTS + TRUE_BIAS + NOISE * e, with x and e standard normal.",
            _assign("SAMPLES", config.data.samples),
            _assign("TRUE_WEIGHTS", _true_weights(config), "one weight per feature"),
            _assign("TRUE_BIAS", float(config.data.true_bias)),
            _assign("NOISE", float(config.data.noise)),
        ]
    lines += [
        "",
        _assign("EPOCHS", t.epochs),
        _assign("LEARNING_RATE", float(t.learning_rate)),
        _assign("BATCH_SIZE", t.batch_size, "None: the whole data set as one batch per epoch"),
        _assign("SHUFFLE", t.shuffle, "a new order each epoch, drawn from SEED, the same for both paths"),
    ]
    if _regularised(config):
        lines += [
            _assign("L1", float(t.l1), "L1 kernel regularisation factor"),
            _assign("L2", float(t.l2), "L2 kernel regularisation factor"),
        ]
    for spec, settings in (
        (catalog.OPTIMIZERS[t.optimizer], t.optimizer_settings),
        (catalog.LOSSES[t.loss], t.loss_settings),
    ):
        if spec.options:
            kind = "optimizers" if isinstance(spec, catalog.OptimizerSpec) else "losses"
            lines += ["", f"# keras.{kind}.{spec.keras_class} options (unless set, Keras's defaults)"]
            lines += [_assign(opt.key.upper(), _typed(opt, settings[opt.key])) for opt in spec.options]
    return "\n".join(lines)


def _assign(name: str, value: Any, comment: str | None = None) -> str:
    """``NAME = value  # comment``; split over lines (or marked) where it would be too long."""
    literal = _literal(value)
    line = f"{name} = {literal}" + (f"  # {comment}" if comment else "")
    if len(line) <= LINE_LENGTH:
        return line
    above = f"# {comment}\n" if comment else ""
    if isinstance(value, tuple) and len(f"{name} = {literal}") > LINE_LENGTH:
        items = "".join(f"    {v!r},\n" for v in value)
        return f"{above}{name} = (\n{items})"
    line = f"{name} = {literal}"
    return above + (line if len(line) <= LINE_LENGTH else line + "  # noqa: E501")


def _literal(value: Any) -> str:
    """``repr``, which round-trips floats exactly; strings in double quotes, as ruff format writes them."""
    literal = repr(value)
    if isinstance(value, str) and literal.startswith("'") and '"' not in value:
        literal = '"' + literal[1:-1] + '"'  # no quote of either kind inside, so nothing to re-escape
    return literal


def _typed(option: catalog.Option, value: Any) -> Any:
    return bool(value) if option.kind is bool else float(value)


def _true_weights(config: Config) -> tuple[float, ...]:
    weights = config.data.true_weights or default_true_weights(config.data.features)
    return tuple(float(w) for w in weights)


def _absolute(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def _regularised(config: Config) -> bool:
    return bool(config.training.l1 or config.training.l2)


# -- the code -------------------------------------------------------------------------------------


def _rule(title: str) -> str:
    """A section heading in the script: ``# -- title ------``, 100 characters wide."""
    return f"# -- {title} ".ljust(100, "-")


def _imports(csv: bool) -> str:
    return f"""
import argparse
{"import csv" + chr(10) if csv else ""}import json
import math
import os

# Set before TensorFlow is imported: keeps its C++ logs ("cpu_feature_guard", "failed call to
# cuInit") off stderr. A line or two logged before that setting is read, like "Could not find
# cuda drivers" on a machine without a GPU, may still appear. Real failures still raise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
"""


def _synthetic_data() -> str:
    return f'''
{_rule("data")}


def load_data():
    """Features x (n, F) and target y (n, 1): drawn in float64, then stored as float32.

    y is a column, like the model's output: a (n,) target against a (n, 1) prediction is the
    classic broadcasting bug in hand-written losses.
    """
    rng = np.random.default_rng([SEED, 0])  # the data's own stream; shuffling uses [SEED, 1, epoch]
    x = rng.standard_normal((SAMPLES, len(TRUE_WEIGHTS)))
    y = x @ np.asarray(TRUE_WEIGHTS)[:, None] + TRUE_BIAS
    y += NOISE * rng.standard_normal((SAMPLES, 1))
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)
'''


def _csv_data() -> str:
    return f'''
{_rule("data")}


def load_data():
    """Features x (n, F) and target y (n, 1) from CSV_PATH, as float32.

    y is a column, like the model's output: a (n,) target against a (n, 1) prediction is the
    classic broadcasting bug in hand-written losses.
    """
    with open(CSV_PATH, newline="", encoding="utf-8") as fh:
        header = [name.strip() for name in next(csv.reader([fh.readline()]))]
    table = np.loadtxt(CSV_PATH, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2, encoding="utf-8")
    target = header.index(header[-1] if TARGET is None else TARGET)
    features = [i for i in range(len(header)) if i != target]
    x = table[:, features]
    y = table[:, [target]]
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)
'''


_BATCH_PLAN = f'''
{_rule("the batch plan")}


def epoch_order(epoch, samples):
    """The sample indices epoch `epoch` (0-based) visits, in order.

    The script owns the order rather than leaving it to fit's private shuffle (which has changed
    between Keras versions), so both paths are sure to see the same batches.
    """
    if not SHUFFLE:
        return np.arange(samples, dtype=np.int64)
    return np.random.default_rng([SEED, 1, epoch]).permutation(samples)


def planned_batches(x, y, batch_size):
    """A tf.data pipeline of every epoch's batches, one epoch after another.

    Each epoch visits epoch_order(epoch) in slices of batch_size, the last one partial when
    batch_size does not divide the samples. Each path builds its own pipeline: fit keeps one
    iterator across epochs when steps_per_epoch is set, so sharing one would be a trap.
    """

    def batches():
        for epoch in range(EPOCHS):
            order = epoch_order(epoch, len(x))
            for start in range(0, len(x), batch_size):
                rows = order[start : start + batch_size]
                yield x[rows], y[rows]

    # The batch dimension is left unknown (None), so a partial last batch has the same spec.
    spec = (tf.TensorSpec((None, x.shape[1]), tf.float32), tf.TensorSpec((None, 1), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=spec)
'''


def _model(regularised: bool) -> str:
    if regularised:
        dense = """
    # L1/L2 as a kernel regulariser, so model.losses carries the penalty: fit adds it to the loss
    # it optimises and reports, and so must the tape loop.
    regularizer = keras.regularizers.L1L2(l1=L1, l2=L2)
    dense = keras.layers.Dense(1, kernel_regularizer=regularizer)
    model = keras.Sequential([keras.Input((features,)), dense])"""
    else:
        dense = """
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(1)])"""
    return f'''
{_rule("the model")}


def initial_weights(features):
    """[kernel (F, 1), bias (1,)]: Keras's own Dense defaults, glorot_uniform and zeros, seeded.

    Drawn once and copied into both models: two models built one after the other draw different
    weights, even after keras.utils.set_random_seed.
    """
    kernel = keras.initializers.GlorotUniform(seed=SEED)(shape=(features, 1), dtype="float32")
    return [np.asarray(kernel, dtype=np.float32), np.zeros((1,), dtype=np.float32)]


def build_model(features, weights):
    """A fresh Sequential([Input((F,)), Dense(1)]) holding a copy of `weights`."""{dense}
    model.set_weights(weights)
    return model
'''


def _optimizer_and_loss(config: Config) -> str:
    t = config.training
    optimizer = catalog.OPTIMIZERS[t.optimizer]
    loss = catalog.LOSSES[t.loss]
    optimizer_args = ["learning_rate=LEARNING_RATE"] + [
        f"{o.kwarg}={o.key.upper()}" for o in optimizer.options
    ]
    loss_args = [f"{o.kwarg}={o.key.upper()}" for o in loss.options]
    return f'''
def make_optimizer():
    """A fresh optimizer: each path needs its own instance (Keras refuses to reuse one)."""
{_return_call(f"keras.optimizers.{optimizer.keras_class}", optimizer_args)}


def make_loss():
    """The loss, reduced as a mean over the batch ("sum_over_batch_size"), as fit reduces it."""
{_return_call(f"keras.losses.{loss.keras_class}", loss_args)}
'''


def _return_call(function: str, args: list[str]) -> str:
    """``    return function(args)``, one argument a line when that would be too long."""
    line = f"    return {function}({', '.join(args)})"
    if len(line) <= LINE_LENGTH:
        return line
    return f"    return {function}(\n" + "".join(f"        {a},\n" for a in args) + "    )"


_FIT_PATH = f'''
{_rule("path 1: model.fit")}


def train_fit(x, y, initial, batch_size, steps_per_epoch):
    """A real model.compile + model.fit on the planned batches: History's losses and the weights."""
    model = build_model(x.shape[1], initial)
    # jit_compile="auto" may pick XLA on a GPU, which moves Adam weights by ~1e-9: pin it.
    model.compile(optimizer=make_optimizer(), loss=make_loss(), jit_compile=False)
    history = model.fit(
        planned_batches(x, y, batch_size),
        epochs=EPOCHS,
        steps_per_epoch=steps_per_epoch,  # fit takes exactly one epoch's planned batches per epoch
        shuffle=False,  # the batches arrive in the plan's order; fit must not touch it
        verbose=0,
    )
    return history.history["loss"], model.get_weights()
'''


def _tape_path(regularised: bool) -> str:
    if regularised:
        loss = """
            loss = loss_fn(y_batch, y_pred)
            # The penalties in model.losses are added as Trainer.compute_loss adds them: a sum
            # over the stacked list. Written as `loss + penalty` (or tf.add_n), grappler may merge
            # it with the regulariser's own additions and reorder them, moving the loss by 1 ulp.
            loss = tf.reduce_sum(tf.stack([loss, *model.losses]))"""
    else:
        loss = """
            loss = loss_fn(y_batch, y_pred)  # no regulariser, so model.losses is empty"""
    return f'''
{_rule("path 2: a tf.GradientTape loop")}


def train_tape(x, y, initial, batch_size, steps_per_epoch):
    """The same training as an explicit GradientTape loop, written the way fit's train_step is."""
    model = build_model(x.shape[1], initial)
    optimizer = make_optimizer()
    loss_fn = make_loss()
    variables = model.trainable_variables
    # fit reports each epoch's loss as a running mean of the batch losses weighted by batch size
    # (a partial last batch counts less), accumulated in float32 and reset every epoch.
    epoch_loss = keras.metrics.Mean()

    # The batch dimension is left unknown, as in fit's traced train function, so the partial last
    # batch reuses the same graph instead of tracing a second one. No XLA, as in fit above.
    @tf.function(
        input_signature=[
            tf.TensorSpec((None, x.shape[1]), tf.float32),
            tf.TensorSpec((None, 1), tf.float32),
        ],
        jit_compile=False,
    )
    def train_step(x_batch, y_batch):
        with tf.GradientTape() as tape:
            y_pred = model(x_batch, training=True){loss}
        # The loss computed before the update is the one reported, as in fit.
        epoch_loss.update_state(loss, sample_weight=tf.shape(x_batch)[0])
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    losses = []
    batches = iter(planned_batches(x, y, batch_size))
    for _ in range(EPOCHS):
        epoch_loss.reset_state()
        for _ in range(steps_per_epoch):
            train_step(*next(batches))
        losses.append(epoch_loss.result().numpy())
    return losses, model.get_weights()
'''


_MAIN = (
    _rule("compare and report")
    + '''


def as_float(value):
    """A float32 value widened to a Python float: exact, so no bit is lost in the comparison."""
    return float(np.float32(value))


def abs_diff(a, b):
    return 0.0 if math.isinf(a) and a == b else abs(a - b)


def finite_or_none(value):
    """Strict JSON has no NaN or Infinity: non-finite floats are written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value


def print_tables(epochs, names, initial, fit_weights, tape_weights):
    print(f"{'epoch':>5}  {'fit loss':>15}  {'tape loss':>15}  {'|fit - tape|':>12}")
    for e in epochs:
        fit_loss, tape_loss, diff = e["fit_loss"], e["tape_loss"], e["abs_diff"]
        print(f"{e['epoch']:>5}  {fit_loss:>15.9g}  {tape_loss:>15.9g}  {diff:>12.3g}")
    print()
    print(f"{'parameter':<10}  {'initial':>15}  {'fit':>15}  {'tape':>15}")
    columns = [np.concatenate([k.ravel(), b]) for k, b in (initial, fit_weights, tape_weights)]
    for name, *row in zip(names, *columns):
        print(f"{name:<10}  " + "  ".join(f"{v:>15.9g}" for v in row))
    print()


def main():
    parser = argparse.ArgumentParser(description="model.fit() vs a tf.GradientTape loop, compared.")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    args = parser.parse_args()

    # Deterministic kernels, so a rerun prints the same numbers. It also makes Keras resolve
    # jit_compile="auto" to False, which both paths pin anyway.
    tf.config.experimental.enable_op_determinism()

    x, y = load_data()
    samples = len(x)
    # None is one batch per epoch; a batch larger than the data is one batch too, as in fit.
    batch_size = samples if BATCH_SIZE is None else min(BATCH_SIZE, samples)
    steps_per_epoch = math.ceil(samples / batch_size)
    initial = initial_weights(x.shape[1])

    fit_losses, fit_weights = train_fit(x, y, initial, batch_size, steps_per_epoch)
    tape_losses, tape_weights = train_tape(x, y, initial, batch_size, steps_per_epoch)

    epochs = [
        {"epoch": i, "fit_loss": a, "tape_loss": b, "abs_diff": abs_diff(a, b)}
        for i, (a, b) in enumerate(zip(map(as_float, fit_losses), map(as_float, tape_losses)), start=1)
    ]
    identical = all(e["abs_diff"] == 0 for e in epochs) and all(
        np.array_equal(a, b) for a, b in zip(fit_weights, tape_weights)
    )
    if args.format == "json":
        weights = {"initial": initial, "fit": fit_weights, "tape": tape_weights}
        document = {
            "exported_by": EXPORTED_BY,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
            "epochs": epochs,
            "weights": {
                name: {"kernel": kernel.tolist(), "bias": bias.tolist()}
                for name, (kernel, bias) in weights.items()
            },
            "identical": identical,
        }
        print(json.dumps(finite_or_none(document), indent=2, allow_nan=False))
        return

    names = [f"kernel[{i}]" for i in range(x.shape[1])] + ["bias"]
    print_tables(epochs, names, initial, fit_weights, tape_weights)
    if identical:
        print(f"fit and tape agree bit for bit over {EPOCHS} epochs.")
    else:
        print("fit and tape differ: compare the columns above.")


if __name__ == "__main__":
    main()
'''
)
