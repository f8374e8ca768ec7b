"""Unit tests of ``fitvstape.config``: where every setting's value comes from.

Read top to bottom:

1. the built-in defaults (the notebook's ``model.fit`` cell);
2. precedence: defaults < config file < flags;
3. paths: a relative ``csv`` in a config file is relative to that file, not to the cwd;
4. special values: ``batch_size = "full"``, ``true_weights`` implying ``features``;
5. ``Config.to_dict()``: every resolved setting, including the optimizer's Keras defaults;
6. ``load_toml`` type-checks, ``resolve`` range-checks;
7. the schema itself, and the config files shipped in ``configs/``.

Nothing here imports TensorFlow: the config layer is pure Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from fitvstape import catalog
from fitvstape.config import (
    FULL_BATCH,
    SCHEMA,
    SETTINGS,
    TABLES,
    Config,
    DataConfig,
    TrainingConfig,
    load_toml,
    resolve,
)
from fitvstape.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIGS = sorted((REPO / "configs").glob("*.toml"))


def write_toml(folder: Path, text: str, name: str = "config.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def value_of(config: Config, key: str) -> Any:
    """A resolved setting by its schema key, e.g. ``value_of(config, "epochs")``."""
    section = getattr(config, SETTINGS[key].table)
    if SETTINGS[key].option is not None:
        return section.options.get(key, SETTINGS[key].default())
    return getattr(section, key)


# -- 1. built-in defaults ------------------------------------------------------------------------


def test_defaults_are_the_notebooks_model_fit_cell() -> None:
    """With no file and no flags: 10 epochs of SGD on MSE, lr 0.01, batches of 32, shuffled."""
    config = resolve()
    training = config.training
    assert training.epochs == 10
    assert training.learning_rate == 0.01
    assert training.batch_size == 32
    assert training.shuffle is True
    assert training.optimizer == "sgd"
    assert training.loss == "mse"
    assert training.l1 == 0.0 and training.l2 == 0.0
    assert training.options == {}
    assert config.check.rtol == 0.0 and config.check.atol == 0.0  # exact equality by default
    assert config.source is None


def test_default_seed_is_fixed() -> None:
    """Reruns print the same numbers unless the user asks for another seed."""
    assert resolve().training.seed == 42
    assert resolve().training.seed == resolve().training.seed


def test_default_data_is_synthetic() -> None:
    """200 samples of one feature, noise 0.1, bias 0.5; weights chosen later from ``features``."""
    data = resolve().data
    assert (data.samples, data.features, data.noise, data.true_bias) == (200, 1, 0.1, 0.5)
    assert data.true_weights is None
    assert data.csv is None and data.target is None


def test_flags_left_unset_change_nothing() -> None:
    """The CLI passes every option, ``None`` when not given; ``None`` means "not set"."""
    assert resolve(None, {s.key: None for s in SCHEMA}) == resolve() == Config()


# -- 2. precedence: defaults < config file < flags -----------------------------------------------

# (key, TOML literal for the file, the value it resolves to, a flag value that overrides it)
PRECEDENCE_CASES = [
    pytest.param("epochs", "5", 5, 7, id="epochs"),
    pytest.param("learning_rate", "0.5", 0.5, 0.25, id="learning_rate"),
    pytest.param("batch_size", "8", 8, 16, id="batch_size"),
    pytest.param("shuffle", "false", False, True, id="shuffle"),
    pytest.param("seed", "7", 7, 8, id="seed"),
    pytest.param("optimizer", '"adam"', "adam", "rmsprop", id="optimizer"),
    pytest.param("loss", '"mae"', "mae", "huber", id="loss"),
    pytest.param("l2", "0.01", 0.01, 0.02, id="l2"),
    pytest.param("momentum", "0.5", 0.5, 0.9, id="momentum-option"),
    pytest.param("samples", "50", 50, 60, id="samples"),
    pytest.param("noise", "0.0", 0.0, 0.3, id="noise"),
    pytest.param("true_bias", "-1", -1.0, 2.0, id="true_bias"),
    pytest.param("rtol", "1e-6", 1e-6, 1e-3, id="rtol"),
    pytest.param("atol", "0.5", 0.5, 0.25, id="atol"),
]


@pytest.mark.parametrize(("key", "literal", "from_file", "from_flag"), PRECEDENCE_CASES)
def test_file_overrides_default_and_flag_overrides_file(
    tmp_path: Path, key: str, literal: str, from_file: Any, from_flag: Any
) -> None:
    """Each setting, three ways: the default alone, the file over it, a flag over both."""
    table = SETTINGS[key].table
    path = write_toml(tmp_path, f"[{table}]\n{key} = {literal}\n")
    default = value_of(resolve(), key)
    assert default != from_file != from_flag, "pick values that tell the three layers apart"

    assert value_of(resolve(path), key) == from_file
    assert value_of(resolve(path, {key: from_flag}), key) == from_flag
    assert value_of(resolve(path, {key: None}), key) == from_file  # an unset flag keeps the file's


def test_one_file_and_some_flags_mix_per_key(tmp_path: Path) -> None:
    """Precedence is per key: a flag for one key leaves the file's other keys alone."""
    path = write_toml(
        tmp_path,
        '[training]\nepochs = 5\nlearning_rate = 0.1\noptimizer = "adam"\n\n[data]\nsamples = 64\n',
    )
    config = resolve(path, {"epochs": 7, "batch_size": 16})
    assert config.training.epochs == 7  # flag over file
    assert config.training.learning_rate == 0.1  # file over default
    assert config.training.optimizer == "adam"  # file over default
    assert config.training.batch_size == 16  # flag over default
    assert config.data.samples == 64  # file over default
    assert config.training.loss == "mse"  # default
    assert config.source == path


def test_errors_name_where_the_bad_value_came_from(tmp_path: Path) -> None:
    """A bad value from the file names the file and key; from a flag, the flag."""
    path = write_toml(tmp_path, "[training]\nepochs = 0\n")
    with pytest.raises(InputError, match=r"config\.toml: \[training\] epochs: 0 must be >= 1"):
        resolve(path)
    with pytest.raises(InputError, match=r"^--epochs: 0 must be >= 1$"):
        resolve(None, {"epochs": 0})


def test_a_key_that_is_not_a_setting_is_a_programming_error() -> None:
    """Flags come from the schema, so an unknown one is a bug in the caller, not bad input."""
    with pytest.raises(ValueError, match="not settings") as raised:
        resolve(None, {"epoch": 3})
    assert not isinstance(raised.value, InputError)


# -- 3. paths ------------------------------------------------------------------------------------


def test_relative_csv_is_resolved_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``csv = "data/points.csv"`` means beside the config file, wherever the user runs from."""
    path = write_toml(tmp_path / "project", '[data]\ncsv = "data/points.csv"\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    expected = tmp_path / "project" / "data" / "points.csv"
    assert load_toml(path)["csv"] == expected
    assert resolve(path).data.csv == expected


def test_relative_csv_with_a_relative_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--config project/config.toml`` from the parent folder gives ``project/data/points.csv``."""
    write_toml(tmp_path / "project", '[data]\ncsv = "data/points.csv"\n')
    monkeypatch.chdir(tmp_path)
    csv = resolve(Path("project/config.toml")).data.csv
    assert csv == Path("project/data/points.csv")


def test_absolute_csv_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "somewhere" / "points.csv"
    path = write_toml(tmp_path / "project", f"[data]\ncsv = {json.dumps(str(target))}\n")
    assert resolve(path).data.csv == target


def test_data_flag_is_relative_to_the_cwd_and_overrides_the_file(tmp_path: Path) -> None:
    """``--data`` is a path the user typed: taken as given, and it beats the file's ``csv``."""
    path = write_toml(tmp_path / "project", '[data]\ncsv = "data/points.csv"\n')
    assert resolve(path, {"csv": Path("other.csv")}).data.csv == Path("other.csv")
    assert resolve(None, {"csv": Path("other.csv")}).data.csv == Path("other.csv")


# -- 4. special values ---------------------------------------------------------------------------


def test_full_batch_from_the_file_becomes_none(tmp_path: Path) -> None:
    """``batch_size = "full"`` (one batch per epoch) is stored as None."""
    path = write_toml(tmp_path, f'[training]\nbatch_size = "{FULL_BATCH}"\n')
    assert load_toml(path) == {"batch_size": None}
    config = resolve(path)
    assert config.training.batch_size is None
    assert config.to_dict()["training"]["batch_size"] == FULL_BATCH  # and written back as "full"


def test_full_batch_from_a_flag_becomes_none(tmp_path: Path) -> None:
    """``--batch-size full`` reaches resolve as the string "full"; it overrides a file's number."""
    assert resolve(None, {"batch_size": FULL_BATCH}).training.batch_size is None
    path = write_toml(tmp_path, "[training]\nbatch_size = 8\n")
    assert resolve(path, {"batch_size": FULL_BATCH}).training.batch_size is None


def test_true_weights_from_a_flag_set_the_feature_count() -> None:
    data = resolve(None, {"true_weights": (1.0, 2.0, 3.0)}).data
    assert data.true_weights == (1.0, 2.0, 3.0)
    assert data.features == 3


def test_true_weights_from_the_file_set_the_feature_count(tmp_path: Path) -> None:
    """TOML integers in the array become floats."""
    data = resolve(write_toml(tmp_path, "[data]\ntrue_weights = [1, -2]\n")).data
    assert data.true_weights == (1.0, -2.0)
    assert all(isinstance(w, float) for w in data.true_weights)
    assert data.features == 2


def test_true_weights_agree_with_an_explicit_feature_count() -> None:
    assert resolve(None, {"true_weights": (1.0, 2.0), "features": 2}).data.features == 2
    with pytest.raises(InputError, match="2 weights for 3 features"):
        resolve(None, {"true_weights": (1.0, 2.0), "features": 3})


# -- 5. Config.to_dict() ---------------------------------------------------------------------------

# Keras 3's own defaults for each optimizer's options (tests/test_catalog.py checks them against
# the installed Keras); to_dict() writes them out even when the user set none.
KERAS_OPTIMIZER_DEFAULTS = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamw": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.004},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
    "adagrad": {"epsilon": 1e-7},
}
KERAS_LOSS_DEFAULTS = {"mse": {}, "mae": {}, "huber": {"huber_delta": 1.0}, "log_cosh": {}}
ALL_OPTION_KEYS = {s.key for s in SCHEMA if s.option is not None}


def test_to_dict_has_every_setting_in_its_table() -> None:
    """Every schema setting that is not an optimizer/loss option appears, under its table."""
    as_dict = resolve().to_dict()
    assert set(as_dict) == set(TABLES)
    for setting in SCHEMA:
        if setting.option is None:
            assert setting.key in as_dict[setting.table], setting.key


def test_to_dict_holds_the_resolved_values(tmp_path: Path) -> None:
    """What the report writes is what was trained: file and flags merged, typed, JSON-ready."""
    (tmp_path / "points.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    path = write_toml(tmp_path, '[data]\ncsv = "points.csv"\ntarget = "y"\n\n[training]\nepochs = 3\n')
    config = resolve(path, {"learning_rate": 0.2, "shuffle": False, "atol": 1e-9})
    as_dict = config.to_dict()
    assert as_dict["data"]["csv"] == str(tmp_path / "points.csv")
    assert as_dict["data"]["target"] == "y"
    assert as_dict["training"]["epochs"] == 3
    assert as_dict["training"]["learning_rate"] == 0.2
    assert as_dict["training"]["shuffle"] is False
    assert as_dict["check"]["atol"] == 1e-9
    assert json.loads(json.dumps(as_dict)) == as_dict  # plain JSON types only


def test_to_dict_writes_true_weights_as_a_list() -> None:
    as_dict = resolve(None, {"true_weights": (1.0, 2.0)}).to_dict()
    assert as_dict["data"]["true_weights"] == [1.0, 2.0]
    assert as_dict["data"]["features"] == 2


@pytest.mark.parametrize("optimizer", list(KERAS_OPTIMIZER_DEFAULTS))
def test_to_dict_has_the_chosen_optimizers_options_with_keras_defaults(optimizer: str) -> None:
    """E.g. ``--optimizer adam`` reports beta_1 0.9, beta_2 0.999, epsilon 1e-7; no momentum."""
    training = resolve(None, {"optimizer": optimizer}).to_dict()["training"]
    expected = KERAS_OPTIMIZER_DEFAULTS[optimizer]
    assert {k: training[k] for k in expected} == expected
    assert set(training) & ALL_OPTION_KEYS == set(expected), "only the chosen optimizer's options"


@pytest.mark.parametrize("loss", list(KERAS_LOSS_DEFAULTS))
def test_to_dict_has_the_chosen_losss_options_with_keras_defaults(loss: str) -> None:
    training = resolve(None, {"loss": loss}).to_dict()["training"]
    expected = {**KERAS_OPTIMIZER_DEFAULTS["sgd"], **KERAS_LOSS_DEFAULTS[loss]}
    assert {k: training[k] for k in expected} == expected
    assert set(training) & ALL_OPTION_KEYS == set(expected)


def test_to_dict_reports_an_option_the_user_set() -> None:
    training = resolve(None, {"optimizer": "adam", "beta_1": 0.8}).to_dict()["training"]
    assert training["beta_1"] == 0.8
    assert training["beta_2"] == 0.999  # still Keras's default


def test_catalogue_defaults_are_what_this_file_expects() -> None:
    """Keeps the tables above honest if the catalogue changes."""
    for name, spec in catalog.OPTIMIZERS.items():
        assert {o.key: o.default for o in spec.options} == KERAS_OPTIMIZER_DEFAULTS[name]
    for name, spec in catalog.LOSSES.items():
        assert {o.key: o.default for o in spec.options} == KERAS_LOSS_DEFAULTS[name]


# -- 6. load_toml type-checks; resolve range-checks ----------------------------------------------


def test_load_toml_returns_only_the_keys_present_typed(tmp_path: Path) -> None:
    """A TOML integer is accepted where a float is wanted, and becomes a float."""
    path = write_toml(tmp_path, "[training]\nlearning_rate = 1\nepochs = 3\n\n[check]\natol = 0\n")
    values = load_toml(path)
    assert values == {"learning_rate": 1.0, "epochs": 3, "atol": 0.0}
    assert isinstance(values["learning_rate"], float) and isinstance(values["atol"], float)


def test_load_toml_of_an_empty_file_is_empty(tmp_path: Path) -> None:
    assert load_toml(write_toml(tmp_path, "# nothing set\n")) == {}


def test_load_toml_leaves_ranges_to_resolve(tmp_path: Path) -> None:
    """``epochs = 0`` is the right type, so load_toml keeps it; resolve refuses it."""
    path = write_toml(tmp_path, "[training]\nepochs = 0\n")
    assert load_toml(path) == {"epochs": 0}
    with pytest.raises(InputError):
        resolve(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[train]\n", r"unknown table \[train\]", id="unknown-table"),
        pytest.param("[training]\nepoch = 3\n", r"unknown key 'epoch' in \[training\]", id="unknown-key"),
        pytest.param('[training]\nepochs = "3"\n', r"epochs = '3' must be an integer", id="wrong-type"),
        pytest.param("[training\n", r"not valid TOML", id="malformed"),
    ],
)
def test_load_toml_refuses_what_it_cannot_type(tmp_path: Path, text: str, message: str) -> None:
    """The message starts with the file's path (tests/test_bad_input.py covers many more)."""
    path = write_toml(tmp_path, text)
    with pytest.raises(InputError, match=message) as raised:
        load_toml(path)
    assert str(raised.value).startswith(str(path))


def test_load_toml_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--config: file not found: .*missing\.toml"):
        load_toml(tmp_path / "missing.toml")


def test_load_toml_of_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_toml(tmp_path)


# -- 7. the schema, and the shipped config files -------------------------------------------------


def test_schema_keys_and_flags_are_unique() -> None:
    keys = [s.key for s in SCHEMA]
    flags = [s.cli_flag for s in SCHEMA]
    assert len(set(keys)) == len(keys), sorted(k for k in keys if keys.count(k) > 1)
    assert len(set(flags)) == len(flags), sorted(f for f in flags if flags.count(f) > 1)
    assert set(SETTINGS) == set(keys)


@pytest.mark.parametrize("setting", SCHEMA, ids=lambda s: s.key)
def test_every_setting_is_documented_and_placed(setting: Any) -> None:
    """One line of help for ``--help``, a known table, and a default that the dataclass agrees on."""
    assert setting.help.strip(), f"{setting.key} has no help text"
    assert "\n" not in setting.help
    assert setting.table in TABLES
    assert setting.cli_flag.startswith("--")
    if setting.option is None:
        section = {"data": DataConfig, "training": TrainingConfig, "check": type(Config().check)}
        assert setting.key in section[setting.table].__dataclass_fields__
    setting.default()  # every setting has a default to show in --help


def test_there_are_shipped_configs() -> None:
    assert SHIPPED_CONFIGS, "configs/*.toml is empty: the test below would check nothing"


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_every_key_in_a_shipped_config_is_a_known_setting(path: Path) -> None:
    """The examples in configs/ load (unknown keys would raise), resolve, and hold no stray key."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw_keys = {key for body in raw.values() for key in body}
    values = load_toml(path)
    assert set(values) == raw_keys <= set(SETTINGS)
    for table, body in raw.items():
        for key in body:
            assert SETTINGS[key].table == table, f"{key} belongs in [{SETTINGS[key].table}]"
    config = resolve(path)
    if config.data.csv is not None:
        assert config.data.csv.is_file(), f"{path.name} points at a missing CSV {config.data.csv}"
