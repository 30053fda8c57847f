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
    with pytest.raises(config.ParameterError, match="'test_size' \\+ 'val_size'"):
        config.make(p02.config, "smoke", test_size=0.6, val_size=0.4)
    with pytest.raises(config.ParameterError, match="'input_size'"):
        config.make(p02.config, "smoke", input_size=1024)
    with pytest.raises(config.ParameterError, match="'input_size'"):
        config.make(p02.config, "smoke", input_size=8, filters=[8, 16, 32, 64])  # 4 poolings need 16 px
    base = p02.config.Config()
    assert all(getattr(base, k) != v for k, v in p02.config.PROFILES["smoke"].items())  # a diff, no restated keys
