"""Paper 5's protocol: stratified k-fold CV of transfer-learning heads, retraining, evaluation.

Works on two kinds of input with one code path:

* cached features (:func:`imgclf.models.transfer.extract_features`) and a fresh copy of the
  trainable head per fold (:func:`fresh_head`), when the base is frozen;
* preprocessed images and a whole network built per fold, when the whole network is trained
  (no ImageNet weights: a frozen *random* base would be meaningless).

Both are driven by a ``make_model(fold_seed) -> keras.Model`` callable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold

from . import metrics, train
from .models.transfer import TransferModel


def take(x, idx):
    """Rows ``idx`` of an array or of every array in a list (multi-input features)."""
    return [a[idx] for a in x] if isinstance(x, (list, tuple)) else x[idx]


def n_rows(x) -> int:
    return len(x[0]) if isinstance(x, (list, tuple)) else len(x)


def fresh_head(tm: TransferModel, seed: int) -> keras.Model:
    """A new copy of ``tm.head``: Dense layers freshly initialised (seeded), any trainable
    application layers (ResNet50's tail) starting from ``tm``'s (pre-trained) weights."""
    keras.utils.set_random_seed(seed)
    head = keras.models.clone_model(tm.head)
    for layer, src in zip(head.layers, tm.head.layers):
        if layer.name.startswith("conv") and src.weights:
            layer.set_weights(src.get_weights())
        layer.trainable = src.trainable
    return head


def end_to_end(tm: TransferModel, head: keras.Model) -> keras.Model:
    """Images -> ``tm.features`` (frozen, run every step) -> ``head``: the uncached equivalent."""
    inp = keras.Input(tm.features.input.shape[1:], name="image")
    return keras.Model(inp, head(tm.features(inp)), name=f"{head.name}_end_to_end")


def lr_schedule(lrs: Sequence[float], epochs: int) -> keras.callbacks.Callback:
    """Piecewise-constant learning rate: ``lrs[i]`` for the i-th equal share of ``epochs``."""
    per = max(1, epochs // len(lrs))
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: float(lrs[min(epoch // per, len(lrs) - 1)]))


def compile_model(model: keras.Model, lr: float, sparse: bool) -> keras.Model:
    """Adam(lr) + (sparse) categorical cross-entropy. A model handed out by :func:`reusable` keeps
    its compiled (traced) training function: only its optimizer state is zeroed and lr set."""
    if getattr(model, "_imgclf_reusable", False) and getattr(model, "optimizer", None) is not None:
        opt = model.optimizer
        for v in opt.variables:
            if v is not getattr(opt, "_learning_rate", None):
                v.assign(np.zeros(v.shape, v.dtype))
        opt.learning_rate = lr
        return model
    loss = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    return model


def reusable(model: keras.Model) -> Callable[[int], keras.Model]:
    """``make_model`` for :func:`cross_validate` that hands back ``model`` itself, every time reset
    to the weights it has now (every fold starts from the same initial head) with a zeroed
    optimizer. Avoids rebuilding and re-tracing a model per fold and learning rate: for a small
    head on cached features that overhead, not the arithmetic, is most of the time."""
    init = [np.array(w) for w in model.weights]
    model._imgclf_reusable = True

    def make(seed: int) -> keras.Model:
        for v, w in zip(model.weights, init):
            v.assign(w)
        return model

    return make


def _targets(y, sparse: bool, num_classes: int):
    return np.asarray(y) if sparse else keras.utils.to_categorical(y, num_classes)


def cross_validate(
    make_model: Callable[[int], keras.Model],
    x,
    y: np.ndarray,
    *,
    folds: int,
    epochs: int,
    lr: float,
    sparse: bool = False,
    lr_stages: Sequence[float] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    num_classes: int = 5,
    desc: str = "",
) -> tuple[pd.DataFrame, list[dict]]:
    """Stratified ``folds``-fold CV; per fold the best epoch (highest validation accuracy) is kept.

    Returns a table with one row per fold ``k`` (1-based) and an ``AVG`` row, columns
    ``train accuracy, val accuracy, train loss, val loss, best epoch, seconds, step ms`` (the
    paper's Tables 7 and 11), and the per-fold training histories.
    """
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    rows, hists = [], []
    for k, (tr, va) in enumerate(skf.split(np.zeros(len(y)), y), start=1):
        train.set_seed(seed * 1000 + k)
        model = compile_model(make_model(seed * 1000 + k), lr_stages[0] if lr_stages else lr, sparse)
        cbs = [lr_schedule(lr_stages, epochs)] if lr_stages else []
        h = train.fit(model, take(x, tr), _targets(y[tr], sparse, num_classes), epochs=epochs, batch_size=batch_size,
                      validation_data=(take(x, va), _targets(y[va], sparse, num_classes)), callbacks=cbs,
                      desc=f"{desc} fold {k}/{folds}")
        b = int(np.argmax(h["val_accuracy"]))
        steps = int(np.ceil(len(tr) / batch_size))
        rows.append({"k": str(k), "train accuracy": h["accuracy"][b], "val accuracy": h["val_accuracy"][b],
                     "train loss": h["loss"][b], "val loss": h["val_loss"][b], "best epoch": b + 1,
                     "seconds": h["seconds"], "step ms": 1000 * float(np.median(h["epoch_time"])) / steps})
        hists.append(h)
        if not getattr(model, "_imgclf_reusable", False):
            del model
            keras.backend.clear_session(free_memory=True)
    df = pd.DataFrame(rows).set_index("k")
    df.loc["AVG"] = df.mean(numeric_only=True)
    return df, hists


def fit_final(
    make_model: Callable[[int], keras.Model],
    x,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    sparse: bool = False,
    lr_stages: Sequence[float] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    num_classes: int = 5,
    validation_data=None,
    desc: str = "final",
) -> tuple[keras.Model, dict]:
    """Train on all training data for ``epochs`` (the last epoch's model is kept).

    ``validation_data`` ``(x, y)`` is only monitored for the curves, never used for selection.
    The history gains ``step ms`` (median epoch time / steps per epoch).
    """
    train.set_seed(seed)
    model = compile_model(make_model(seed), lr_stages[0] if lr_stages else lr, sparse)
    cbs = [lr_schedule(lr_stages, epochs)] if lr_stages else []
    val = None if validation_data is None else (validation_data[0], _targets(validation_data[1], sparse, num_classes))
    h = train.fit(model, x, _targets(y, sparse, num_classes), epochs=epochs, batch_size=batch_size,
                  validation_data=val, callbacks=cbs, desc=desc)
    h["step ms"] = 1000 * float(np.median(h["epoch_time"])) / int(np.ceil(n_rows(x) / batch_size))
    return model, h


def evaluate(model: keras.Model, x, y: np.ndarray, names: Sequence[str], sparse: bool = False,
             batch_size: int = 64) -> dict:
    """Loss, accuracy, probabilities, predictions, confusion matrix, per-class table, ROC/AUC."""
    proba = model.predict(x, batch_size=batch_size, verbose=0)
    pred = proba.argmax(1)
    k = len(names)
    onehot = keras.utils.to_categorical(y, k)
    loss = float(keras.losses.categorical_crossentropy(onehot, np.clip(proba, 1e-7, 1.0)).numpy().mean())
    return {
        "loss": loss,
        "accuracy": metrics.accuracy(y, pred),
        "proba": proba,
        "pred": pred,
        "confusion": confusion_matrix(y, pred, labels=np.arange(k)),
        "per_class": metrics.per_class_report(y, pred, labels=np.arange(k), names=names),
        "roc": metrics.roc_per_class(y, proba, names=names),
    }


def step_time(model: keras.Model, input_shape: Sequence[int], batch_size: int, steps: int, lr: float = 1e-4,
              sparse: bool = False, num_classes: int = 5, seed: int = 0) -> float:
    """Median seconds per training step of ``model`` on random images (after one warm-up step)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch_size, *input_shape)).astype(np.float32)
    y = _targets(rng.integers(0, num_classes, batch_size), sparse, num_classes)
    compile_model(model, lr, sparse)
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))
