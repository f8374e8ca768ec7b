"""Regression data (synthetic or CSV) as float32 arrays, and the batch plan both paths follow.

Nothing here imports TensorFlow: data problems are reported before any training starts.

Seeds: one user seed drives everything through independent NumPy streams, so changing the
batch size never changes the data and vice versa.

- data: ``default_rng([seed, 0])``
- epoch ``e``'s shuffle order: ``default_rng([seed, 1, e])``
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fitvstape.config import DataConfig
from fitvstape.errors import InputError

_DATA_STREAM = 0
_SHUFFLE_STREAM = 1


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``x`` (n, F) and target ``y`` (n, 1), both float32 and C-contiguous.

    ``y`` is a column, like the model's output: a ``(n,)`` target against a ``(n, 1)``
    prediction is the classic broadcasting bug in hand-written losses.
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    source: str
    true_weights: tuple[float, ...] | None = None
    true_bias: float | None = None

    @property
    def samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def features(self) -> int:
        return int(self.x.shape[1])

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "samples": self.samples,
            "features": list(self.feature_names),
            "target": self.target_name,
        }


def load(config: DataConfig, seed: int, origins: Mapping[str, str] | None = None) -> Dataset:
    """The data a run trains on: the CSV if one is set, else the synthetic generator.

    ``origins`` says where ``csv`` and ``target`` were set (a flag or a config key), so that a
    bad file is blamed on what the user actually wrote.
    """
    if config.csv is not None:
        origins = origins or {}
        return read_csv(
            config.csv, config.target, origins.get("csv", "--data"), origins.get("target", "--target")
        )
    return synthesize(config, seed)


def default_true_weights(features: int) -> tuple[float, ...]:
    """Evenly spaced from 2 down to -1: ``(2.0,)`` for one feature, as in ``y = 2x + b``."""
    return tuple(float(w) for w in np.linspace(2.0, -1.0, features))


def synthesize(config: DataConfig, seed: int) -> Dataset:
    """``y = x @ w + b + noise * e`` with ``x, e ~ N(0, 1)``, drawn in float64 and stored as float32."""
    weights = config.true_weights or default_true_weights(config.features)
    rng = np.random.default_rng([seed, _DATA_STREAM])
    x = rng.standard_normal((config.samples, config.features))
    y = x @ np.asarray(weights)[:, None] + config.true_bias
    y += config.noise * rng.standard_normal((config.samples, 1))
    return Dataset(
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.float32),
        feature_names=tuple(f"x{i}" for i in range(config.features)),
        target_name="y",
        source="synthetic",
        true_weights=tuple(weights),
        true_bias=config.true_bias,
    )


def read_csv(
    path: Path, target: str | None = None, origin: str = "--data", target_origin: str = "--target"
) -> Dataset:
    """Read a numeric CSV with a header row; ``target`` (default: the last column) is predicted.

    Parsing is one vectorised ``np.loadtxt`` call into a float32 table: the same values as parsing
    to float64 and casting (NumPy parses through a double), at half the memory, 68 MB for a
    million rows of 17 columns. Only when it fails is
    the file scanned again in Python, to name the bad row and column. A value beyond float32's
    range becomes inf and is reported as not finite.
    """
    header = _read_header(path, origin)
    if len(set(header)) != len(header):
        dup = next(name for name in header if header.count(name) > 1)
        raise InputError(f"{origin} {path}: column {dup!r} appears twice in the header")
    target = header[-1] if target is None else target
    if target not in header:
        raise InputError(f"{target_origin}: no column {target!r} in {path} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise InputError(f"{origin} {path}: no feature column (only the target {target!r})")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2, encoding="utf-8")
    except ValueError:
        raise InputError(_locate_bad_cell(path, header, origin)) from None
    if table.shape[0] == 0:
        raise InputError(f"{origin} {path}: header only, no data rows")
    if table.shape[1] != len(header):
        raise InputError(
            f"{origin} {path}: rows have {table.shape[1]} values but the header has {len(header)}"
        )
    bad = np.argwhere(~np.isfinite(table))
    if bad.size:
        row, col = bad[0]
        raise InputError(
            f"{origin} {path}: row {row + 2}, column {header[col]!r}: "
            f"{table[row, col]} is not a finite number"
        )
    t = header.index(target)
    feature_cols = [i for i in range(len(header)) if i != t]
    return Dataset(
        x=np.ascontiguousarray(table[:, feature_cols], dtype=np.float32),
        y=np.ascontiguousarray(table[:, [t]], dtype=np.float32),
        feature_names=tuple(header[i] for i in feature_cols),
        target_name=target,
        source=str(path),
    )


def _read_header(path: Path, origin: str) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            first = fh.readline()
    except FileNotFoundError:
        raise InputError(f"{origin}: file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{origin}: {path} is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise InputError(f"{origin} {path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise InputError(f"{origin}: cannot read {path}: {exc.strerror}") from None
    if not first.strip():
        raise InputError(f"{origin} {path}: the file is empty (expected a header row)")
    header = [name.strip() for name in next(csv.reader([first]))]
    if any(not name for name in header):
        raise InputError(f"{origin} {path}: the header has an empty column name")
    return header


def _locate_bad_cell(path: Path, header: list[str], origin: str) -> str:
    """The first ragged row or non-numeric cell, as a message. Runs only after loadtxt failed."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        rows = csv.reader(fh)
        next(rows)
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                return f"{origin} {path}: row {line} has {len(row)} values but the header has {len(header)}"
            for name, cell in zip(header, row):
                try:
                    float(cell)
                except ValueError:
                    return f"{origin} {path}: row {line}, column {name!r}: {cell.strip()!r} is not a number"
    return f"{origin} {path}: cannot parse the file as numbers"


@dataclass(frozen=True)
class BatchPlan:
    """Which samples go into which batch, epoch by epoch. Both paths follow it exactly.

    The tool owns the order rather than relying on Keras's private shuffle (which changed
    between Keras versions): epoch ``e`` visits ``order(e)`` in slices of ``batch_size``, the
    last one partial when ``batch_size`` does not divide ``samples``.
    """

    samples: int
    batch_size: int
    shuffle: bool
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.samples / self.batch_size)

    @property
    def batch_sizes(self) -> list[int]:
        full, rest = divmod(self.samples, self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices (int64) epoch ``epoch`` (0-based) visits, in order."""
        if not self.shuffle:
            return np.arange(self.samples, dtype=np.int64)
        return np.random.default_rng([self.seed, _SHUFFLE_STREAM, epoch]).permutation(self.samples)


def batch_plan(samples: int, batch_size: int | None, shuffle: bool, seed: int) -> BatchPlan:
    """The plan for ``samples`` rows; ``batch_size`` None (``"full"``) is one batch per epoch.

    A batch size above the sample count is one batch, as in ``fit``.
    """
    size = samples if batch_size is None else min(batch_size, samples)
    return BatchPlan(samples=samples, batch_size=size, shuffle=shuffle, seed=seed)


def closed_form(data: Dataset, chunk_rows: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares optimum (kernel (F, 1), bias (1,)) in float64: the MSE floor.

    Solved from the normal equations ``[X 1]^T [X 1] w = [X 1]^T y``, accumulated in float64
    over chunks of rows, so a million-row data set needs a few MB here rather than a float64
    copy of it. Squaring the condition number costs accuracy only for nearly collinear features;
    the result is a reference column, not something the two paths are compared against.
    """
    features = data.features
    gram = np.zeros((features + 1, features + 1))
    moment = np.zeros((features + 1, 1))
    for start in range(0, data.samples, chunk_rows):
        x = data.x[start : start + chunk_rows].astype(np.float64)
        augmented = np.hstack([x, np.ones((x.shape[0], 1))])
        gram += augmented.T @ augmented
        moment += augmented.T @ data.y[start : start + chunk_rows].astype(np.float64)
    solution, *_ = np.linalg.lstsq(gram, moment, rcond=None)
    return solution[:-1], solution[-1]
