"""Paper 2 (Tarasenko, Yakimov & Soloviev): a plain CNN that tells fractured from intact bones.

The data handling lives in :mod:`imgclf.data` (folder loader, duplicate groups, group-aware
splits); this module holds what notebook 02 does with it: one call to prepare the X-rays, one to
train with the best epoch by validation loss restored, one to score a model on a test set.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from . import data, metrics, train
from .models.cnns import build_plain_cnn

CLASSES = ["not fractured", "fractured"]  # label 1 = fractured = the positive class


def prepare(root: str | Path, input_size: int, cache_dir: str | Path | None, dup_threshold: float = 0.98,
            dup_max_angle: int = 30, dup_angle_step: int = 10, classes=CLASSES) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Index ``root/<split>/<class>/<image>``, decode every image once, group the duplicates.

    Returns ``(df, x, seconds)``: ``df`` one row per file (``split``, ``class``, ``label``,
    ``path``, ``file``, ``sha256``, ``group`` = duplicate-group id from content only), ``x``
    uint8 ``(n, input_size, input_size, 1)`` grayscale, and the seconds each step took. Decoded
    arrays are cached in ``cache_dir`` (per size), so a re-run does not decode again.
    """
    seconds = {}
    t = time.perf_counter()
    df = data.image_folder_index(root, classes=classes)
    df["sha256"] = data.file_sha256s(df["file"])
    seconds["index + sha256"] = time.perf_counter() - t
    t = time.perf_counter()
    x = data.load_images(df["file"], input_size, channels=1, cache_dir=cache_dir)
    x32 = x if input_size == 32 else data.load_images(df["file"], 32, channels=1, cache_dir=cache_dir)
    seconds["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    angles = [0] + [s * a for a in range(dup_angle_step, dup_max_angle + 1, dup_angle_step) for s in (-1, 1)]
    df["group"] = data.duplicate_groups(x32, df["sha256"].to_numpy(), threshold=dup_threshold, angles=angles,
                                        crop=0.7, side=12)
    seconds["duplicate groups"] = time.perf_counter() - t
    return df, x, seconds


def duplicate_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per split: files, distinct contents, duplicate groups; and test files with a copy in train."""
    rows = {}
    for split, sub in df.groupby("split"):
        rows[split] = {"files": len(sub), "distinct contents (sha256)": sub["sha256"].nunique(),
                       "duplicate groups": sub["group"].nunique(), "largest group": sub["group"].value_counts().max()}
    tr, te = np.flatnonzero(df["split"] == "train"), np.flatnonzero(df["split"] == "test")
    if len(tr) and len(te):
        rows["test"]["with a byte-identical copy in train"] = int(data.copies_across(df["sha256"], tr, te).sum())
        rows["test"]["with a near/exact copy in train (same group)"] = int(data.copies_across(df["group"], tr, te).sum())
    return pd.DataFrame(rows).T


def fit_best(x_tr, y_tr, x_va, y_va, *, input_size: int, filters, dense: int, dropout: float, epochs: int,
             batch_size: int, learning_rate: float, seed: int, desc: str = ""):
    """Build the plain CNN, train it ``epochs`` epochs (Adam, cross-entropy), restore the best weights.

    The best epoch is the one with the lowest validation loss (the paper's overfitting point);
    its weights are restored at the end (``EarlyStopping`` with patience beyond the last epoch,
    so all epochs run and are logged). Returns ``(model, hist)``; ``hist`` is
    :func:`imgclf.train.fit`'s dict plus ``best_epoch`` (1-based).
    """
    train.set_seed(seed)
    model = build_plain_cnn((input_size, input_size, 1), 2, tuple(filters), dense, dropout)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs + 1, restore_best_weights=True)
    hist = train.fit(model, x_tr, y_tr, epochs=epochs, batch_size=batch_size, validation_data=(x_va, y_va),
                     callbacks=[best], desc=desc)
    hist["best_epoch"] = int(np.argmin(hist["val_loss"])) + 1
    return model, hist


def epoch_log(hist: dict) -> pd.DataFrame:
    """The paper's per-epoch log (Fig. 7): seconds, loss, acc, val_loss, val_acc."""
    df = pd.DataFrame({"seconds": hist["epoch_time"], "loss": hist["loss"], "acc": hist["accuracy"],
                       "val_loss": hist["val_loss"], "val_acc": hist["val_accuracy"]})
    df.index = pd.RangeIndex(1, len(df) + 1, name="epoch")
    return df


def evaluate(model, x, y) -> dict:
    """Binary test metrics (fractured = 1 = positive): accuracy, sensitivity, specificity, ROC AUC,
    Cohen's kappa (scikit-learn; specificity from :mod:`imgclf.metrics`), plus the confusion
    matrix, the ROC curve, probabilities and predictions."""
    proba = model.predict(x, batch_size=256, verbose=0)[:, 1]
    pred = (proba >= 0.5).astype(int)
    fpr, tpr, _ = skm.roc_curve(y, proba)
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "sensitivity": float(skm.recall_score(y, pred, pos_label=1, zero_division=0)),
        "specificity": metrics.specificity(y, pred, positive=1),
        "AUC": float(skm.roc_auc_score(y, proba)) if len(np.unique(y)) == 2 else float("nan"),
        "kappa": float(skm.cohen_kappa_score(y, pred)),
        "n": int(len(y)),
        "confusion": skm.confusion_matrix(y, pred, labels=[0, 1]),
        "roc": (fpr, tpr),
        "proba": proba,
        "pred": pred,
    }


SCALARS = ("accuracy", "sensitivity", "specificity", "AUC", "kappa", "n")
