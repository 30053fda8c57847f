"""Paper 3's networks: published sizes, MNIST forward pass, GoogLeNet's auxiliary heads, training."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from imgclf.config import ParameterError
from imgclf.models import cnns, param_counts
from imgclf.papers.p03_mnist_deep_cnns import pipeline as deepcnn
from imgclf.papers.p03_mnist_deep_cnns.config import Config

ARCHS = ["vgg16", "googlenet", "resnet18"]


def _counts(model):
    return model.count_params(), param_counts(model)[0]


# -- sizes at 224x224x3 with 1000 classes (built once each, never compiled) --------------------
def test_vgg16_has_the_published_138m_weights():
    keras.backend.clear_session()
    model = cnns.build_vgg16()  # the only VGG-16 at 224 px in the test session
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)
    assert _counts(model) == (138_357_544, 138_357_544)
    assert sum(isinstance(l, keras.layers.Conv2D) for l in model.layers) == 13
    assert sum(isinstance(l, keras.layers.Dense) for l in model.layers) == 3
    del model
    keras.backend.clear_session()


def test_resnet18_has_torchvisions_11_7m_weights():
    model = cnns.build_resnet18()
    total, trainable = _counts(model)
    assert trainable == 11_689_512  # torchvision's resnet18().parameters()
    assert total - trainable == 2 * 4_800  # moving mean and variance of the 4,800 batch-norm channels
    projections = [l.name for l in model.layers if l.name.endswith("_proj")]
    assert projections == ["layer2_block1_proj", "layer3_block1_proj", "layer4_block1_proj"]
    assert model.get_layer("layer4_block2_out").output.shape == (None, 7, 7, 512)


def _aux_head_weights(c_in, classes=1000):
    return (c_in * 128 + 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * classes + classes)


def test_googlenet_size_without_and_with_auxiliary_heads():
    plain = cnns.build_googlenet(batch_norm=False)
    assert _counts(plain) == (6_998_552, 6_998_552)  # the reference (Caffe) GoogLeNet
    assert plain.get_layer("inception5b_concat").output.shape == (None, 7, 7, 1024)
    assert sum(l.name.endswith("_concat") for l in plain.layers) == 9
    aux = cnns.build_googlenet(batch_norm=False, aux_logits=True)
    assert aux.output_names == ["predictions", "aux1", "aux2"]
    assert aux.count_params() == 6_998_552 + _aux_head_weights(512) + _aux_head_weights(528)
    assert aux.get_layer("aux1_pool").output.shape == (None, 4, 4, 512)  # the paper's 5x5/3 pooling
    with_bn = cnns.build_googlenet()
    assert 6.6e6 <= param_counts(with_bn)[0] <= 7.05e6


# -- MNIST models ------------------------------------------------------------------------------
def _digits(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28, 1)).astype("float32"), rng.integers(0, 10, n)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_pass_on_28x28x1_gives_class_probabilities(arch):
    keras.backend.clear_session()
    model = cnns.build_mnist_classifier(arch, image_size=32)
    x, _ = _digits(3)
    p = np.asarray(model(x, training=False))
    assert model.input_shape == (None, 28, 28, 1) and p.shape == (3, 10)
    assert np.all(p >= 0) and np.allclose(p.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_mixed_precision_models_still_output_float32_probabilities(arch):
    """Under ``mixed_float16`` (the GPU path) the layers compute in float16 but every softmax head
    (GoogLeNet's auxiliary ones too) outputs float32 probabilities."""
    from imgclf import train

    keras.backend.clear_session()
    train.use_mixed_precision(True)
    try:
        model = deepcnn.build(arch, 32, "sgd", 0.01)  # the training model, with GoogLeNet's aux heads
        convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
        assert convs and all(l.compute_dtype == "float16" for l in convs)
        assert [keras.backend.standardize_dtype(t.dtype) for t in model.outputs] == ["float32"] * len(model.outputs)
        outs = model(_digits(2)[0], training=False)
        for p in outs if isinstance(outs, (list, tuple)) else [outs]:
            assert keras.backend.standardize_dtype(p.dtype) == "float32"
            assert np.allclose(np.asarray(p).sum(1), 1.0, atol=1e-3)
    finally:
        train.use_mixed_precision(False)
        keras.backend.clear_session()


def test_googlenet_is_initialised_as_torchvisions_truncated_normal_std_0_01():
    """torchvision's GoogLeNet: conv and linear kernels N(0, 0.01) truncated at 2 std (std of the
    truncated law 0.0088); VGG-16's and ResNet-18's convolutions stay He-normal (fan-out)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    g = cnns.build_mnist_classifier("googlenet", 32, aux_logits=True)
    for name in ("inception4e_3x3", "conv1_7x7", "predictions_logits", "aux1_fc", "aux2_logits"):
        k = g.get_layer(name).kernel.numpy()
        assert k.std() == pytest.approx(0.01 * 0.8796, rel=0.05), name
        assert np.abs(k).max() <= 0.02 + 1e-7, name
    r = cnns.build_mnist_classifier("resnet18", 32)
    k = r.get_layer("layer4_block1_conv1").kernel.numpy()
    assert k.std() == pytest.approx(np.sqrt(2 / (9 * 512)), rel=0.05)


def test_input_stage_resizes_and_replicates_channels():
    x = np.zeros((1, 28, 28, 1), "float32")
    x[0, 10:18, 10:18] = 255.0
    seen = np.asarray(cnns.build_mnist_preprocessing(56)(x))
    assert seen.shape == (1, 56, 56, 3)
    np.testing.assert_allclose(seen[..., 0], seen[..., 2])
    assert seen[0, 0, 0, 0] == pytest.approx(-cnns.MNIST_MEAN / cnns.MNIST_STD, rel=1e-5)
    assert seen[0, 28, 28, 0] == pytest.approx((1 - cnns.MNIST_MEAN) / cnns.MNIST_STD, rel=1e-5)


def test_googlenet_auxiliary_heads_exist_only_in_the_training_model():
    keras.backend.clear_session()
    training = cnns.build_mnist_classifier("googlenet", 32, aux_logits=True)
    predicting = cnns.inference_model(training)
    assert training.output_names == ["predictions", "aux1", "aux2"]
    assert len(predicting.outputs) == 1 and predicting.output_shape == (None, 10)
    assert not any(l.name.startswith("aux") for l in predicting.layers)
    x, _ = _digits(2)
    # same weights: the prediction model is the training model's main head
    np.testing.assert_allclose(np.asarray(predicting(x, training=False)), np.asarray(training(x, training=False)[0]),
                               rtol=1e-5, atol=1e-6)
    without = cnns.build_mnist_classifier("googlenet", 32, aux_logits=False)
    assert predicting.count_params() == without.count_params() < training.count_params()
    assert cnns.inference_model(without) is without


def test_googlenet_training_loss_weights_auxiliary_heads_by_0_3():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = deepcnn.build("googlenet", 32, "sgd", 1e-3)
    x, y = _digits(8)
    logs = model.fit(deepcnn.dataset(x, y, 8, outputs=3), epochs=1, verbose=0, shuffle=False).history
    expected = logs["predictions_loss"][0] + 0.3 * (logs["aux1_loss"][0] + logs["aux2_loss"][0])
    assert logs["loss"][0] == pytest.approx(expected, rel=1e-4)
    h = deepcnn.main_head_history(logs)
    assert h["loss"] == logs["predictions_loss"] and h["total_loss"] == logs["loss"] and "accuracy" in h


# Steps small enough to be a descent step on every seed: at initialisation the batch-normalised
# networks have large gradients on a batch of 8 (batch norm makes them scale-free in the small
# He-initialised kernels), so larger steps can overshoot; VGG-16 has small ones.
@pytest.mark.parametrize("arch, optimizer, lr", [("vgg16", "sgd", 1e-2), ("googlenet", "sgd", 1e-5),
                                                 ("googlenet", "adam", 1e-5), ("resnet18", "sgd", 1e-4),
                                                 ("resnet18", "adam", 1e-4)])
def test_one_training_step_lowers_the_loss_on_a_tiny_batch(arch, optimizer, lr):
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    no_dropout = {"vgg16": dict(dropout=0.0), "googlenet": dict(dropout=0.0, aux_dropout=0.0)}.get(arch, {})
    model = deepcnn.build(arch, 32, optimizer, lr, **no_dropout)
    x, y = _digits(8, seed=3)
    targets = y if len(model.outputs) == 1 else (y, y, y)
    before = np.atleast_1d(model.train_on_batch(x, targets))[0]  # loss at the initial weights, then one step
    after = np.atleast_1d(model.train_on_batch(x, targets))[0]   # loss at the updated weights
    assert np.isfinite(before) and after < before


def test_same_shaped_kernels_start_different_and_the_seed_fixes_them_across_processes():
    import subprocess
    import sys

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    vgg = cnns.build_mnist_classifier("vgg16", 32)
    k1, k2 = (vgg.get_layer(f"block5_conv{i}").kernel.numpy() for i in (1, 2))
    assert k1.shape == k2.shape and not np.allclose(k1, k2)  # one initializer instance per layer
    assert k1.std() == pytest.approx(np.sqrt(2 / (9 * 512)), rel=0.05)  # He normal, fan-out
    code = ("import keras, numpy as np; from imgclf.models import cnns; keras.utils.set_random_seed(5); "
            "m = cnns.build_mnist_classifier('resnet18', 32); print(sum(float(np.abs(w).sum()) for w in m.get_weights()))")
    sums = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1]
            for _ in range(2)]
    assert sums[0] == sums[1]


def test_adaptive_pooling_averages_the_pytorch_windows():
    x = np.arange(2 * 6 * 6 * 3, dtype="float32").reshape(2, 6, 6, 3)
    out = np.asarray(cnns.AdaptiveAveragePooling2D(4)(x))
    windows = [(0, 2), (1, 3), (3, 5), (4, 6)]  # floor(i*6/4) .. ceil((i+1)*6/4)
    ref = np.array([[x[:, r0:r1, c0:c1].mean((1, 2)) for c0, c1 in windows] for r0, r1 in windows]).transpose(2, 0, 1, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    small = np.asarray(cnns.AdaptiveAveragePooling2D(4)(x[:, :2, :2]))  # 2x2 -> 4x4 replicates
    np.testing.assert_allclose(small[:, ::2, ::2], x[:, :2, :2])


@pytest.mark.parametrize("arch", ARCHS)
def test_too_small_inputs_are_refused(arch):
    with pytest.raises(ValueError, match="at least 32x32"):
        cnns.build_mnist_classifier(arch, image_size=28)


# -- experiment plumbing -------------------------------------------------------------------------
def test_dataset_yields_28x28_batches_and_repeats_labels_for_auxiliary_heads():
    x = np.zeros((10, 28, 28), np.uint8)
    y = np.arange(10)
    xb, yb = next(iter(deepcnn.dataset(x, y, 4, outputs=3)))
    assert xb.shape == (4, 28, 28, 1) and xb.dtype.name == "float32"
    assert isinstance(yb, tuple) and len(yb) == 3 and yb[0].shape == (4,)


@pytest.mark.parametrize("key, value", [("models", ["vgg19"]), ("optimizers", ["rmsprop"]),
                                        ("mixed_precision", "yes"), ("image_size", 28)])
def test_bad_settings_are_refused_naming_the_parameter(key, value):
    from imgclf import config

    with pytest.raises(ParameterError, match=key):
        config.resolve("03_mnist_deep_cnns", "smoke", **{key: value})


def test_table1_maps_every_paper_row_to_one_run():
    runs = [dict(model=m, optimizer=o, **{"learning rate": lr, "accuracy (%)": 90.0 + i, "status": "ok"})
            for i, (m, o, lr) in enumerate((m, o, lr) for m in ("VGG-16", "GoogLeNet", "ResNet-18")
                                           for o in ("sgd", "adam") for lr in (0.001, 0.01))]
    t = deepcnn.table1_vs_ours(pd.DataFrame(runs))
    assert len(t) == 15 and t["paper"].notna().sum() == 12  # 12 paper rows + 3 Adam-0.01 runs
    vgg = t[t["model"] == "VGG-16"]
    assert list(vgg["paper row"]) == ["VGG-16", "VGG-16 with SGD", "VGG-16", "VGG-16 with Adam", "(no row in the paper)"]
    assert list(vgg["optimizer"]) == ["sgd", "sgd", "sgd", "adam", "adam"]
    assert list(vgg["ours"]) == [90.0, 90.0, 91.0, 92.0, 93.0]  # both SGD-0.001 rows compare with one run
    assert t.loc[t["paper row"] == "GoogLeNet", "paper"].tolist() == [98.7, 81.5]


# -- a run: reuse of the compiled model, resume by run units ------------------------------------
def _mnist_bits(n_train=64, n_test=32):
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (n_train + n_test, 28, 28)).astype("uint8")
    y = rng.integers(0, 10, n_train + n_test)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _same_run(a, b):
    assert a["history"] == b["history"]
    np.testing.assert_array_equal(a["y_pred"], b["y_pred"])
    assert a["accuracy"] == b["accuracy"]


@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_reused_model_after_its_reset_gives_exactly_what_a_fresh_one_gives(tmp_path, checkpoint):
    """Two learning rates in a row on one compiled GoogLeNet (batch norm, dropout, aux heads, Adam
    state): the second run equals the same run on a freshly built model."""
    x, y, xt, yt = _mnist_bits()
    kw = dict(epochs=2, image_size=32, batch_size=16, seed=3)
    ck = (lambda name: tmp_path / name) if checkpoint else (lambda name: None)
    deepcnn.release()
    deepcnn.run("googlenet", "adam", 0.01, x, y, xt, yt, checkpoint_dir=ck("a1"), **kw)
    reused = deepcnn.run("googlenet", "adam", 0.001, x, y, xt, yt, checkpoint_dir=ck("a2"), **kw)
    fresh = deepcnn.run("googlenet", "adam", 0.001, x, y, xt, yt, checkpoint_dir=ck("f2"), reuse=False, **kw)
    deepcnn.release()
    assert len(reused["history"]["loss"]) == 2
    _same_run(reused, fresh)


def _cfg(**kw):
    return Config(**dict(dict(epochs=3, vgg16_epochs=None, image_size=32, batch_size=16, momentum=0.0, aux_logits=True,
                              googlenet_batch_norm=True), **kw))


def test_a_run_unit_stopped_by_the_budget_resumes_from_its_last_epoch_with_the_same_numbers(tmp_path):
    from imgclf.runs import Runs

    x, y, xt, yt = _mnist_bits()
    dev = deepcnn.Device(False, False, False, True, 1)
    deepcnn.release()
    ref = deepcnn.run("resnet18", "adam", 0.01, x, y, xt, yt, epochs=3, image_size=32, batch_size=16, seed=0,
                      checkpoint_dir=tmp_path / "ref")
    deepcnn.release()
    runs = Runs(tmp_path / "runs", log=lambda m: None, budget_minutes=1)
    answers = iter([False, False, True])  # before the unit starts, after epoch 1, after epoch 2
    runs.budget_spent = lambda: next(answers)
    assert deepcnn.table1_run(runs, _cfg(), "resnet18", "adam", 0.01, dev, x, y, xt, yt) is None
    assert runs.skipped == ["ResNet-18 Adam lr=0.01"] and runs.summary()["partial"]
    deepcnn.release()  # as a new process would
    again = Runs(tmp_path / "runs", log=lambda m: None)
    res = deepcnn.table1_run(again, _cfg(), "resnet18", "adam", 0.01, dev, x, y, xt, yt)
    assert again.ran == ["ResNet-18 Adam lr=0.01"]
    rec = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert rec["resumed"] is True
    _same_run(res, ref)
    third = Runs(tmp_path / "runs", log=lambda m: None)
    assert deepcnn.table1_run(third, _cfg(), "resnet18", "adam", 0.01, dev, x, y, xt, yt) is not None
    assert third.reused == ["ResNet-18 Adam lr=0.01"] and third.ran == []
    deepcnn.release()


def test_vgg16_epochs_override_only_vgg16():
    assert _cfg(vgg16_epochs=1).epochs_of("vgg16") == 1 and _cfg(vgg16_epochs=1).epochs_of("resnet18") == 3
    assert _cfg().epochs_of("vgg16") == 3


# -- what a run measured: its label -------------------------------------------------------------
def _result(accuracy, val, loss, finite=True):
    return dict(accuracy=accuracy, finite_predictions=finite, history=dict(val_accuracy=val, loss=loss))


BALANCED = np.repeat(np.arange(10), 30)  # 300 test digits, 30 per class: chance 0.1


def test_label_run_tells_chance_learning_converged_and_diverged_apart():
    label = deepcnn.label_run
    assert deepcnn.chance_accuracy(BALANCED) == 0.1 and deepcnn.chance_margin(BALANCED) == 0.1
    assert label(_result(0.19, [0.15, 0.19], [2.3, 2.29]), BALANCED) == "at chance"  # within 10 points of 1/10
    assert label(_result(0.26, [0.15, 0.26], [2.3, 2.1]), BALANCED) == "learning"   # the "26 %" run: not "ok"
    assert label(_result(0.97, [0.90, 0.97], [0.5, 0.2]), BALANCED) == "learning"   # still rising 7 points
    assert label(_result(0.97, [0.968, 0.97], [0.11, 0.105]), BALANCED) == "converged"
    assert label(_result(0.97, [0.97], [0.1]), BALANCED) == "learning"             # one epoch shows no trend
    assert label(_result(0.97, [0.9, 0.97], [0.5, float("nan")]), BALANCED) == "diverged (NaN loss)"
    assert label(_result(0.5, [0.4, 0.5], [1.0, 0.9], finite=False), BALANCED) == "diverged (NaN loss)"


def test_chance_is_the_majority_class_when_it_beats_guessing():
    skewed = np.r_[np.zeros(160, int), np.arange(1, 10).repeat(10)]  # 160 of 250 are zeros
    assert deepcnn.chance_accuracy(skewed) == pytest.approx(0.64)
    assert deepcnn.label_run(_result(0.70, [0.7, 0.7], [1.0, 1.0]), skewed) == "at chance"  # always "0" gets 0.64
    tiny = np.arange(10).repeat(3)  # 30 test digits: 3 sd of chance accuracy (0.16) is the margin
    assert deepcnn.chance_margin(tiny) == pytest.approx(3 * np.sqrt(0.09 / 30))
    assert deepcnn.label_run(_result(0.25, [0.2, 0.25], [2.0, 1.5]), tiny) == "at chance"


def test_every_profile_passes_its_rules_and_cpu32_is_all_of_mnist_at_32_px(tmp_path):
    from imgclf import config, papers
    from imgclf.papers import p03_mnist_deep_cnns as p03

    for name in p03.config.PROFILES:
        assert config.make(p03.config, name).profile == name
    c = papers.check_parameters(p03, dict(profile="cpu32", seed=0, data_dir=str(tmp_path)))  # what start() runs
    grid = len(c.models) * len(c.optimizers) * len(c.learning_rates)
    assert (c.mnist_train, c.mnist_test, c.image_size, grid, c.vgg16_epochs) == (60000, 10000, 32, 12, None)
    assert c.epochs >= 2
    with pytest.raises(ParameterError, match="profile"):
        papers.check_parameters(p03, dict(profile="cpu64", seed=0, data_dir=str(tmp_path)))
