"""Paper 2's plain CNN, best-epoch restore, metrics and Grad-CAM on synthetic images."""

import numpy as np
import pytest
from imgclf.models.cnns import build_plain_cnn
from imgclf.papers import p02_fracture_cnn as fracture


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


def test_fit_best_restores_the_lowest_validation_loss_weights_and_gradcam_finds_the_square():
    x, y = _squares()
    model, hist = fracture.fit_best(x[:120], y[:120], x[120:], y[120:], input_size=24, filters=[8, 16], dense=16,
                                    dropout=0.0, epochs=6, batch_size=16, learning_rate=3e-3, seed=0)
    assert hist["best_epoch"] == int(np.argmin(hist["val_loss"])) + 1 and len(hist["val_loss"]) == 6
    val_loss = model.evaluate(x[120:], y[120:], verbose=0)[0]
    assert val_loss == pytest.approx(min(hist["val_loss"]), rel=1e-4)
    res = fracture.evaluate(model, x[120:], y[120:])
    assert res["accuracy"] > 0.9 and res["AUC"] > 0.9 and res["kappa"] > 0.8
    assert res["confusion"].sum() == 40 and res["specificity"] == pytest.approx(
        res["confusion"][0, 0] / res["confusion"][0].sum())
    pos = x[120:][y[120:] == 1][:6]
    plain = fracture.grad_cam(model, pos, class_index=1)
    assert plain.shape == (6, 24, 24) and plain.min() >= 0 and plain.max() <= 1
    cams = fracture.grad_cam(model, pos, class_index=1, method="hirescam")
    assert cams.shape == (6, 24, 24) and cams.min() >= 0 and cams.max() <= 1
    inside = cams[:, :12, :12].mean(axis=(1, 2))
    outside = cams[:, 12:, 12:].mean(axis=(1, 2))
    assert (inside > outside).mean() >= 5 / 6  # the map points at the square
    assert fracture.overlay_grid(pos[:2], cams[:2], ["a", "b"], ncols=2) is not None
