"""Both paths under ``tf.distribute``: MirroredStrategy in this process, or local worker processes.

What fit does under a strategy (``keras/src/backend/tensorflow/trainer.py`` and
``keras/src/losses/loss.py``, Keras 3.15), and so what the tape loop here does too:

1. Each replica gets its share of every planned batch: fit hands the ``tf.data`` pipeline to
   ``strategy.experimental_distribute_dataset``, which splits each global batch across the
   replicas (16 -> 8 + 8, a partial 6 -> 3 + 3). The loop distributes the same pipeline the
   same way.
2. A ``sum_over_batch_size`` loss is the replica's own mean times ``1/R``
   (``scale_loss_for_distribution``), and each ``model.losses`` penalty is summed and scaled
   by ``1/R`` too (``TensorFlowTrainer._aggregate_additional_loss``). The optimizer then
   SUM-all-reduces the replicas' gradients, so the update is the mean gradient. The loop takes
   the per-example losses (the same Keras loss built with ``reduction=None``) and averages them
   as ``tf.nn.compute_average_loss`` does, ``sum / (n_replica * R)``, rounded in fit's order
   (:func:`average_loss`; the same bits as ``compute_average_loss`` when ``R`` is a power of two).
3. The loss tracker is updated on every replica with the loss unscaled (times ``R``) and
   weighted by that replica's batch size; its variables are sum-on-read, so the epoch loss
   fit reports is ``sum(n_r * L_r) / sum(n_r)`` over every replica and batch.
4. ``apply_gradients`` runs inside ``strategy.run``; model, optimizer and metric are created in
   ``strategy.scope()``.

:func:`fitvstape.runner.run_comparison` uses these pieces under MirroredStrategy
on ``replicas`` devices of this process; :func:`run_workers` runs it under
MultiWorkerMirroredStrategy in ``workers`` local processes (:mod:`fitvstape._worker`) and
collects the chief's result.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fitvstape import catalog
from fitvstape.backend import tensorflow
from fitvstape.config import Config, TrainingConfig
from fitvstape.data import BatchPlan, Dataset, batch_plan, load
from fitvstape.errors import DistributedError, InputError
from fitvstape.model import Weights, build_model, initial_weights, read_weights
from fitvstape.pitfalls import Recipe, recipe
from fitvstape.trainers.common import PathRun, as_floats, planned_batches

if TYPE_CHECKING:  # runner imports this module to route distributed runs here
    from fitvstape.runner import RunResult

KILL_WORKER_VARIABLE = "FITVSTAPE_TEST_KILL_WORKER"
"""Test hook: set to ``1`` and worker task 1 kills itself (SIGKILL) after its first tape epoch."""

_GRACE_S = 3.0  # SIGTERM -> SIGKILL
_POLL_S = 0.05


@dataclass(frozen=True)
class DistributionInfo:
    """How a run was distributed: the strategy class, replicas in sync, processes, and devices."""

    strategy: str
    replicas: int
    workers: int
    devices: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "replicas": self.replicas,
            "workers": self.workers,
            "devices": list(self.devices),
        }


# -- devices ------------------------------------------------------------------------------------

_STRATEGIES: dict[tuple[str, ...], Any] = {}


def configure_replicas(n: int) -> tuple[Any, list[str]]:
    """A MirroredStrategy over ``n`` devices of this process, and their names.

    With ``n`` GPUs it mirrors over the first ``n``; otherwise it splits the first CPU into
    logical CPUs. That split only works before TensorFlow initialises its devices (the first op
    does that); a process already initialised with at least ``n`` logical CPUs is fine and uses
    the first ``n``. The same ``n`` returns the same strategy object.

    Raises:
        InputError: ``n`` < 1, or TensorFlow already runs with fewer than ``n`` logical CPUs.
    """
    if n < 1:
        raise InputError(f"--replicas: {n} must be >= 1")
    tf = tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= n:
        devices = [f"/gpu:{i}" for i in range(n)]
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        current = tf.config.get_logical_device_configuration(cpu)
        if current is None or len(current) < n:
            # A larger split reserved earlier (configure_replicas(4), then (2)) is kept.
            with contextlib.suppress(RuntimeError):  # already initialised: checked below
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
                )
        available = len(tf.config.list_logical_devices("CPU"))
        if available < n:
            raise InputError(
                f"--replicas {n}: TensorFlow already started in this process with {available} "
                f"logical CPU device{'s' if available != 1 else ''}; the CPU can only be split "
                "into replicas before TensorFlow's first operation. Run with --replicas in a "
                "fresh process (or call fitvstape.distribute.configure_replicas first)."
            )
        devices = [f"/cpu:{i}" for i in range(n)]
    key = tuple(devices)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices)
    return _STRATEGIES[key], devices


def multi_worker_strategy() -> Any:
    """A MultiWorkerMirroredStrategy from ``TF_CONFIG`` that Keras's ``fit`` can use.

    In multi-worker mode, Keras 3.15's fit trips over ``strategy.reduce`` twice
    (``keras/src/backend/tensorflow/trainer.py``):

    - to build the model it averages the first batch across replicas,
      ``strategy.reduce("MEAN", (x, y), axis=None)`` (``_maybe_symbolic_build``), but
      ``MultiWorkerMirroredStrategy.reduce`` takes one value, not an ``(x, y)`` pair: "Attempt to
      convert a value (PerReplica...)";
    - it averages each step's scalar logs with ``strategy.reduce("MEAN", v, axis=0)``
      (``reduce_per_replica``): "Invalid reduction dimension 0 for input with 0 dimensions".

    This strategy's ``reduce`` takes each element of a structure on its own, and reduces a scalar
    across replicas (``axis=None``), which is what both callers mean. Neither result feeds
    training: the first is used only for its shapes, the second is the per-step log that
    History replaces with the loss tracker's epoch result.
    """
    tf = tensorflow()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    reduce = strategy.reduce

    def reduce_one(reduce_op: Any, value: Any, axis: Any) -> Any:
        if axis is not None and strategy.experimental_local_results(value)[0].shape.rank == 0:
            axis = None
        return reduce(reduce_op, value, axis=axis)

    def reduce_each(reduce_op: Any, value: Any, axis: Any = None) -> Any:
        return tf.nest.map_structure(lambda v: reduce_one(reduce_op, v, axis), value)

    strategy.reduce = reduce_each
    return strategy


# -- the distributed tape loop ------------------------------------------------------------------


def train_tape_distributed(
    data: Dataset,
    plan: BatchPlan,
    initial: Weights,
    training: TrainingConfig,
    strategy: Any,
    *,
    recipe: Recipe | None = None,
    eager: bool = False,
    on_epoch_end: Callable[[int], None] | None = None,
) -> PathRun:
    """The GradientTape loop under ``strategy``, written the way fit's ``train_step`` runs there.

    Args:
        data, plan, initial, training: as for :func:`fitvstape.trainers.fit.train_fit`.
        strategy: a MirroredStrategy or MultiWorkerMirroredStrategy.
        recipe: the pitfalls to write into the loop. Default: none. Its distributed switches
            decide how each replica's loss is formed from its per-example losses (see
            :func:`replica_loss_form`).
        eager: run each step eagerly instead of in a ``tf.function``. Default False.
        on_epoch_end: called with the 0-based epoch after each epoch. Default: none.
    """
    tf = tensorflow()
    import keras

    from fitvstape.trainers.tape import apply_recipe

    recipe = recipe or Recipe()
    distributed_loss = replica_loss_form(recipe)
    initial, plan, learning_rate = apply_recipe(recipe, initial, plan, training)
    spec = catalog.OPTIMIZERS[training.optimizer]
    replicas = strategy.num_replicas_in_sync
    global_batch = plan.batch_size

    with strategy.scope():
        model = build_model(data.features, training, initial)
        optimizer = spec.build(learning_rate, training.optimizer_settings)
        # Slots (momentum, Adam moments) created now, as fit's symbolic build does: a
        # tf.function may not create mirrored variables on its first call.
        optimizer.build(model.trainable_variables)
        epoch_loss = keras.metrics.Mean()
    loss_fn = catalog.LOSSES[training.loss].build(training.loss_settings)
    # The same loss, unreduced: one value per example, computed exactly as fit's loss computes
    # them before its sum_over_batch_size reduction (and its 1/R scaling) would run.
    per_example_fn = type(loss_fn).from_config({**loss_fn.get_config(), "reduction": None})
    variables = model.trainable_variables

    def replica_loss(x: Any, y: Any) -> Any:
        y_pred = model(x, training=True)
        if recipe.broadcast_shape:
            # (n,) - (n, 1) -> (n, n); its column means average to the (n, n) mean.
            per_example = tf.reduce_mean(tf.square(y[:, 0] - y_pred), axis=0)
        else:
            per_example = per_example_fn(y, y_pred)
        if distributed_loss == "reduce_mean":
            loss = tf.reduce_mean(per_example)
        elif distributed_loss == "fixed_global_batch":
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        else:
            loss = average_loss(per_example, replicas)
        if model.losses and not recipe.skip_regularization:
            penalties = [tf.reduce_sum(p) for p in model.losses]
            if distributed_loss == "aligned" and replicas > 1:
                # fit: ops.multiply(sum, 1/R) (scale_loss_for_distribution)
                penalties = [p * tf.cast(1.0 / replicas, p.dtype) for p in penalties]
            elif distributed_loss == "fixed_global_batch":
                penalties = [tf.nn.scale_regularization_loss(p) for p in penalties]
            # Summed as Trainer.compute_loss sums them (see trainers/tape.py).
            loss = tf.reduce_sum(tf.stack([loss, *penalties]))
        return loss

    def track(loss: Any, x: Any) -> None:
        if distributed_loss != "reduce_mean" and replicas > 1:
            # fit's tracker sees unscale_loss_for_distribution(loss): times R.
            loss = loss * tf.cast(replicas, loss.dtype)
        weight = 1 if recipe.unweighted_epoch_loss else tf.shape(x)[0]
        epoch_loss.update_state(loss, sample_weight=weight)

    def replica_step(x: Any, y: Any) -> None:
        with tf.GradientTape() as tape:
            loss = replica_loss(x, y)
            if not recipe.post_update_loss:
                track(loss, x)  # inside the tape, before the update, as fit's train_step
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        if recipe.post_update_loss:
            track(replica_loss(x, y), x)

    def step(iterator: Any) -> None:
        strategy.run(replica_step, args=next(iterator))

    if not eager:
        step = tf.function(step, jit_compile=False)

    if recipe.reused_optimizer_state:
        warm_up = iter(strategy.experimental_distribute_dataset(planned_batches(data, plan, 1)))
        for _ in range(plan.steps_per_epoch):
            step(warm_up)
        with strategy.scope():
            model.set_weights(initial.as_list())

    losses: list[float] = []
    seconds: list[float] = []
    batches = iter(strategy.experimental_distribute_dataset(planned_batches(data, plan, training.epochs)))
    for epoch in range(training.epochs):
        start = time.perf_counter()
        with strategy.scope():
            epoch_loss.reset_state()
        for _ in range(plan.steps_per_epoch):
            step(batches)
        with strategy.scope():
            losses.append(np.asarray(epoch_loss.result()))
        seconds.append(time.perf_counter() - start)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return PathRun(
        name="tape",
        epoch_losses=as_floats(losses),
        weights=read_weights(model),
        epoch_seconds=tuple(seconds),
    )


def average_loss(per_example: Any, replicas: int) -> Any:
    """One replica's share of the global mean loss, rounded exactly as fit rounds it.

    This is ``tf.nn.compute_average_loss(per_example)``, ``sum / (n * R)`` with ``n`` the
    replica's batch size, written the way Keras computes it: its ``sum_over_batch_size``
    reduction divides by ``n``, then ``scale_loss_for_distribution`` multiplies by ``1/R``.
    When ``R`` is a power of two both are the same bits; for ``R = 3`` the TF function differs
    from fit by an ulp now and then.
    """
    tf = tensorflow()
    loss = tf.math.divide_no_nan(tf.reduce_sum(per_example), tf.cast(tf.size(per_example), per_example.dtype))
    if replicas > 1:
        loss = loss * tf.cast(1.0 / replicas, loss.dtype)
    return loss


def replica_loss_form(recipe: Recipe) -> str:
    """How the loop forms each replica's loss from its per-example losses.

    ``"aligned"``: ``tf.nn.compute_average_loss(per_example)``, penalties scaled by ``1/R``, as fit
    does. ``"reduce_mean"`` (pitfall distributed-loss-scale): ``tf.reduce_mean`` and unscaled
    penalties, so the summed gradient is ``R`` times too large. ``"fixed_global_batch"`` (pitfall
    fixed-global-batch): ``compute_average_loss(..., global_batch_size=plan.batch_size)``, so
    the partial last batch is underweighted.

    Raises:
        InputError: both distributed pitfalls at once (each replaces the replica loss).
    """
    if recipe.distributed_reduce_mean and recipe.fixed_global_batch:
        raise InputError(
            "--pitfall: distributed-loss-scale and fixed-global-batch each replace the replica loss; "
            "apply one at a time"
        )
    if recipe.distributed_reduce_mean:
        return "reduce_mean"
    return "fixed_global_batch" if recipe.fixed_global_batch else "aligned"


def check_split(plan: BatchPlan, replicas: int, flag: str) -> None:
    """Refuse a batch that fit cannot split evenly over the replicas.

    Keras builds the model from the first batch, averaging the replicas' shards
    (``TensorFlowTrainer._maybe_symbolic_build``): shards of different sizes (15 over 2 replicas)
    fail there with an ``AddN`` shape error. An uneven *last* batch is fine.

    Raises:
        InputError: ``plan.batch_size`` is not a multiple of ``replicas``.
    """
    if plan.batch_size % replicas:
        what = (
            f"the full batch of {plan.batch_size} samples"
            if plan.batch_size == plan.samples
            else f"batch size {plan.batch_size}"
        )
        raise InputError(
            f"{flag} {replicas}: {what} does not split evenly over {replicas} replicas, and "
            "Keras's model.fit fails under tf.distribute when the first batch's shards differ in "
            f"size; use a batch size that is a multiple of {replicas} (an uneven last batch is fine)"
        )


# -- one comparison across local worker processes -----------------------------------------------


def run_workers(config: Config, pitfalls: Sequence[str] = (), timeout_s: float = 300.0) -> RunResult:
    """:func:`fitvstape.runner.run_comparison` under MultiWorkerMirroredStrategy.

    Starts ``workers`` local processes (``python -m fitvstape._worker``), each in its own
    session, with ``TF_CONFIG`` naming free ports on 127.0.0.1. Every worker trains both paths
    on the same planned data; each writes its result, and they must agree. Every worker is
    terminated (then killed) on success, failure, timeout and Ctrl-C.

    Args:
        config: the resolved settings; ``training.workers`` processes.
        pitfalls: as for :func:`fitvstape.runner.run_comparison`.
        timeout_s: how long the workers may take, counted from their start (TensorFlow's
            import in each worker included). Default 300.

    Raises:
        DistributedError: a worker failed or died, or the run took longer than ``timeout_s``.
        InputError: ``replicas`` > 1 too.
    """
    training = config.training
    if training.replicas > 1:
        raise InputError("--replicas and --workers can't be combined: each local worker trains on one CPU")
    n = training.workers
    tape_pitfalls = recipe(pitfalls)
    replica_loss_form(tape_pitfalls)  # refuse a contradictory pair before starting any worker
    data = load(config.data, training.seed, config.origins)
    plan = batch_plan(data.samples, training.batch_size, training.shuffle, training.seed)
    check_split(plan, n, "--workers")
    initial = initial_weights(data.features, training.seed)
    job = {
        "data": data,
        "plan": plan,
        "initial": initial,
        "training": training,
        "recipe": tape_pitfalls,
        "workers": n,
        "timeout_s": timeout_s,
    }
    results = _launch(job, n, timeout_s)
    chief = results[0]
    for index, other in enumerate(results[1:], start=1):
        for path in ("fit", "tape"):
            a, b = chief[path], other[path]
            same = a.epoch_losses == b.epoch_losses and all(
                np.array_equal(x, y) for x, y in zip(a.weights.as_list(), b.weights.as_list())
            )
            if not same:
                raise DistributedError(f"worker {index} finished with other {path} results than the chief")
    info = DistributionInfo(
        strategy=chief["strategy"],
        replicas=chief["replicas"],
        workers=n,
        devices=[d for r in results for d in r["devices"]],
    )
    from fitvstape.runner import assemble

    return assemble(config, data, plan, initial, chief["fit"], chief["tape"], pitfalls, info)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the OS calls free on 127.0.0.1 (all bound at once, then released)."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]


def _launch(job: dict[str, Any], n: int, timeout_s: float) -> list[dict[str, Any]]:
    """Run the workers; return each one's result, in task order. Nothing outlives this call."""
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryDirectory(prefix="fitvstape-workers-") as tmp:
        folder = Path(tmp)
        job_path = folder / "job.pkl"
        with job_path.open("wb") as fh:
            pickle.dump({**job, "parent_pid": os.getpid()}, fh)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(n)]}
        env = _worker_environment()
        procs: list[subprocess.Popen[bytes]] = []
        logs = []
        try:
            for index in range(n):
                log = (folder / f"worker-{index}.log").open("wb")
                logs.append(log)
                tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "fitvstape._worker", str(folder), str(index)],
                        env={**env, "TF_CONFIG": json.dumps(tf_config)},
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # own process group: Ctrl-C reaches us, we end them
                    )
                )
            _supervise(procs, folder, deadline, timeout_s)
            results = []
            for index in range(n):
                with (folder / f"result-{index}.pkl").open("rb") as fh:
                    results.append(pickle.load(fh))
            return results
        finally:
            _stop(procs)
            for log in logs:
                log.close()


def _worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    # gRPC honours http(s)_proxy; the workers talk to each other on 127.0.0.1 only.
    for name in ("no_proxy", "NO_PROXY"):
        env[name] = ",".join(p for p in (env.get(name), "127.0.0.1", "localhost") if p)
    return env


def _supervise(procs: list[subprocess.Popen[bytes]], folder: Path, deadline: float, timeout_s: float) -> None:
    """Wait until every worker exited 0; raise as soon as one fails or time runs out."""
    while True:
        codes = [p.poll() for p in procs]
        for index, code in enumerate(codes):
            if code not in (None, 0):
                raise DistributedError(
                    f"worker {index} of {len(procs)} {_describe_exit(code)}"
                    f"{_error_summary(folder / f'error-{index}.txt')}; all workers were stopped"
                )
        if all(code == 0 for code in codes):
            missing = [i for i in range(len(procs)) if not (folder / f"result-{i}.pkl").exists()]
            if missing:
                raise DistributedError(f"worker {missing[0]} exited without a result")
            return
        if time.monotonic() > deadline:
            running = [str(i) for i, code in enumerate(codes) if code is None]
            raise DistributedError(
                f"distributed run timed out after {timeout_s:g} s (worker {', '.join(running)} still running)"
            )
        time.sleep(_POLL_S)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"died (killed by {name}) before finishing"
    return f"failed (exit status {code})"


def _error_summary(path: Path) -> str:
    """The one-line error a failing worker wrote, as ``": ..."``; empty if it wrote none."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return f": {text}" if text else ""


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker's process group, then SIGKILL what is left after a grace period."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        _signal_group(p, signal.SIGTERM)
    end = time.monotonic() + _GRACE_S
    for p in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.0, end - time.monotonic()))
    for p in live:
        if p.poll() is None:  # only a process not yet reaped: its pid can't belong to another
            _signal_group(p, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=_GRACE_S)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
