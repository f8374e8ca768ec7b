"""Every setting the tool takes, declared once: its config table and key, flag, default and check.

Precedence is built-in defaults < the TOML file given with ``--config`` < flags. The CLI builds its
options from :data:`SCHEMA`, the TOML loader validates against it, and the report writes the
resolved values back out, so the three can't drift apart.

A config file looks like::

    [data]            # samples, features, noise, true_weights, true_bias, csv, target
    samples = 200

    [training]        # epochs, learning_rate, batch_size, shuffle, seed, optimizer, loss, ...
    batch_size = "full"

    [check]           # rtol, atol
    atol = 0.0

Unknown tables or keys, wrong types and out-of-range values are :class:`InputError`, naming the
file, the key and the value.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fitvstape import catalog
from fitvstape.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FULL_BATCH = "full"


@dataclass(frozen=True)
class DataConfig:
    """Where the regression data comes from.

    Synthetic data (the default) is ``y = x @ true_weights + true_bias + noise * e`` with ``x`` and
    ``e`` standard normal, drawn from the run's seed. ``csv`` replaces it with a file.
    """

    samples: int = 200
    features: int = 1
    noise: float = 0.1
    true_weights: tuple[float, ...] | None = None
    true_bias: float = 0.5
    csv: Path | None = None
    target: str | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """How both paths train. ``batch_size`` None means full batch.

    ``options`` holds the optimizer and loss options the user set (momentum, huber_delta, ...);
    an option left out uses Keras's default, from :mod:`fitvstape.catalog`.
    """

    epochs: int = 10
    learning_rate: float = 0.01
    batch_size: int | None = 32
    shuffle: bool = True
    seed: int = 42
    optimizer: str = "sgd"
    loss: str = "mse"
    l1: float = 0.0
    l2: float = 0.0
    eager: bool = False
    replicas: int = 1
    workers: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def optimizer_settings(self) -> dict[str, Any]:
        """The chosen optimizer's options, resolved: the user's value or Keras's default."""
        spec = catalog.OPTIMIZERS[self.optimizer]
        return {opt.key: self.options.get(opt.key, opt.default) for opt in spec.options}

    @property
    def loss_settings(self) -> dict[str, Any]:
        """The chosen loss's options, resolved: the user's value or Keras's default."""
        spec = catalog.LOSSES[self.loss]
        return {opt.key: self.options.get(opt.key, opt.default) for opt in spec.options}


@dataclass(frozen=True)
class CheckConfig:
    """How close the two paths must be: ``|fit - tape| <= atol + rtol * |fit|`` for every value.

    Both default to 0, i.e. exact equality: set up the same way the paths agree bit for bit on
    CPU, so any difference at all is real drift.
    """

    rtol: float = 0.0
    atol: float = 0.0


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    source: Path | None = None
    origins: Mapping[str, str] = field(default_factory=dict)
    """Where each non-default setting came from: a flag, or the config file and key."""

    def to_dict(self) -> dict[str, Any]:
        """Every resolved setting, by table, as JSON-ready values."""
        data = {f.name: getattr(self.data, f.name) for f in fields(DataConfig)}
        data["csv"] = None if self.data.csv is None else str(self.data.csv)
        if data["true_weights"] is not None:
            data["true_weights"] = list(data["true_weights"])
        t = self.training
        training = {f.name: getattr(t, f.name) for f in fields(TrainingConfig) if f.name != "options"}
        training["batch_size"] = FULL_BATCH if t.batch_size is None else t.batch_size
        training.update(t.optimizer_settings)
        training.update(t.loss_settings)
        check = {f.name: getattr(self.check, f.name) for f in fields(CheckConfig)}
        return {"data": data, "training": training, "check": check}


# -- the schema ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One user-settable value.

    Args:
        table: the TOML table (``data``, ``training``, ``check``).
        key: the TOML key, and the keyword the CLI passes.
        kind: ``int``, ``float``, ``bool``, ``str``, ``choice``, ``batch_size``, ``path``,
            ``floats``.
        help: one line for ``--help``.
        flag: the command-line flag; default ``--`` + key with ``-`` for ``_``.
        check: returns why a (typed) value is unacceptable, or None.
        choices: for ``choice``.
        option: set for optimizer and loss options: the catalogue entry it mirrors.
    """

    table: str
    key: str
    kind: str
    help: str
    flag: str = ""
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] = ()
    option: catalog.Option | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.key.replace("_", "-")

    def default(self) -> Any:
        if self.option is not None:
            return self.option.default
        section = {"data": DataConfig, "training": TrainingConfig, "check": CheckConfig}[self.table]
        value = section.__dataclass_fields__[self.key].default
        return FULL_BATCH if self.key == "batch_size" and value is None else value

    def from_toml(self, value: Any, where: str) -> Any:
        """Type-check a TOML value; TOML has real types, so no string is coerced to a number."""
        ok = {
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
            "choice": lambda v: isinstance(v, str),
            "path": lambda v: isinstance(v, str),
            "batch_size": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or v == FULL_BATCH,
            "floats": lambda v: (
                isinstance(v, list)
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            ),
        }[self.kind]
        if not ok(value):
            wanted = {
                "int": "an integer",
                "float": "a number",
                "bool": "true or false",
                "str": "a string",
                "choice": "a string",
                "path": "a path string",
                "batch_size": f'an integer or "{FULL_BATCH}"',
                "floats": "an array of numbers",
            }[self.kind]
            raise InputError(f"{where}: {self.key} = {_show(value)} must be {wanted}")
        if self.kind == "float":
            return float(value)
        if self.kind == "floats":
            return tuple(float(x) for x in value)
        if self.kind == "batch_size" and value == FULL_BATCH:
            return None
        return value

    def validate(self, value: Any, where: str) -> Any:
        """Range-check a typed value; ``where`` names the flag or the file and key."""
        if self.kind == "choice" and value not in self.choices:
            raise InputError(
                f"{where}: unknown {self.key} {_show(value)} (choose from {', '.join(self.choices)})"
            )
        problem = self.check(value) if self.check is not None and value is not None else None
        if problem is None and self.option is not None and value is not None:
            problem = self.option.problem(value)
        if problem is not None:
            raise InputError(f"{where}: {_show(value)} {problem}")
        return value


def _at_least(low: int) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be >= {low}"


def _positive_finite(v: float) -> str | None:
    return None if math.isfinite(v) and v > 0 else "must be a positive finite number"


def _non_negative_finite(v: float) -> str | None:
    return None if math.isfinite(v) and v >= 0 else "must be a finite number >= 0"


def _finite(v: float) -> str | None:
    return None if math.isfinite(v) else "must be a finite number"


def _all_finite(v: tuple[float, ...]) -> str | None:
    if not v:
        return "must hold at least one weight"
    return None if all(math.isfinite(x) for x in v) else "must all be finite numbers"


def _batch_size(v: int | None) -> str | None:
    return None if v is None or v >= 1 else f'must be >= 1 or "{FULL_BATCH}"'


SCHEMA: tuple[Setting, ...] = (
    Setting("data", "samples", "int", "Synthetic samples to draw.", check=_at_least(1)),
    Setting("data", "features", "int", "Synthetic feature columns.", check=_at_least(1)),
    Setting(
        "data", "noise", "float", "Std. dev. of the Gaussian noise added to y.", check=_non_negative_finite
    ),
    Setting(
        "data",
        "true_weights",
        "floats",
        "Synthetic true weights, comma-separated (default: evenly from 2 to -1).",
        check=_all_finite,
    ),
    Setting("data", "true_bias", "float", "Synthetic true bias.", check=_finite),
    Setting(
        "data", "csv", "path", "Train on a CSV with a header row instead of synthetic data.", flag="--data"
    ),
    Setting(
        "data",
        "target",
        "str",
        "The CSV column to predict (default: the last); every other column is a feature.",
    ),
    Setting("training", "epochs", "int", "Passes over the data.", check=_at_least(1)),
    Setting(
        "training",
        "learning_rate",
        "float",
        "Learning rate for both paths.",
        flag="--lr",
        check=_positive_finite,
    ),
    Setting(
        "training",
        "batch_size",
        "batch_size",
        f'Samples per batch, or "{FULL_BATCH}" for one batch per epoch.',
        check=_batch_size,
    ),
    Setting("training", "shuffle", "bool", "Shuffle the samples each epoch (the same order for both paths)."),
    Setting(
        "training",
        "seed",
        "int",
        "Seeds the data, the initial weights and the shuffle order.",
        check=lambda v: None if 0 <= v < 2**63 else "must be between 0 and 2**63 - 1",
    ),
    Setting(
        "training",
        "optimizer",
        "choice",
        "Optimizer (a fresh instance for each path).",
        choices=tuple(catalog.OPTIMIZERS),
    ),
    Setting(
        "training", "loss", "choice", "Loss, reduced as a mean over the batch.", choices=tuple(catalog.LOSSES)
    ),
    Setting("training", "l1", "float", "L1 kernel regularisation factor.", check=_non_negative_finite),
    Setting("training", "l2", "float", "L2 kernel regularisation factor.", check=_non_negative_finite),
    Setting(
        "training",
        "eager",
        "bool",
        "Run the tape loop eagerly, step by step (slow); off: compiled, one tf.function per epoch.",
    ),
    Setting(
        "training",
        "replicas",
        "int",
        "Train both paths under MirroredStrategy on N devices (N logical CPUs without N GPUs).",
        check=_at_least(1),
    ),
    Setting(
        "training",
        "workers",
        "int",
        "Train both paths with MultiWorkerMirroredStrategy across N local worker processes.",
        check=_at_least(1),
    ),
    *(
        Setting(
            "training",
            opt.key,
            "float" if opt.kind is float else "bool",
            f"{opt.help} Keras default: {opt.default}.",
            option=opt,
        )
        for opt in (*catalog.optimizer_options(), *catalog.loss_options())
    ),
    Setting("check", "rtol", "float", "Relative tolerance (default 0: exact).", check=_non_negative_finite),
    Setting("check", "atol", "float", "Absolute tolerance (default 0: exact).", check=_non_negative_finite),
)

SETTINGS: dict[str, Setting] = {s.key: s for s in SCHEMA}
TABLES: tuple[str, ...] = ("data", "training", "check")


# -- loading and merging ------------------------------------------------------------------------


def load_toml(path: Path) -> dict[str, Any]:
    """Read and type-check a config file: ``{key: value}``, with a relative csv made absolute."""
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"--config: file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"--config: {path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise InputError(f"--config: cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None

    values: dict[str, Any] = {}
    for table, body in raw.items():
        if table not in TABLES:
            raise InputError(
                f"{path}: unknown table [{table}] (expected {', '.join(f'[{t}]' for t in TABLES)})"
            )
        if not isinstance(body, dict):
            raise InputError(f"{path}: {table} must be a table, written [{table}]")
        for key, value in body.items():
            setting = SETTINGS.get(key)
            if setting is None or setting.table != table:
                known = ", ".join(s.key for s in SCHEMA if s.table == table)
                raise InputError(f"{path}: unknown key {key!r} in [{table}] (known: {known})")
            values[key] = setting.from_toml(value, f"{path}: [{table}]")
    if values.get("csv") is not None:
        csv_path = Path(values["csv"]).expanduser()
        values["csv"] = csv_path if csv_path.is_absolute() else path.parent / csv_path
    return values


def resolve(config_path: Path | None = None, flags: Mapping[str, Any] | None = None) -> Config:
    """Defaults < config file < flags, validated, as a :class:`Config`.

    Args:
        config_path: a TOML file, or None. Default None.
        flags: ``{key: value}`` for the flags the user gave (None values are ignored), already
            typed by the CLI. Default: none.
    """
    file_values = load_toml(config_path) if config_path is not None else {}
    flag_values = {k: v for k, v in (flags or {}).items() if v is not None}
    unknown = set(flag_values) - set(SETTINGS)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")

    where: dict[str, str] = {}
    merged: dict[str, Any] = {}
    for key, value in file_values.items():
        merged[key] = value
        where[key] = f"{config_path}: [{SETTINGS[key].table}] {key}"
    for key, value in flag_values.items():
        merged[key] = None if SETTINGS[key].kind == "batch_size" and value == FULL_BATCH else value
        where[key] = SETTINGS[key].cli_flag
    for key, value in merged.items():
        SETTINGS[key].validate(value, where[key])

    _check_combinations(merged, where)

    data_keys = {f.name for f in fields(DataConfig)}
    training_keys = {f.name for f in fields(TrainingConfig)} - {"options"}
    options = {k: v for k, v in merged.items() if SETTINGS[k].option is not None}
    if "true_weights" in merged and "features" not in merged:
        merged["features"] = len(merged["true_weights"])
    if merged.get("csv") is not None:
        merged["csv"] = Path(merged["csv"])
    return Config(
        data=DataConfig(**{k: v for k, v in merged.items() if k in data_keys}),
        training=TrainingConfig(**{k: v for k, v in merged.items() if k in training_keys}, options=options),
        check=CheckConfig(**{k: v for k, v in merged.items() if SETTINGS[k].table == "check"}),
        source=config_path,
        origins=where,
    )


def with_training(config: Config, changes: Mapping[str, Any]) -> Config:
    """``config`` with training settings (or optimizer options) changed, re-validated."""
    training = config.training
    options = {k: v for k, v in changes.items() if SETTINGS[k].option is not None}
    plain = {k: v for k, v in changes.items() if k not in options}
    for key, value in changes.items():
        SETTINGS[key].validate(value, key)
    return replace(config, training=replace(training, **plain, options={**training.options, **options}))


def _check_combinations(merged: Mapping[str, Any], where: Mapping[str, str]) -> None:
    """Settings that are fine alone but not together. Nothing is silently ignored."""
    optimizer = merged.get("optimizer", TrainingConfig.optimizer)
    loss = merged.get("loss", TrainingConfig.loss)
    for key in merged:
        option = SETTINGS[key].option
        if option is None:
            continue
        if option in catalog.optimizer_options() and option not in catalog.OPTIMIZERS[optimizer].options:
            users = ", ".join(catalog.users_of(option, catalog.OPTIMIZERS))
            raise InputError(
                f"{where[key]} does not apply to optimizer {optimizer!r} (it applies to {users})"
            )
        if option in catalog.loss_options() and option not in catalog.LOSSES[loss].options:
            users = ", ".join(catalog.users_of(option, catalog.LOSSES))
            raise InputError(f"{where[key]} does not apply to loss {loss!r} (it applies to {users})")

    if merged.get("csv") is not None:
        for key in ("samples", "features", "noise", "true_weights", "true_bias"):
            if key in merged:
                raise InputError(
                    f"{where[key]} does not apply to CSV data ({where['csv']} is set): "
                    "the file decides the samples and features"
                )
    elif "target" in merged:
        raise InputError(f"{where['target']} needs CSV data: set --data or [data] csv")

    if merged.get("replicas", 1) > 1 and merged.get("workers", 1) > 1:
        raise InputError(
            f"{where['replicas']} and {where['workers']} can't be combined: "
            "each local worker trains on one CPU"
        )

    weights, features = merged.get("true_weights"), merged.get("features")
    if weights is not None and features is not None and len(weights) != features:
        raise InputError(
            f"{where['true_weights']}: {len(merged['true_weights'])} weights for "
            f"{merged['features']} features ({where['features']})"
        )


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return str(value)
