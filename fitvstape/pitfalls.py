"""The pitfall catalogue: the usual ways a GradientTape loop is written so that it disagrees with fit.

Each :class:`Pitfall` says what goes wrong, the one-line fix, and which switch of the tape loop's
:class:`Recipe` reproduces it. ``--pitfall NAME`` applies it to the tape path; ``explain`` runs
each one alone and ranks them by effect. This module is the single source: the CLI, the report
and the tests read :data:`PITFALLS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from fitvstape import catalog
from fitvstape.config import TrainingConfig


@dataclass(frozen=True)
class Recipe:
    """How the tape loop is written. All False is the aligned loop, the one that matches fit."""

    zeros_init: bool = False
    full_batch: bool = False
    file_order: bool = False
    unweighted_epoch_loss: bool = False
    broadcast_shape: bool = False
    skip_regularization: bool = False
    post_update_loss: bool = False
    default_learning_rate: bool = False
    reused_optimizer_state: bool = False
    distributed_reduce_mean: bool = False
    fixed_global_batch: bool = False

    @property
    def aligned(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Pitfall:
    """One common mistake.

    Args:
        name: the ``--pitfall`` name.
        explanation: what goes wrong and why, one paragraph.
        fix: the fix, as one line of code.
        effect: how the tape path changes when the pitfall is applied.
        switches: the :class:`Recipe` fields it turns on.
        needs: the settings under which the mistake shows, given the current training config;
            empty when it already shows. ``explain`` turns them on for the pitfall's row.
    """

    name: str
    explanation: str
    fix: str
    effect: str
    switches: tuple[str, ...]
    needs: Callable[[TrainingConfig], Mapping[str, Any]] = field(default=lambda t: {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "explanation": self.explanation,
            "fix": self.fix,
            "effect": self.effect,
        }


def _needs_regularization(t: TrainingConfig) -> Mapping[str, Any]:
    return {} if t.l1 or t.l2 else {"l2": 0.01}


def _needs_mse(t: TrainingConfig) -> Mapping[str, Any]:
    return {} if t.loss == "mse" else {"loss": "mse"}


def _needs_shuffle(t: TrainingConfig) -> Mapping[str, Any]:
    return {} if t.shuffle else {"shuffle": True}


def _needs_mini_batches(t: TrainingConfig) -> Mapping[str, Any]:
    return {} if t.batch_size is not None else {"batch_size": 32}


def _needs_other_learning_rate(t: TrainingConfig) -> Mapping[str, Any]:
    default = catalog.OPTIMIZERS[t.optimizer].default_learning_rate
    return {} if t.learning_rate != default else {"learning_rate": default * 5}


def _needs_optimizer_state(t: TrainingConfig) -> Mapping[str, Any]:
    stateless = t.optimizer == "sgd" and not t.options.get("momentum")
    return {"momentum": 0.9} if stateless else {}


def _needs_distribution(t: TrainingConfig) -> dict[str, Any]:
    return {} if t.replicas > 1 or t.workers > 1 else {"replicas": 2}


def _needs_distribution_and_sgd(t: TrainingConfig) -> Mapping[str, Any]:
    # Adam, AdamW and RMSprop divide a constant gradient scale back out: it would barely show.
    needs = _needs_distribution(t)
    return needs if t.optimizer in ("sgd", "adagrad") else {**needs, "optimizer": "sgd"}


def _needs_distribution_and_mini_batches(t: TrainingConfig) -> Mapping[str, Any]:
    return {**_needs_distribution(t), **_needs_mini_batches(t)}


PITFALLS: dict[str, Pitfall] = {
    p.name: p
    for p in (
        Pitfall(
            "zeros-init",
            "The loop creates its own variables with tf.zeros, as the notebook does, while the "
            "Keras model starts from a glorot_uniform kernel and a zero bias. Both may converge "
            "to the same optimum, but every epoch on the way is different.",
            "model_b.set_weights(model_a.get_weights())  # one initialisation, copied",
            "the tape path starts from all-zero weights",
            ("zeros_init",),
        ),
        Pitfall(
            "full-batch",
            "The loop takes one gradient step per epoch on the whole data set, while fit "
            "defaults to batch_size=32: fit makes ceil(n/32) steps per epoch, the loop one.",
            "for x, y in tf.data.Dataset.from_tensor_slices((x_all, y_all)).batch(32): ...",
            "the tape path trains full batch",
            ("full_batch",),
            _needs_mini_batches,
        ),
        Pitfall(
            "shuffle-order",
            "fit shuffles the samples every epoch (shuffle=True is the default); the loop walks "
            "them in file order, so each epoch's batches hold other samples.",
            "order = rng.permutation(n)  # the same order for both, e.g. fit(shuffle=False) on x[order]",
            "the tape path visits the samples in file order",
            ("file_order",),
            _needs_shuffle,
        ),
        Pitfall(
            "unweighted-epoch-loss",
            "fit's epoch loss is a running mean weighted by batch size, so a partial last batch "
            "counts less. A plain mean of the batch losses gives the last batch a full vote.",
            "epoch_loss.update_state(loss, sample_weight=tf.shape(x)[0])",
            "the tape path reports the plain mean of its batch losses (weights are unaffected)",
            ("unweighted_epoch_loss",),
            _needs_mini_batches,
        ),
        Pitfall(
            "broadcast-shape",
            "A hand-written loss with (n,) targets against the model's (n, 1) predictions "
            "broadcasts y - y_pred to an (n, n) matrix: the loss and its gradient are silently "
            "wrong. Keras's losses line the shapes up first.",
            "loss = tf.reduce_mean(tf.square(tf.reshape(y, (-1, 1)) - y_pred))",
            "the tape path's loss is tf.reduce_mean(tf.square(y[:, 0] - y_pred)), an (n, n) mean",
            ("broadcast_shape",),
            _needs_mse,
        ),
        Pitfall(
            "missing-regularization",
            "fit adds model.losses (the L1/L2 penalties) to the loss it optimises and reports. A "
            "loop that only computes the data loss trains an unregularised model.",
            "loss = tf.reduce_sum(tf.stack([loss_fn(y, y_pred), *model.losses]))",
            "the tape path leaves model.losses out",
            ("skip_regularization",),
            _needs_regularization,
        ),
        Pitfall(
            "post-update-loss",
            "fit records each batch's loss before apply_gradients. Recomputing it after the "
            "update reports a smaller, optimistic loss.",
            "epoch_loss.update_state(loss)  # the loss from inside the tape, before the update",
            "the tape path reports the loss recomputed after each update (weights are unaffected)",
            ("post_update_loss",),
        ),
        Pitfall(
            "default-learning-rate",
            "An optimizer built without the configured rate uses Keras's default (SGD 0.01, "
            "Adam 0.001, ...), as does the old lr= argument in code that used to accept it.",
            "optimizer = keras.optimizers.SGD(learning_rate=LEARNING_RATE)",
            "the tape path's optimizer uses Keras's default learning rate",
            ("default_learning_rate",),
            _needs_other_learning_rate,
        ),
        Pitfall(
            "reused-optimizer-state",
            "An optimizer that already ran (a re-run notebook cell that resets the weights but "
            "not the optimizer) carries its iteration count and slots (momentum, Adam moments) "
            "into the new run.",
            "optimizer = keras.optimizers.SGD(...)  # a fresh instance for every training run",
            "the tape path's optimizer first trains one epoch, then the weights are reset",
            ("reused_optimizer_state",),
            _needs_optimizer_state,
        ),
        Pitfall(
            "notebook",
            "Every choice the notebook's loop makes at once: variables from tf.zeros and one "
            "full-batch step per epoch, against fit's glorot init and shuffled batches of 32 "
            "(its tf.optimizer.SGD(lr=...) and apply_gradient calls don't run in TF 2.x at all).",
            "model_b.set_weights(model_a.get_weights()); train on the same batches as fit",
            "the tape path starts from zeros and trains full batch",
            ("zeros_init", "full_batch"),
            _needs_mini_batches,
        ),
        Pitfall(
            "distributed-loss-scale",
            "Under a tf.distribute strategy each replica sees only its share of the batch and the "
            "optimizer SUMS the replicas' gradients. fit divides each replica's mean loss (and "
            "model.losses) by the number of replicas R; a plain tf.reduce_mean per replica makes "
            "the gradient R times too large: with SGD, an R-times learning rate. Adam, AdamW and "
            "RMSprop divide the scale back out, so there it barely shows.",
            "loss = tf.nn.compute_average_loss(per_example_loss)  # inside strategy.run",
            "the tape path's replica loss is tf.reduce_mean of its examples: R-times gradients",
            ("distributed_reduce_mean",),
            _needs_distribution_and_sgd,
        ),
        Pitfall(
            "fixed-global-batch",
            "The tf.distribute tutorials pass a fixed global_batch_size to "
            "tf.nn.compute_average_loss. That is right for full batches, but an epoch's last batch "
            "is usually smaller: dividing its summed loss by the full batch size underweights it, "
            "in the gradient and in the reported loss. fit divides by the batch's real size.",
            "loss = tf.nn.compute_average_loss(per_example_loss)  # no global_batch_size",
            "the tape path divides every batch's summed loss by the full batch size",
            ("fixed_global_batch",),
            _needs_distribution_and_mini_batches,
        ),
    )
}


def recipe(names: Iterable[str]) -> Recipe:
    """The tape-loop recipe with the named pitfalls applied. Unknown names raise KeyError."""
    switches = {s for name in names for s in PITFALLS[name].switches}
    return replace(Recipe(), **dict.fromkeys(switches, True))
