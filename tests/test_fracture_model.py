"""Paper 2's plain CNN, the training unit the notebook runs (best-epoch restore, stored weights),
metrics and Grad-CAM on synthetic images."""

import numpy as np
import pytest
from imgclf import config, plots
from imgclf.models.cnns import build_plain_cnn, build_small_resnet
from imgclf.papers import p02_fracture_cnn as p02
from imgclf.papers.p02_fracture_cnn import pipeline
from imgclf.runs import Runs


def _squares(n=160, side=24, seed=0):
    """Noise images; class 1 has a bright 6x6 square in the top-left quarter."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 90, (n, side, side, 1)).astype(np.uint8)
    y = np.arange(n) % 2
    x[y == 1, 2:8, 2:8] = 255
    return x, y


def test_plain_cnn_shapes_and_names():
    m = build_plain_cnn((28, 28, 1), 2, (8, 16, 32), dense=16)
    assert m.output_shape == (None, 2)
    assert m.get_layer("last_conv").output.shape[1:] == (7, 7, 32)
    p = m.predict(np.zeros((3, 28, 28, 1), np.uint8), verbose=0)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="too small"):
        build_plain_cnn((4, 4, 1), 2, (8, 16, 32))


def test_small_resnet_shapes_as_its_docstring_states():
    m = build_small_resnet((32, 32, 1), 2, widths=(8, 16, 32))
    assert m.output_shape == (None, 2)
    assert m.get_layer("last_conv").output.shape[1:] == (2, 2, 32)  # 32/4 = 8, then two stride-2 blocks
    p = m.predict(np.zeros((2, 32, 32, 1), np.uint8), verbose=0)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_fit_model_unit_restores_the_lowest_validation_loss_weights_and_gradcam_finds_the_square(tmp_path):
    """The path the notebook runs: runs.cached(fit_model), runs.find with the same call, load_model."""
    x, y = _squares()
    tr, va = np.arange(120), np.arange(120, 160)
    flip = np.random.default_rng(0).random(120) < 0.25  # noisy training labels: it overfits after a few epochs
    y[tr[flip]] = 1 - y[tr[flip]]
    cfg = config.make(p02.config, "smoke", input_size=24, filters=[8, 16], dense=64, dropout=0.0, epochs=10,
                      batch_size=16, learning_rate=3e-3, patience=10)
    call = dict(cfg=cfg, x=x, y=y, tr=tr, va=va, te=va, model="plain", seed=0)
    runs = Runs(tmp_path, log=lambda s: None)
    res = runs.cached(pipeline.fit_model, **call)
    hist = res["hist"]
    assert res["best_epoch"] == int(np.argmin(hist["val_loss"])) + 1 and len(hist["val_loss"]) == 10
    assert res["best_epoch"] < 10  # else restoring the best epoch could not be told from keeping the last
    model = pipeline.load_model(runs.find(pipeline.fit_model, **call), cfg, "plain", 0)
    model.compile(loss="sparse_categorical_crossentropy")
    val_loss = model.evaluate(x[va], y[va], verbose=0)
    assert val_loss == pytest.approx(min(hist["val_loss"]), rel=1e-4)  # the best epoch's weights were kept
    res2 = pipeline.evaluate(model, x[va], y[va])
    assert res2["accuracy"] == res["accuracy"] and res2["AUC"] == pytest.approx(res["AUC"])
    assert res["accuracy"] > 0.9 and res["AUC"] > 0.9 and res["kappa"] > 0.8
    assert res2["confusion"].sum() == 40 and res2["specificity"] == pytest.approx(
        res2["confusion"][0, 0] / res2["confusion"][0].sum())
    assert res["majority accuracy"] == 0.5
    assert runs.cached(pipeline.fit_model, **call) == res and runs.reused  # the same call is not trained again
    assert runs.find(pipeline.fit_model, **{**call, "seed": 1}) is None  # another call has no unit
    pos = x[va][y[va] == 1][:6]
    plain = pipeline.grad_cam(model, pos, class_index=1)
    assert plain.shape == (6, 24, 24) and plain.min() >= 0 and plain.max() <= 1
    cams = pipeline.grad_cam(model, pos, class_index=1, method="hirescam")
    assert cams.shape == (6, 24, 24) and cams.min() >= 0 and cams.max() <= 1
    inside = cams[:, :12, :12].mean(axis=(1, 2))
    outside = cams[:, 12:, 12:].mean(axis=(1, 2))
    assert (inside > outside).mean() >= 5 / 6  # the map points at the square
    assert plots.overlay_grid(pos[:2], cams[:2], ["a", "b"], ncols=2) is not None


def test_config_refuses_shares_that_leave_nothing_to_train_on_and_absurd_values():
    with pytest.raises(config.ParameterError, match="'folds' and 'val_size'"):
        config.make(p02.config, "smoke", folds=2, val_size=0.5)
    with pytest.raises(config.ParameterError, match="'folds'"):
        config.make(p02.config, "smoke", folds=1)
    with pytest.raises(config.ParameterError, match="'input_size'"):
        config.make(p02.config, "smoke", input_size=1024)
    with pytest.raises(config.ParameterError, match="'input_size'"):
        config.make(p02.config, "smoke", input_size=8, filters=[8, 16, 32, 64])  # 4 poolings need 16 px
    base = p02.config.Config()
    assert all(getattr(base, k) != v for k, v in p02.config.PROFILES["smoke"].items())  # a diff, no restated keys


# ------------------------------------------------------------------------------------------
# Metrics: scikit-learn's, the positive class's column, each group once, majority baselines
# ------------------------------------------------------------------------------------------
def _labels_and_scores(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    p = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)  # informative, far from perfect
    return y, p


def test_evaluate_proba_matches_scikit_learn_image_and_group_weighted():
    from sklearn import metrics as skm

    y, p = _labels_and_scores()
    pred = (p >= 0.5).astype(int)
    r = pipeline.evaluate_proba(y, p)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert r["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert r["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert r["AUC"] == pytest.approx(skm.roc_auc_score(y, p)) and r["AUC"] > 0.6
    assert r["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    w = np.random.default_rng(1).random(len(y))
    rw = pipeline.evaluate_proba(y, p, weights=w)
    assert rw["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert rw["AUC"] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w))
    assert rw["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred, sample_weight=w))


def test_evaluate_scores_the_fractured_column_of_the_model_output():
    y, p = _labels_and_scores()

    class Fixed:  # a "model" whose softmax output is [p(not fractured), p(fractured)]
        def predict(self, x, **kw):
            return np.stack([1 - p, p], axis=1)

    r = pipeline.evaluate(Fixed(), np.zeros((len(y), 1)), y)
    from sklearn.metrics import roc_auc_score

    assert r["AUC"] == pytest.approx(roc_auc_score(y, p)) and r["AUC"] > 0.6  # the wrong column gives 1 - AUC < 0.4
    np.testing.assert_allclose(r["proba"], p)


def test_group_weighted_metrics_count_a_family_of_copies_once():
    # a family of 10 copies, all right, and two singletons, both wrong
    groups = np.array([7] * 10 + [1, 2])
    y = np.array([1] * 10 + [0, 1])
    proba = np.array([0.9] * 10 + [0.8, 0.1])
    w = pipeline.group_weights(groups)
    assert w.sum() == pytest.approx(3) and w[0] == pytest.approx(0.1)
    r = pipeline.evaluate_proba(y, proba, weights=w)
    assert r["accuracy"] == pytest.approx(1 / 3)  # image level: 10/12
    assert pipeline.evaluate_proba(y, proba)["accuracy"] == pytest.approx(10 / 12)
    s = pipeline.score(np.r_[y, [0, 0]], np.r_[groups, [8, 9]], np.array([12, 13]), np.arange(12), proba)
    assert s["accuracy"] == pytest.approx(10 / 12) and s["accuracy (groups)"] == pytest.approx(1 / 3)
    assert s["groups"] == 3 and s["majority accuracy"] == pytest.approx(1 / 12)


def test_majority_accuracy_image_and_group_level():
    assert pipeline.majority_accuracy([0, 0, 1], [0, 1, 1, 1]) == pytest.approx(0.25)
    assert pipeline.majority_accuracy([1, 1, 0], [0, 1, 1, 1]) == pytest.approx(0.75)
    # training part: a family of 3 class-0 copies and two class-1 singletons -> image majority 0, group majority 1
    g_tr, y_tr = np.array([5, 5, 5, 6, 7]), np.array([0, 0, 0, 1, 1])
    y_te, g_te = np.array([1, 1, 1, 0]), np.array([8, 8, 9, 10])
    assert pipeline.majority_accuracy(y_tr, y_te) == pytest.approx(0.25)
    acc = pipeline.majority_accuracy(y_tr, y_te, pipeline.group_weights(g_tr), pipeline.group_weights(g_te))
    assert acc == pytest.approx(2 / 3)  # predicts 1: right on groups 8 and 9, wrong on 10 (the image majority: 1/3)


def test_no_cnn_baseline_learns_from_file_metadata_alone(tmp_path):
    """A leak the no-CNN baseline must find: fractured X-rays stored as PNG, the others as JPEG."""
    from PIL import Image
    import pandas as pd

    rng = np.random.default_rng(0)
    files, y = [], []
    for k in range(80):
        label = k % 2
        arr = rng.integers(0, 255, (40 + k % 7, 36), dtype=np.uint8)
        f = tmp_path / f"{k}.{'png' if label else 'jpg'}"
        Image.fromarray(arr).save(f)
        files.append(str(f))
        y.append(label)
    y = np.array(y)
    df = pd.DataFrame({"file": files})
    x = np.stack([np.asarray(Image.open(f).convert("L").resize((16, 16))) for f in files])[..., None]
    feats = pipeline.no_cnn_features(df, x)
    assert feats.shape == (80, len(pipeline.NO_CNN_FEATURES))
    assert (feats[:, pipeline.NO_CNN_FEATURES.index("PNG")] == y).all()
    proba = pipeline.fit_no_cnn(feats, y, np.arange(0, 50), np.arange(50, 60), np.arange(60, 80), seed=0)
    assert pipeline.evaluate_proba(y[60:], proba)["accuracy"] == 1.0


def test_cam_where_measures_edge_and_marker_mass():
    cams = np.zeros((1, 20, 20))
    cams[0, 0, :] = 1.0  # all on the top edge
    imgs = np.zeros((1, 20, 20))
    imgs[0, 0, :5] = 255  # a white marker on that edge
    w = pipeline.cam_where(cams, imgs, band=0.1)
    assert w["map on edges"] == pytest.approx(1.0) and w["edge area"] == pytest.approx(1 - 0.8 ** 2)
    assert w["map on near-white pixels"] == pytest.approx(0.25) and w["near-white area"] == pytest.approx(5 / 400)
    assert w["map on near-black pixels"] == pytest.approx(0.75) and w["near-black area"] == pytest.approx(395 / 400)
