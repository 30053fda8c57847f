"""Classification metrics on top of scikit-learn; specificity is the one derived here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def per_class_report(y_true, y_pred, labels: Sequence | None = None, names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per class (one-vs-rest) and a ``macro`` row.

    Columns: TP, TN, FP, FN, precision, recall (= sensitivity), specificity = TN / (TN + FP),
    accuracy = (TP + TN) / N, F1, support. Precision, recall and F1 come from scikit-learn.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    tn, fp, fn, tp = (mcm[:, i, j] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    p, r, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        spec = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
    df = pd.DataFrame(
        {
            "TP": tp, "TN": tn, "FP": fp, "FN": fn,
            "precision": p, "recall": r, "specificity": spec,
            "accuracy": (tp + tn) / len(y_true), "F1": f1, "support": support,
        },
        index=pd.Index([str(n) for n in (names if names is not None else labels)], name="class"),
    )
    macro = df[["precision", "recall", "specificity", "accuracy", "F1"]].mean()
    df.loc["macro"] = {**macro.to_dict(), "TP": tp.sum(), "TN": tn.sum(), "FP": fp.sum(), "FN": fn.sum(),
                       "support": support.sum()}
    return df


def specificity(y_true, y_pred, positive=1) -> float:
    """Binary specificity TN / (TN + FP) with ``positive`` as the positive class."""
    y_true, y_pred = np.asarray(y_true) == positive, np.asarray(y_pred) == positive
    tn = np.sum(~y_true & ~y_pred)
    fp = np.sum(~y_true & y_pred)
    return float(tn / (tn + fp)) if tn + fp else 0.0


def roc_per_class(y_true, proba: np.ndarray, names: Sequence[str] | None = None) -> dict:
    """One-vs-rest ROC curves: ``{name: (fpr, tpr, auc)}`` for each column of ``proba``."""
    y_true = np.asarray(y_true)
    out = {}
    for k in range(proba.shape[1]):
        fpr, tpr, _ = skm.roc_curve(y_true == k, proba[:, k])
        out[names[k] if names is not None else str(k)] = (fpr, tpr, float(skm.auc(fpr, tpr)))
    return out


def accuracy(y_true, y_pred) -> float:
    return float(skm.accuracy_score(y_true, y_pred))
