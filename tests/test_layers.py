"""The layers of imgclf.models.layers: the denoising AE's training noise and the normaliser layer."""

import numpy as np
import pytest
from imgclf.models.layers import Normalize, PixelNoise


def _x(n=64, m=400, seed=0):
    return np.random.default_rng(seed).random((n, m)).astype("float32") * 0.5  # pixels in [0, 0.5]


def test_pixel_noise_draws_afresh_for_every_batch():
    x = _x()
    layer = PixelNoise("replace", 0.3, seed=0)
    a, b = (np.asarray(layer(x, training=True)) for _ in range(2))
    hit_a, hit_b = a != x, b != x
    # two batches must not share one noise draw: the hit positions of two calls overlap by chance only
    overlap = (hit_a & hit_b).mean() / hit_a.mean()
    assert 0.2 < overlap < 0.4, overlap
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["replace", "salt-and-pepper"])
def test_pixel_noise_hits_the_asked_fraction_with_values_in_range(kind):
    x = _x(200, 400)
    y = np.asarray(PixelNoise(kind, 0.3, seed=1)(x, training=True))
    assert abs((y != x).mean() - 0.3) < 0.02 or kind == "salt-and-pepper" and abs((y != x).mean() - 0.3) < 0.03
    assert y.min() >= 0.0 and y.max() <= 1.0
    if kind == "salt-and-pepper":
        assert set(np.unique(y[y != x])) <= {0.0, 1.0}


def test_pixel_noise_is_the_identity_at_inference_and_ranges_levels_per_image():
    x = _x()
    np.testing.assert_array_equal(np.asarray(PixelNoise("replace", 0.5)(x, training=False)), x)
    y = np.asarray(PixelNoise("replace", 0.0, level_max=0.8, seed=2)(_x(300), training=True))
    per_image = (y != _x(300)).mean(axis=1)
    assert per_image.std() > 0.15 and 0.3 < per_image.mean() < 0.5  # U[0, 0.8]: mean 0.4, sd 0.23
    g = np.asarray(PixelNoise("gaussian", 0.1, seed=3)(x, training=True))
    assert 0.05 < np.std(g - x) < 0.1 and g.min() >= 0.0
    with pytest.raises(ValueError, match="noise kind"):
        PixelNoise("speckle")


def test_normalize_layer_equals_the_fitted_scikit_learn_normaliser():
    from imgclf.papers.p01_two_stage_autoencoder.pipeline import make_normalizer

    train, test = _x(100, 50, 4) * 2, _x(30, 50, 5) * 2
    norm = make_normalizer().fit(train)
    mm = norm.steps[-1][1]
    got = np.asarray(Normalize(mm.scale_, mm.min_)(test))
    np.testing.assert_allclose(got, norm.transform(test), atol=1e-5)
    np.testing.assert_allclose(np.asarray(Normalize(mm.scale_, mm.min_)(train)).min(axis=0), 0.0, atol=1e-5)
