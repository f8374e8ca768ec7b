"""The notebook's model.fit cell and nothing else: the baseline `fitvstape run` is measured against.

Same data as `fitvstape run` with defaults (200 synthetic samples, seed 42), same model, the
notebook's compile and fit call.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from fitvstape.config import DataConfig  # noqa: E402
from fitvstape.data import synthesize  # noqa: E402

data = synthesize(DataConfig(), seed=42)
model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(data.x, data.y, epochs=10, verbose=0)
