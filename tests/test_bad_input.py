"""Bad input is refused the same way everywhere: exit status 2, a short message, no traceback.

The contract (``fitvstape/errors.py``): a mistake in a flag, a config file or a CSV ends with exit
status 2 and at most two lines (``Error: ...`` and maybe a ``Try ... --help`` hint) that name
the flag, key or file *and* the bad value, so the user can fix it without reading code.

Read top to bottom:

1. flags with a bad value;
2. flags that are fine alone but not together;
3. config files (unknown tables and keys, wrong types, malformed TOML, missing files);
4. CSV files (empty, ragged, non-numeric, non-finite, missing columns);
5. ``run`` and ``check`` refuse the same things;
6. ``--output`` never overwrites an input, and needs an existing folder;
7. validation happens before TensorFlow is imported (a subprocess proves it).

None of these tests trains: the autouse ``no_training`` fixture turns any bad input that slips
through validation into a failure that says so, instead of a slow training run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import fitvstape.runner
from fitvstape.cli import cli

EXIT_BAD_INPUT = 2

# Files the cases below refer to by name; the ``workdir`` fixture writes them and cd's there,
# so messages name them exactly as the user typed them.
CSV_FILES = {
    "good.csv": "x1,x2,y\n1,2,3\n4,5,6\n7,8,9\n",
    "empty.csv": "",
    "header_only.csv": "x,y\n",
    "ragged.csv": "x,y\n1,2\n3,4,5\n",  # row 3 has three values
    "letters.csv": "x,y\n1,2\n3,abc\n",  # row 3, column 'y'
    "nan.csv": "x,y\n1,2\nnan,4\n",  # row 3, column 'x'
    "inf.csv": "x,y\n1,inf\n",  # row 2, column 'y'
    "one_column.csv": "y\n1\n2\n",
    "duplicate.csv": "x,x,y\n1,2,3\n",
}
GOOD_CONFIG = "[data]\nsamples = 8\n\n[training]\nepochs = 1\n"


@pytest.fixture(autouse=True)
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast, and say why, if a bad input gets past validation and reaches training."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input got past validation and reached training")

    monkeypatch.setattr(fitvstape.runner, "initial_weights", refuse)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder holding the CSV files above, ``good.toml`` and a sub-folder; cd'd into."""
    for name, text in CSV_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "good.toml").write_text(GOOD_CONFIG, encoding="utf-8")
    (tmp_path / "a_folder").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- the one assertion every case makes ---------------------------------------------------------


@dataclass
class Outcome:
    result: Result
    shown: str  # what the user's terminal shows: stdout, stderr and any Python warning


def invoke(*args: str) -> Outcome:
    """Run the CLI in-process, and collect the Python warnings a user would see on stderr too.

    pytest captures warnings, so a stray ``UserWarning`` would not reach ``result.output``;
    outside pytest it prints two more lines. Warnings Python hides by default are ignored here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=hidden)
        result = CliRunner().invoke(cli, list(args))
    shown = result.output + "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught
    )
    return Outcome(result, shown)


def assert_refused(args: list[str], *mentions: str) -> Outcome:
    """Exit 2, no traceback, one or two lines on stderr only, naming every one of ``mentions``."""
    outcome = invoke(*args)
    result, shown = outcome.result, outcome.shown
    where = f"\n$ fitvstape {' '.join(args)}\n{shown}(exception: {result.exception!r})"
    assert result.exit_code == EXIT_BAD_INPUT, f"exit {result.exit_code}, not 2:{where}"
    assert isinstance(result.exception, SystemExit), f"crashed instead of exiting:{where}"
    assert "Traceback" not in shown, f"traceback shown:{where}"
    lines = [line for line in shown.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, f"{len(lines)} lines, not 1 or 2:{where}"
    assert lines[0].startswith("Error: "), where
    assert result.stdout == "", f"the error went to stdout:{where}"
    for text in mentions:
        assert text in shown, f"the message does not mention {text!r}:{where}"
    return outcome


def case(args: str, *mentions: str, id: str) -> object:
    """One bad command line (``args`` split on spaces) and what its message must mention."""
    return pytest.param(args.split(), mentions, id=id)


# -- 1. flags with a bad value --------------------------------------------------------------------

FLAG_CASES = [
    case("run --epochs 0", "--epochs", "0", id="epochs-zero"),
    case("run --epochs -3", "--epochs", "-3", id="epochs-negative"),
    case("run --epochs abc", "--epochs", "abc", id="epochs-not-a-number"),
    case("run --lr 0", "--lr", "0.0", id="lr-zero"),
    case("run --lr -1", "--lr", "-1", id="lr-negative"),
    case("run --lr nan", "--lr", "nan", id="lr-nan"),
    case("run --lr inf", "--lr", "inf", id="lr-inf"),
    case("run --batch-size 0", "--batch-size", "0", id="batch-size-zero"),
    case("run --batch-size half", "--batch-size", "half", id="batch-size-word"),
    case("run --samples 0", "--samples", "0", id="samples-zero"),
    case("run --features 0", "--features", "0", id="features-zero"),
    case("run --noise -0.1", "--noise", "-0.1", id="noise-negative"),
    case("run --optimizer adagradx", "--optimizer", "adagradx", id="optimizer-unknown"),
    case("run --loss hinge", "--loss", "hinge", id="loss-unknown"),
    case("run --rtol -1", "--rtol", "-1", id="rtol-negative"),
    case("check --atol -1e-9", "--atol", "-1e-09", id="atol-negative-on-check"),
    case("run --true-weights 1,,2", "--true-weights", "1,,2", id="true-weights-empty-item"),
    case("run --true-bias inf", "--true-bias", "inf", id="true-bias-inf"),
    case("run --momentum 1.5", "--momentum", "1.5", id="momentum-above-one"),
    case("run --seed -1", "--seed", "-1", id="seed-negative"),
    case("run --seed 9223372036854775808", "--seed", "9223372036854775808", id="seed-above-int64"),
]


@pytest.mark.parametrize(("args", "mentions"), FLAG_CASES)
def test_flag_with_a_bad_value_is_refused(workdir: Path, args: list[str], mentions: tuple[str, ...]) -> None:
    """Each flag is range-checked; the message names the flag and echoes the value."""
    assert_refused(args, *mentions)


# -- 2. flags that are fine alone but not together -----------------------------------------------

COMBINATION_CASES = [
    case(
        "run --momentum 0.9 --optimizer adam",
        "--momentum",
        "adam",
        id="momentum-with-adam",
    ),
    case("run --huber-delta 2", "--huber-delta", "mse", id="huber-delta-with-default-mse"),
    case("run --target y", "--target", "--data", id="target-without-data"),
    case("run --samples 10 --data good.csv", "--samples", "--data", id="samples-with-csv"),
    case(
        "run --true-weights 1,2 --features 3",
        "--true-weights",
        "--features",
        "2 weights",
        "3 features",
        id="true-weights-count-vs-features",
    ),
]


@pytest.mark.parametrize(("args", "mentions"), COMBINATION_CASES)
def test_flags_that_conflict_are_refused(workdir: Path, args: list[str], mentions: tuple[str, ...]) -> None:
    """Nothing is silently ignored: the message names both settings and the value that clashes."""
    assert_refused(args, *mentions)


# -- 3. config files -----------------------------------------------------------------------------

CONFIG_CASES = [
    pytest.param("[train]\nepochs = 3\n", ("[train]", "[training]"), id="unknown-table"),
    pytest.param("[data]\nsample = 10\n", ("'sample'", "[data]", "known: samples"), id="misspelt-data-key"),
    pytest.param(
        "[training]\nepoch = 10\n", ("'epoch'", "[training]", "known: epochs"), id="misspelt-training-key"
    ),
    pytest.param(
        "[check]\natoll = 0.1\n", ("'atoll'", "[check]", "known: rtol, atol"), id="misspelt-check-key"
    ),
    pytest.param("[data]\nepochs = 3\n", ("'epochs'", "[data]"), id="key-in-the-wrong-table"),
    pytest.param('[training]\nepochs = "10"\n', ("epochs", "'10'"), id="epochs-string"),
    pytest.param('[training]\nshuffle = "yes"\n', ("shuffle", "'yes'"), id="shuffle-string"),
    pytest.param("[training]\nlearning_rate = true\n", ("learning_rate", "true"), id="learning-rate-bool"),
    pytest.param('[training]\nbatch_size = "half"\n', ("batch_size", "'half'"), id="batch-size-word"),
    pytest.param('[data]\ntrue_weights = "1,2"\n', ("true_weights", "'1,2'"), id="true-weights-string"),
    pytest.param("[training]\noptimizer = 3\n", ("optimizer", "3"), id="optimizer-number"),
    pytest.param("[training]\nepochs = 0\n", ("epochs", "0"), id="epochs-zero"),
    pytest.param("[training]\nlearning_rate = nan\n", ("learning_rate", "nan"), id="learning-rate-nan"),
    pytest.param('[training]\noptimizer = "adagradx"\n', ("optimizer", "adagradx"), id="optimizer-unknown"),
    pytest.param("[training]\nseed = -1\n", ("seed", "-1"), id="seed-negative"),
    pytest.param(
        '[training]\noptimizer = "adam"\nmomentum = 0.9\n', ("momentum", "adam"), id="momentum-with-adam"
    ),
    pytest.param('[data]\ntarget = "y"\n', ("target", "csv"), id="target-without-csv"),
    # The file is named, but the message must point at the config file, not at a --data flag
    # the user never typed.
    pytest.param('[data]\ncsv = "missing.csv"\n', ("missing.csv",), id="csv-file-missing"),
    pytest.param("[training\nepochs = 3\n", ("not valid TOML", "line 1"), id="malformed-table-header"),
    pytest.param("[training]\nepochs = = 3\n", ("not valid TOML", "line 2"), id="malformed-value"),
    pytest.param(b"\xff\xfe[training]\n", ("not valid TOML",), id="not-utf8"),
]


@pytest.mark.parametrize(("content", "mentions"), CONFIG_CASES)
def test_bad_config_file_is_refused(workdir: Path, content: str | bytes, mentions: tuple[str, ...]) -> None:
    """A bad config file: the message names the file, the key (or line) and the value."""
    path = workdir / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert_refused(["run", "--config", "bad.toml"], "bad.toml", *mentions)


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        case("run --config nope.toml", "--config", "nope.toml", id="config-missing"),
        case("run --config a_folder", "--config", "a_folder", id="config-is-a-folder"),
    ],
)
def test_config_path_that_is_not_a_file_is_refused(
    workdir: Path, args: list[str], mentions: tuple[str, ...]
) -> None:
    """``--config`` must name a readable file."""
    assert_refused(args, *mentions)


# -- 4. CSV files --------------------------------------------------------------------------------

CSV_CASES = [
    case("run --data empty.csv", "empty.csv", "empty", id="empty-file"),
    case("run --data header_only.csv", "header_only.csv", "no data rows", id="header-only"),
    case("run --data ragged.csv", "ragged.csv", "row 3", "3 values", id="ragged-row"),
    case("run --data letters.csv", "letters.csv", "row 3", "'y'", "'abc'", id="non-numeric-cell"),
    case("run --data nan.csv", "nan.csv", "row 3", "'x'", "nan", id="nan-cell"),
    case("run --data inf.csv", "inf.csv", "row 2", "'y'", "inf", id="inf-cell"),
    case("run --data good.csv --target nope", "--target", "'nope'", "good.csv", id="target-column-missing"),
    case("run --data one_column.csv", "one_column.csv", "no feature column", id="only-one-column"),
    case("run --data missing.csv", "--data", "missing.csv", id="csv-file-missing"),
    case("run --data a_folder", "--data", "a_folder", id="csv-is-a-folder"),
    case("run --data duplicate.csv", "duplicate.csv", "'x'", "twice", id="duplicate-header"),
]


@pytest.mark.parametrize(("args", "mentions"), CSV_CASES)
def test_bad_csv_is_refused(workdir: Path, args: list[str], mentions: tuple[str, ...]) -> None:
    """A bad CSV: the message names the file and, for a bad cell, its row (1 = header) and column."""
    assert_refused(args, *mentions)


# -- 5. run and check refuse the same things -----------------------------------------------------

SHARED_CASES = [
    case("--epochs 0", "--epochs", id="epochs-zero"),
    case("--lr nan", "--lr", "nan", id="lr-nan"),
    case("--optimizer adagradx", "--optimizer", "adagradx", id="optimizer-unknown"),
    case("--momentum 0.9 --optimizer adam", "--momentum", "adam", id="momentum-with-adam"),
    case("--data ragged.csv", "ragged.csv", "row 3", id="ragged-csv"),
    case("--config nope.toml", "nope.toml", id="config-missing"),
    case("--output nowhere/report.txt", "--output", "nowhere", id="output-folder-missing"),
]


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(("args", "mentions"), SHARED_CASES)
def test_run_and_check_refuse_the_same_input(
    workdir: Path, command: str, args: list[str], mentions: tuple[str, ...]
) -> None:
    """``check`` is ``run`` plus a verdict: a mistake that stops one stops the other, the same way."""
    outcome = assert_refused([command, *args], *mentions)
    other = "check" if command == "run" else "run"
    assert invoke(other, *args).result.output == outcome.result.output.replace(
        f" {command} --help", f" {other} --help"
    )


# -- 6. --output never overwrites an input -------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("spelling", ["good.toml", "./good.toml", "absolute", "symlink"])
def test_output_may_not_overwrite_the_config_file(workdir: Path, command: str, spelling: str) -> None:
    """Writing the report over ``--config``'s file would destroy the input: refused, file untouched."""
    config = workdir / "good.toml"
    before = config.read_bytes()
    listing = sorted(os.listdir(workdir))
    if spelling == "absolute":
        spelling = str(config)
    elif spelling == "symlink":
        (workdir / "alias.toml").symlink_to(config)
        listing = sorted(os.listdir(workdir))
        spelling = "alias.toml"
    shown_as = str(Path(spelling))  # click hands the path on as a Path: "./good.toml" -> "good.toml"
    assert_refused([command, "--config", "good.toml", "--output", spelling], "--output", shown_as)
    assert config.read_bytes() == before
    assert sorted(os.listdir(workdir)) == listing, "a temporary report file was left behind"


def test_output_may_not_overwrite_the_csv(workdir: Path) -> None:
    """The CSV given with ``--data`` is an input too."""
    before = (workdir / "good.csv").read_bytes()
    assert_refused(["run", "--data", "good.csv", "--output", "good.csv"], "--output", "good.csv")
    assert (workdir / "good.csv").read_bytes() == before


def test_output_may_not_overwrite_the_csv_named_in_the_config(workdir: Path) -> None:
    """A CSV named in the config file (relative to that file) is protected the same way."""
    (workdir / "csv.toml").write_text('[data]\ncsv = "good.csv"\n', encoding="utf-8")
    before = (workdir / "good.csv").read_bytes()
    assert_refused(["run", "--config", "csv.toml", "--output", "good.csv"], "--output", "good.csv")
    assert (workdir / "good.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        case("run --output nowhere/report.txt", "--output", "nowhere", id="missing-folder"),
        case("run --output a/b/c/report.json", "--output", "a/b/c", id="missing-nested-folder"),
        case("run --output a_folder", "--output", "a_folder", id="output-is-a-folder"),
    ],
)
def test_output_needs_an_existing_folder(workdir: Path, args: list[str], mentions: tuple[str, ...]) -> None:
    """The report is written atomically beside its destination, so that folder must exist."""
    assert_refused(args, *mentions)
    assert not (workdir / "nowhere").exists()


# -- 7. validation happens before TensorFlow is imported -----------------------------------------

IMPORT_PROBE = """
import sys
from fitvstape.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="fitvstape", standalone_mode=True)
except SystemExit as exc:
    print("exit", exc.code)
print("imported", sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run", "--epochs", "0"], id="bad-flag"),
        pytest.param(["check", "--config", "bad.toml"], id="bad-config"),
        pytest.param(["run", "--data", "ragged.csv"], id="bad-csv"),
    ],
)
def test_bad_input_is_refused_without_importing_tensorflow(workdir: Path, args: list[str]) -> None:
    """In a fresh interpreter, so nothing another test imported can hide an import.

    The CSV case matters most: the CSV is read inside ``run_comparison``, after the runner module
    is imported, and must still be rejected before TensorFlow loads (seconds, and log noise).
    """
    (workdir / "bad.toml").write_text("[training]\nepoch = 3\n", encoding="utf-8")
    probe = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert "exit 2" in probe.stdout, probe.stdout + probe.stderr
    assert "imported []" in probe.stdout, probe.stdout + probe.stderr
