"""Training helpers: seeding, timed fits with progress, device set-up, grid search."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import keras
import numpy as np
from tqdm.std import tqdm


def set_seed(seed: int, deterministic: bool | None = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras (the one seeding call of the library).

    ``deterministic=True`` also turns on TensorFlow's op determinism (same numbers on CPU);
    ``None`` leaves it as it is (for seeding again inside a run that has decided already).
    """
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.get_logger().setLevel("ERROR")  # retracing notices are noise in a report
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def strategy():
    """``MirroredStrategy`` when several GPUs are visible, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def use_mixed_precision(enable: bool | None = None) -> bool:
    """Turn on ``mixed_float16`` when asked, or (``None``) when a GPU is present. Returns the state."""
    import tensorflow as tf

    if enable is None:
        enable = bool(tf.config.list_physical_devices("GPU"))
    keras.mixed_precision.set_global_policy("mixed_float16" if enable else "float32")
    return enable


class Progress(keras.callbacks.Callback):
    """Epoch progress bar (text, so it also renders in papermill output and HTML reports).

    Records the wall-clock time at the end of each epoch in ``times`` (with a leading 0).
    """

    def __init__(self, epochs: int, desc: str = ""):
        super().__init__()
        self.epochs, self.desc = epochs, desc
        self.times: list[float] = [0.0]

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.epochs, desc=self.desc, file=sys.stdout, mininterval=2.0, ascii=True, ncols=100)
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in (logs or {}).items() if k in keys}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


def fit(
    model,
    x,
    y=None,
    *,
    epochs: int,
    batch_size: int = 32,
    validation_data=None,
    callbacks: Sequence = (),
    desc: str = "",
    record_initial_loss: bool = False,
    shuffle: bool = True,
) -> dict:
    """``model.fit`` with a progress bar and wall-clock timing.

    Returns a dict: Keras' per-epoch history lists, ``epoch_time`` (seconds per epoch),
    ``wall`` (seconds since start at the end of each epoch, with a leading 0), ``seconds``
    (total), and, with ``record_initial_loss``, ``loss0`` (the loss before the first step, so a
    loss-against-time curve can start at t = 0).
    """
    loss0 = None
    if record_initial_loss:
        loss0 = float(np.atleast_1d(model.evaluate(x, y, batch_size=max(batch_size, 256), verbose=0))[0])
    progress = Progress(epochs, desc)
    t0 = time.perf_counter()
    hist = model.fit(
        x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data, shuffle=shuffle,
        callbacks=[progress, *callbacks], verbose=0,
    )
    seconds = time.perf_counter() - t0
    out = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    out["wall"] = progress.times
    out["epoch_time"] = list(np.diff(progress.times))
    out["seconds"] = seconds
    out["epochs_run"] = len(out["epoch_time"])
    if loss0 is not None:
        out["loss0"] = loss0
    return out


def grid_search(estimator, param_grid: dict, X, y, cv: int = 3, seed: int = 0, verbose: int = 3):
    """Stratified ``cv``-fold ``GridSearchCV`` (accuracy), as the papers' "grid search CV".

    ``verbose=3`` prints each fit's parameters, score and time as it finishes (the progress).
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    search = GridSearchCV(
        estimator, param_grid, cv=StratifiedKFold(cv, shuffle=True, random_state=seed), scoring="accuracy",
        refit=False, n_jobs=1, verbose=verbose,
    )
    return search.fit(X, y)


class Stopwatch:
    """``with Stopwatch() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False
