"""One worker process of :func:`fitvstape.distribute.run_workers`; not a user entry point.

``python -m fitvstape._worker FOLDER INDEX``, with ``TF_CONFIG`` naming the cluster and this
task. It reads ``FOLDER/job.pkl`` (the data, plan, initial weights and settings the parent
resolved), creates the MultiWorkerMirroredStrategy before any other TensorFlow work, trains the
fit path and then the tape path under it, and writes ``FOLDER/result-INDEX.pkl``. It then waits
until every worker has written its result (so no peer is left waiting on a collective with it)
and leaves with ``os._exit``, skipping TensorFlow's teardown. A watchdog ends it if the parent
process goes away; the parent ends it on failure, timeout and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from pathlib import Path


def main(argv: list[str]) -> None:
    folder, index = Path(argv[0]), int(argv[1])
    with (folder / "job.pkl").open("rb") as fh:
        job = pickle.load(fh)
    deadline = time.monotonic() + float(job["timeout_s"])
    _watch_parent(int(job["parent_pid"]))

    from fitvstape.backend import tensorflow
    from fitvstape.distribute import KILL_WORKER_VARIABLE, multi_worker_strategy, train_tape_distributed
    from fitvstape.trainers.fit import train_fit

    tensorflow()
    import keras

    keras.config.disable_traceback_filtering()  # full tracebacks in the worker's log
    strategy = multi_worker_strategy()
    data, plan, initial, training = job["data"], job["plan"], job["initial"], job["training"]
    fit = train_fit(data, plan, initial, training, strategy=strategy)

    hook = None
    if index == 1 and os.environ.get(KILL_WORKER_VARIABLE) == "1":

        def hook(epoch: int) -> None:
            os.kill(os.getpid(), signal.SIGKILL)  # abrupt, as an OOM kill would be

    tape = train_tape_distributed(
        data,
        plan,
        initial,
        training,
        strategy,
        recipe=job["recipe"],
        eager=training.eager,
        on_epoch_end=hook,
    )
    result = {
        "fit": fit,
        "tape": tape,
        "strategy": "MultiWorkerMirroredStrategy",
        "replicas": strategy.num_replicas_in_sync,
        "devices": list(strategy.extended.worker_devices),
    }
    partial = folder / f".result-{index}.pkl"
    with partial.open("wb") as fh:
        pickle.dump(result, fh)
    partial.replace(folder / f"result-{index}.pkl")

    others = [folder / f"result-{i}.pkl" for i in range(int(job["workers"]))]
    while not all(p.exists() for p in others) and time.monotonic() < deadline:
        time.sleep(0.05)


def _watch_parent(parent_pid: int) -> None:
    """Exit as soon as the parent is gone (re-parented), so that no worker is ever orphaned."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.25)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BaseException as exc:  # reported to the parent, which ends the run
        traceback.print_exc()
        summary = (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]
        with contextlib.suppress(OSError, IndexError):
            (Path(sys.argv[1]) / f"error-{sys.argv[2]}.txt").write_text(summary[:500])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
