"""The one place TensorFlow is imported, quietly and deterministically, on first use.

Everything that needs TensorFlow or Keras calls :func:`tensorflow` first, inside a function:
``--help`` and input validation never pay for the import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

_QUIET_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"


def tensorflow() -> Any:
    """Import TensorFlow and return it, with op determinism on.

    Op determinism makes reruns print the same numbers; it also makes Keras resolve
    ``jit_compile="auto"`` to False (``keras/src/trainers/trainer.py``), which both paths pin
    anyway. Unless the user set ``TF_CPP_MIN_LOG_LEVEL``, TensorFlow's C++ start-up chatter
    ("Could not find cuda drivers", "cpu_feature_guard") is kept off stderr: it is noise on a
    CPU machine, and any real failure still raises a Python exception.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # Both paths are TensorFlow's: a KERAS_BACKEND=jax in the user's shell must not switch fit.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    quiet = _QUIET_VARIABLE not in os.environ
    if quiet:
        os.environ[_QUIET_VARIABLE] = "3"
    with _stderr_silenced(quiet):
        import keras  # noqa: F401  (imported here so its start-up is silenced too)
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_op_determinism()
    return tf


@contextlib.contextmanager
def _stderr_silenced(active: bool) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null; C++ logging bypasses Python's sys.stderr."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
