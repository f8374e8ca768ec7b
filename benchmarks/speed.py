"""Produce README's performance table: run `python benchmarks/speed.py` and paste its output.

Measures, on this machine:
1. `fitvstape --help` wall time (target: well under 0.5 s);
2. `fitvstape run` with defaults against `benchmarks/bare_fit.py` (the notebook's bare
   `model.fit` on the same data), alternated run by run so both see the same machine load
   (target: at most 1.25x);
3. `fitvstape bench` at 20,000 samples x 4 features, batch 32, 3 epochs (target: the compiled
   tape loop at least 2x faster per epoch than fit, and bit-exact);
4. peak RSS of `fitvstape run` on a 1,000,000 x 16 CSV, 2 epochs, batch 8192 (target: well
   under 1.6 GB).

Medians throughout, since the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FITVSTAPE = [sys.executable, "-m", "fitvstape"]


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak resident memory of a child process, from getrusage (Linux reports KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024


def write_big_csv(path: Path, rows: int, features: int) -> None:
    rng = np.random.default_rng(0)
    with path.open("w") as fh:
        fh.write(",".join([f"f{i}" for i in range(features)] + ["y"]) + "\n")
        for start in range(0, rows, 100_000):
            x = rng.standard_normal((min(100_000, rows - start), features))
            y = x @ np.linspace(1, -1, features) + 0.5 + 0.1 * rng.standard_normal(len(x))
            np.savetxt(fh, np.column_stack([x, y]), delimiter=",", fmt="%.6g")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (default 5)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}\n"
    )

    helps = [wall([*FITVSTAPE, "--help"]) for _ in range(args.repeat)]
    runs, bares = [], []
    for _ in range(args.repeat):
        runs.append(wall([*FITVSTAPE, "run"]))
        bares.append(wall([sys.executable, str(HERE / "bare_fit.py")]))
    print("| measurement | median | target |")
    print("| --- | ---: | --- |")
    print(f"| `fitvstape --help` | {statistics.median(helps):.2f} s | well under 0.5 s |")
    print(f"| bare notebook `model.fit` script | {statistics.median(bares):.2f} s | |")
    print(f"| `fitvstape run` (both paths) | {statistics.median(runs):.2f} s | |")
    ratio = statistics.median(r / b for r, b in zip(runs, bares))
    print(f"| run / bare fit, median of paired ratios | {ratio:.2f}x | at most 1.25x |")

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "big.csv"
        write_big_csv(csv, 1_000_000, 16)
        rss = peak_rss_mb(
            [
                *FITVSTAPE,
                "run",
                "--data",
                str(csv),
                "--epochs",
                "2",
                "--batch-size",
                "8192",
                "--format",
                "json",
                "-o",
                str(Path(tmp) / "r.json"),
            ]
        )
        verdict = json.loads((Path(tmp) / "r.json").read_text())["summary"]["verdict"]
    print(f"| peak RSS, 1,000,000 x 16 CSV, 2 epochs, batch 8192 | {rss:.0f} MB | well under 1,600 MB |")
    print(f"\n1M-row run: {verdict}\n")

    bench = subprocess.run(
        [
            *FITVSTAPE,
            "bench",
            "--samples",
            "20000",
            "--features",
            "4",
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--repeat",
            "3",
            "--format",
            "markdown",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    print("`fitvstape bench --samples 20000 --features 4 --epochs 3 --batch-size 32 --repeat 3`:\n")
    print(bench.stdout)


if __name__ == "__main__":
    main()
