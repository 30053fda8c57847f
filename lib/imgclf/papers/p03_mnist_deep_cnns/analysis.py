"""Paper 3's conclusions as paired measurements, and the control without a CNN.

The paper concludes that "SGD outperforms Adam in every variation" and that lr 0.001 beats 0.01
(VGG-16, GoogLeNet). Table I has one training run per cell, so two cells are compared on what they
share, the 10,000 test images: per image, 1 when a run is right and 0 when wrong, and the paired
difference of two runs with its 95 % interval (:func:`imgclf.stats.paired`). That interval covers
the test set's sampling, not a second training seed. Across cells (SGD − Adam over every model and
learning rate run with both) the pairs are the cells themselves.

The control is the cheapest model that could explain a high accuracy on MNIST: k nearest
neighbours on the raw 28x28 pixels (no CNN, no training), on the same images and split.

Not imported by :mod:`.pipeline`: these are read-outs of finished runs, so changing them
recomputes no training run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier

from ... import stats
from ...models.cnns import ARCH_NAMES
from .pipeline import OPTIMIZER_NAMES, run_label

KNN_K = 3
"""Neighbours of the raw-pixel control (k = 3: scikit-learn's k-NN on MNIST's pixels is near its best there)."""


def raw_pixel_knn(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  k: int = KNN_K) -> dict:
    """The control without a CNN: k-NN (Euclidean, pixels scaled to 0..1) on the flattened
    ``(n, 28, 28)`` images. Returns ``accuracy`` and ``y_pred`` (one label per test image)."""
    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1) / 255.0  # noqa: E731
    knn = KNeighborsClassifier(n_neighbors=k, algorithm="brute", n_jobs=-1).fit(flat(x_train), np.asarray(y_train))
    y_pred = knn.predict(flat(x_test))
    return {"k": k, "accuracy": float(np.mean(y_pred == np.asarray(y_test))), "y_pred": y_pred}


def correct(y_pred, y_test) -> np.ndarray:
    """1.0 where a prediction is right, 0.0 where wrong: what two runs are paired on."""
    y_pred, y_test = np.asarray(y_pred).ravel(), np.asarray(y_test).ravel()
    if y_pred.shape != y_test.shape:
        raise ValueError(f"{y_pred.size} predictions for {y_test.size} test images")
    return (y_pred == y_test).astype(np.float64)


def over_images(a: dict, b: dict, y_test, names: tuple[str, str] | None = None) -> stats.Paired:
    """Run ``a`` − run ``b`` (each a dict with ``y_pred``), paired over the test images; the
    difference is in accuracy points (× 100)."""
    names = names or (run_label(a) if "arch" in a else "a", run_label(b) if "arch" in b else "b")
    return stats.paired(100 * correct(a["y_pred"], y_test), 100 * correct(b["y_pred"], y_test), names)


def versus_control(runs: list[dict], control: dict, y_test, control_name: str) -> pd.DataFrame:
    """Every run − the control, paired over the test images: one row per run with both
    accuracies, the difference, its 95 % interval and the verdict."""
    rows = []
    for r in runs:
        p = over_images(r, control, y_test, (run_label(r), control_name))
        rows.append({"run": run_label(r), "run (%)": 100 * r["accuracy"], f"{control_name} (%)": 100 * control["accuracy"],
                     "difference (points)": p.diff.mean, "95 % CI low": p.diff.lo, "95 % CI high": p.diff.hi,
                     "verdict": p.verdict()})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def _cells(runs: list[dict]) -> dict[tuple, dict]:
    return {(r["arch"], r["optimizer"], float(r["learning_rate"])): r for r in runs}


def pairs(runs: list[dict], y_test, factor: str, a, b) -> tuple[pd.DataFrame, stats.Paired | None]:
    """``factor`` (``"optimizer"`` or ``"learning_rate"``) at ``a`` against ``b``, the other two
    factors held fixed: one row per matched pair of cells, paired over the test images, and the
    paired difference over the matched cells (``None`` when no pair was run)."""
    if factor not in ("optimizer", "learning_rate"):
        raise ValueError(f"factor must be 'optimizer' or 'learning_rate', got {factor!r}")
    cells, rows, diffs_a, diffs_b = _cells(runs), [], [], []
    for (arch, opt, lr), ra in cells.items():
        if (opt if factor == "optimizer" else lr) != a:
            continue
        rb = cells.get((arch, b, lr) if factor == "optimizer" else (arch, opt, float(b)))
        if rb is None:
            continue
        p = over_images(ra, rb, y_test)
        held = f"lr {lr:g}" if factor == "optimizer" else OPTIMIZER_NAMES[opt]
        rows.append({"model": ARCH_NAMES[arch], "held fixed": held, f"{_name(factor, a)} (%)": 100 * ra["accuracy"],
                     f"{_name(factor, b)} (%)": 100 * rb["accuracy"], "difference (points)": p.diff.mean,
                     "95 % CI low": p.diff.lo, "95 % CI high": p.diff.hi, "verdict": p.verdict()})
        diffs_a.append(100 * ra["accuracy"])
        diffs_b.append(100 * rb["accuracy"])
    table = pd.DataFrame(rows).set_index(["model", "held fixed"]) if rows else pd.DataFrame()
    over = (stats.paired(diffs_a, diffs_b, (_name(factor, a), _name(factor, b))) if rows else None)
    return table, over


def _name(factor: str, v) -> str:
    return OPTIMIZER_NAMES[v] if factor == "optimizer" else f"lr {float(v):g}"
