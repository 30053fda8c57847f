"""Paper 3's conclusions as paired measurements, and the control without a CNN.

The paper concludes that "SGD outperforms Adam in every variation" and that lr 0.001 trains better
than 0.01. Table I has one training run per cell, so two cells are compared on what they share,
the test images (:func:`over_images`): each image is right or wrong under each run, and only the
images where the two runs disagree carry the difference. Its 95 % interval is the exact one of
McNemar's test (Clopper-Pearson on the share of those images that favour the first run), which
stays honest when only a handful disagree; it covers the test set's sampling, **not** a second
training seed. Over the cells (:func:`pairs`) the pairs are the cells where both runs learned,
with :func:`imgclf.stats.paired`'s t-interval.

The control is the cheapest model that could explain a high accuracy on MNIST: k nearest
neighbours on the raw 28x28 pixels (no CNN, no training), on the same images and split.

Not imported by :mod:`.pipeline`: these are read-outs of finished runs, so changing them
recomputes no training run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.neighbors import KNeighborsClassifier

from ... import stats
from ...models.cnns import ARCH_NAMES
from .pipeline import LEARNED, OPTIMIZER_NAMES, run_label

KNN_K = 3
"""Neighbours of the raw-pixel control (k = 3: scikit-learn's k-NN on MNIST's pixels is near its best there)."""


def raw_pixel_knn(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  k: int = KNN_K) -> dict:
    """The control without a CNN: k-NN (Euclidean, pixels scaled to 0..1) on the flattened
    ``(n, 28, 28)`` images. Returns ``k``, ``accuracy`` and ``y_pred`` (one label per test image)."""
    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1) / 255.0  # noqa: E731
    knn = KNeighborsClassifier(n_neighbors=k, algorithm="brute", n_jobs=-1).fit(flat(x_train), np.asarray(y_train))
    y_pred = knn.predict(flat(x_test))
    return {"k": k, "accuracy": float(np.mean(y_pred == np.asarray(y_test))), "y_pred": y_pred}


def correct(y_pred, y_test) -> np.ndarray:
    """True where a prediction is right: what two runs are paired on."""
    y_pred, y_test = np.asarray(y_pred).ravel(), np.asarray(y_test).ravel()
    if y_pred.shape != y_test.shape:
        raise ValueError(f"{y_pred.size} predictions for {y_test.size} test images")
    return y_pred == y_test


def accuracy(run: dict, y_test) -> float:
    """Test accuracy (%) from the run's predictions (a diverged run's stored accuracy may be NaN;
    its predictions are whatever it answered)."""
    return 100 * float(np.mean(correct(run["y_pred"], y_test)))


def over_images(a: dict, b: dict, y_test, names: tuple[str, str] | None = None) -> stats.Paired:
    """Run ``a`` − run ``b`` (each a dict with ``y_pred``) in accuracy points, paired over the test
    images, with the exact 95 % interval of McNemar's test: of the ``m`` images where exactly one
    of the two is right, ``k`` favour ``a``; the Clopper-Pearson interval ``[p_lo, p_hi]`` of
    ``k / m`` gives ``100 (2p - 1) m / n`` at each end. No disagreement: a difference of 0, a tie."""
    names = names or (run_label(a) if "arch" in a else "a", run_label(b) if "arch" in b else "b")
    ca, cb = correct(a["y_pred"], y_test), correct(b["y_pred"], y_test)
    n, k, m = ca.size, int(np.sum(ca & ~cb)), int(np.sum(ca != cb))
    d = 100 * (ca.astype(np.float64) - cb.astype(np.float64))
    mean = float(d.mean())
    if m == 0:
        lo = hi = 0.0
    else:
        ci = binomtest(k, m).proportion_ci(confidence_level=stats.CONFIDENCE, method="exact")
        lo, hi = (100 * (2 * p - 1) * m / n for p in (ci.low, ci.high))
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    return stats.Paired(names[0], names[1], stats.Summary(mean, sd, n, float(lo), float(hi)))


def _row(p: stats.Paired) -> dict:
    return {"difference (points)": p.diff.mean, "95 % CI low": p.diff.lo, "95 % CI high": p.diff.hi,
            "verdict": p.verdict()}


def versus_control(runs: list[dict], control: dict, y_test, control_name: str) -> pd.DataFrame:
    """Every run − the control, paired over the test images (:func:`over_images`): one row per
    run with its status, both accuracies, the difference, its 95 % interval and the verdict."""
    rows = [{"run": run_label(r), "status": r.get("status", ""), "run (%)": accuracy(r, y_test),
             f"{control_name} (%)": accuracy(control, y_test),
             **_row(over_images(r, control, y_test, (run_label(r), control_name)))} for r in runs]
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def pairs(runs: list[dict], y_test, factor: str, a, b) -> tuple[pd.DataFrame, stats.Paired | None]:
    """``factor`` (``"optimizer"`` or ``"learning_rate"``) at ``a`` against ``b``, the other two
    factors held fixed: one row per matched pair of cells (both statuses, both accuracies, the
    difference over the test images, its interval and verdict, and whether both runs learned),
    and the paired difference over the matched cells **where both runs learned** (a diverged run
    answers one class: comparing it says that it diverged, not which setting is better; ``None``
    when no such pair ran)."""
    if factor not in ("optimizer", "learning_rate"):
        raise ValueError(f"factor must be 'optimizer' or 'learning_rate', got {factor!r}")
    cells = {(r["arch"], r["optimizer"], float(r["learning_rate"])): r for r in runs}
    rows, acc_a, acc_b = [], [], []
    for (arch, opt, lr), ra in cells.items():
        if (opt if factor == "optimizer" else lr) != (a if factor == "optimizer" else float(a)):
            continue
        rb = cells.get((arch, b, lr) if factor == "optimizer" else (arch, opt, float(b)))
        if rb is None:
            continue
        learned = ra.get("status") in LEARNED and rb.get("status") in LEARNED
        held = f"lr {lr:g}" if factor == "optimizer" else OPTIMIZER_NAMES[opt]
        rows.append({"model": ARCH_NAMES[arch], "held fixed": held,
                     f"{_name(factor, a)} status": ra.get("status", ""), f"{_name(factor, b)} status": rb.get("status", ""),
                     f"{_name(factor, a)} (%)": accuracy(ra, y_test), f"{_name(factor, b)} (%)": accuracy(rb, y_test),
                     **_row(over_images(ra, rb, y_test)), "both learned": learned})
        if learned:
            acc_a.append(accuracy(ra, y_test))
            acc_b.append(accuracy(rb, y_test))
    table = pd.DataFrame(rows).set_index(["model", "held fixed"]) if rows else pd.DataFrame()
    over = stats.paired(acc_a, acc_b, (_name(factor, a), _name(factor, b))) if acc_a else None
    return table, over


def verdict_counts(table: pd.DataFrame) -> str:
    """``"beats in 4, tie in 1, below in 1 of 6 pairs"``: the cell-by-cell verdicts, counted."""
    if table is None or not len(table):
        return "no pair"
    counts = table["verdict"].value_counts()
    return ", ".join(f"{v} in {int(counts.get(v, 0))}" for v in ("beats", "tie", "below")) + f" of {len(table)} pairs"


def _name(factor: str, v) -> str:
    return OPTIMIZER_NAMES[v] if factor == "optimizer" else f"lr {float(v):g}"
