import numpy as np
import pytest
from imgclf import metrics
from sklearn import metrics as skm

pytestmark = pytest.mark.portable  # no TensorFlow here: runs under every Keras backend


def test_per_class_report_matches_scikit_learn_and_derives_specificity():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 4, 300))
    df = metrics.per_class_report(y, pred)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=[0, 1, 2, 3])
    np.testing.assert_allclose(df.loc[["0", "1", "2", "3"], "precision"], p)
    np.testing.assert_allclose(df.loc[["0", "1", "2", "3"], "recall"], r)
    np.testing.assert_allclose(df.loc[["0", "1", "2", "3"], "F1"], f)
    cm = skm.confusion_matrix(y, pred)
    for k in range(4):
        tn = cm.sum() - cm[k].sum() - cm[:, k].sum() + cm[k, k]
        fp = cm[:, k].sum() - cm[k, k]
        assert df.loc[str(k), "specificity"] == tn / (tn + fp)
        assert df.loc[str(k), "TP"] == cm[k, k]
    np.testing.assert_allclose(df.loc["macro", "F1"], skm.f1_score(y, pred, average="macro"))


def test_specificity_from_a_known_confusion_matrix():
    # 2 classes: TN=50, FP=10, FN=5, TP=35 -> specificity 50/60, sensitivity 35/40
    y = np.array([0] * 60 + [1] * 40)
    pred = np.array([0] * 50 + [1] * 10 + [0] * 5 + [1] * 35)
    assert metrics.specificity(y, pred) == 50 / 60
    df = metrics.per_class_report(y, pred)
    assert df.loc["1", "specificity"] == 50 / 60 and df.loc["1", "recall"] == 35 / 40
    assert df.loc["0", "specificity"] == 35 / 40  # one-vs-rest: class 0's specificity is class 1's recall


def test_roc_auc_per_class_matches_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    proba = rng.dirichlet([1, 1, 1], 200) + np.eye(3)[y] * 0.5
    proba /= proba.sum(1, keepdims=True)
    rocs = metrics.roc_per_class(y, proba, ["a", "b", "c"])
    for k, name in enumerate("abc"):
        assert abs(rocs[name][2] - skm.roc_auc_score(y == k, proba[:, k])) < 1e-12
