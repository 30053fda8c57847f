"""Paper 5 models: exact parameter counts, frozen BatchNorm, cached-feature training equivalence."""

import keras
import numpy as np
import pytest
from imgclf.models import param_counts, transfer
from imgclf.papers.p05_linnaeus_transfer import pipeline as transfer_cv


@pytest.fixture(scope="module")
def mobilenet224():
    return transfer.build_mobilenet(224, weights=None)


@pytest.fixture(scope="module")
def resnet256():
    return transfer.build_resnet50(256, weights=None)


def test_mobilenet_parameter_counts_match_paper_table2(mobilenet224):
    assert param_counts(mobilenet224.model) == (5_125, 3_228_864)
    assert mobilenet224.model.output.shape[1:] == (5,)
    assert mobilenet224.features.output.shape[1:] == (1024,)


def test_resnet50_parameter_counts_match_paper_table5(resnet256):
    assert param_counts(resnet256.model) == (4_207_621, 22_532_992)
    base = resnet256.model.layers[1]
    assert [l.name for l in base.layers if l.trainable and l.weights] == ["conv5_block3_3_conv", "conv5_block3_3_bn"]
    # frozen part holds no trainable weight; head = tail + dense layers holds all of them
    assert param_counts(resnet256.features)[0] == 0
    assert param_counts(resnet256.head)[0] == 4_207_621
    assert [tuple(t.shape[1:]) for t in resnet256.features.outputs] == [(8, 8, 512), (8, 8, 2048)]


def test_head_spec_parsing_and_other_heads():
    assert transfer.parse_head("1024-1024") == [1024, 1024]
    assert transfer.parse_head("linear") == []
    with pytest.raises(ValueError, match="head spec"):
        transfer.parse_head("big")
    tm = transfer.build_resnet50(32, weights=None, head="linear")
    assert param_counts(tm.model)[0] == 1_050_624 + 4_096 + 2048 * 5 + 5


def test_preprocess_is_the_applications_own():
    x = np.full((1, 2, 2, 3), 255.0, np.float32)
    mob = transfer.build_mobilenet(32, weights=None)
    np.testing.assert_allclose(mob.preprocess(x.copy()), 1.0)
    res = transfer.build_resnet50(32, weights=None)
    np.testing.assert_allclose(res.preprocess(x.copy())[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68], rtol=1e-5)


def test_missing_local_weights_file_stops_naming_it(tmp_path):
    # issue 11: a mistyped weights path must stop the run, never fall back to random weights
    with pytest.raises(FileNotFoundError, match="nope.h5.*not found"):
        transfer.resolve_weights("mobilenet", tmp_path / "nope.h5")


def _one_step_equivalence(tm, seed=3):
    rng = np.random.default_rng(seed)
    s = tm.input_size
    images = rng.integers(0, 256, (8, s, s, 3)).astype(np.uint8)
    y = keras.utils.to_categorical(rng.integers(0, 5, 8), 5)
    feats = transfer.extract_features(tm, images, batch_size=4)  # cached, in two batches
    h_cached = transfer_cv.fresh_head(tm, seed)
    h_e2e = transfer_cv.fresh_head(tm, seed)
    start = [w.copy() for w in h_cached.get_weights()]
    for w0, w1 in zip(start, h_e2e.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    e2e = transfer_cv.end_to_end(tm, h_e2e)
    moving = [w for w in tm.features.non_trainable_weights if "moving" in w.path]
    bn_before = [np.array(w) for w in moving]
    assert len(moving) > 20
    for m in (h_cached, e2e):
        m.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    h_cached.train_on_batch(feats, y)
    e2e.train_on_batch(tm.preprocess(images.astype(np.float32)), y)
    after_c, after_e = h_cached.get_weights(), h_e2e.get_weights()
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(after_c, start))  # the step did something
    for a, b in zip(after_c, after_e):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # frozen BatchNorm stays in inference mode: its moving statistics did not move
    for w0, w1 in zip(bn_before, moving):
        np.testing.assert_array_equal(w0, np.asarray(w1))


def test_cached_feature_step_equals_end_to_end_step_mobilenet():
    _one_step_equivalence(transfer.build_mobilenet(64, weights=None))


def test_cached_feature_step_equals_end_to_end_step_resnet50_tail():
    _one_step_equivalence(transfer.build_resnet50(64, weights=None, head="32", dropout=0.0))


@pytest.mark.parametrize("arch", ["mobilenet", "resnet50"])
def test_mixed_precision_heads_still_output_float32_probabilities(arch):
    """Under ``mixed_float16`` (the GPU path) the base computes in float16, but the softmax head of
    the end-to-end model, of the cached-feature head and of its fresh per-fold copies is float32."""
    from imgclf import train

    keras.backend.clear_session()
    train.use_mixed_precision(True)
    try:
        build = transfer.build_mobilenet if arch == "mobilenet" else transfer.build_resnet50
        tm = build(64, weights=None)
        convs = [l for l in tm.model.layers[1].layers if isinstance(l, keras.layers.Conv2D)]
        assert convs and all(l.compute_dtype == "float16" for l in convs)
        head = transfer_cv.fresh_head(tm, seed=0)
        for model in (tm.model, tm.head, head):
            assert keras.backend.standardize_dtype(model.output.dtype) == "float32", model.name
        x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
        p = tm.model(tm.preprocess(x), training=False)
        assert keras.backend.standardize_dtype(p.dtype) == "float32"
        assert np.allclose(np.asarray(p).sum(1), 1.0, atol=1e-5)
    finally:
        train.use_mixed_precision(False)
        keras.backend.clear_session()
