import keras
import numpy as np
import pytest
from imgclf.models.autoencoders import (
    build_conv_autoencoder,
    build_dense_autoencoder,
    lrelu,
)
from imgclf.models.classifiers import RBM, CodeClassifier, build_dbn
from keras import ops


def test_lrelu_is_x_over_a_below_zero():
    f = lrelu(4.0)
    np.testing.assert_allclose(ops.convert_to_numpy(f(np.array([-8.0, -1.0, 0.0, 3.0]))), [-2.0, -0.25, 0.0, 3.0])


def test_tied_decoder_is_transpose_of_encoder_after_training():
    keras.utils.set_random_seed(0)
    ae, enc = build_dense_autoencoder(20, (8, 4), a=5.0, tied=True)
    ae.compile(keras.optimizers.Adam(1e-2), "mse")
    x = np.random.default_rng(0).random((64, 20)).astype("float32")
    k_before = ae.get_layer("enc0").kernel.numpy().copy()
    ae.fit(x, x, epochs=3, batch_size=16, verbose=0)
    k0 = ae.get_layer("enc0").kernel.numpy()
    assert not np.allclose(k0, k_before)  # training moved the shared kernel
    # decoder layer dec0 computes h @ enc0.kernel^T + its own bias, with the *current* kernel
    dec0 = ae.get_layer("dec0")
    h = np.random.default_rng(1).random((5, 8)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(dec0(h)), h @ k0.T + dec0.bias.numpy(), rtol=1e-5, atol=1e-6)
    # the tied AE owns only the encoder kernels plus biases: half the weights of the uncoupled one
    assert ae.count_params() == 20 * 8 + 8 + 8 * 4 + 4 + 8 + 20
    untied, _ = build_dense_autoencoder(20, (8, 4), tied=False)
    assert untied.count_params() == ae.count_params() + 20 * 8 + 8 * 4


def test_paper_autoencoder_shapes():
    ae, enc = build_dense_autoencoder(784, (256, 64))
    assert ae.output_shape == (None, 784) and enc.output_shape == (None, 64)


def test_conv_autoencoder_is_tied_and_its_decoder_is_the_adjoint():
    cae, enc = build_conv_autoencoder(256)
    assert cae.count_params() == 317  # the paper: 315
    conv = cae.get_layer("enc0")
    dec = cae.get_layer("dec0")
    assert dec.tied_to is conv
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 256, 1)).astype("float32")
    y = rng.normal(size=(2, 64, 8)).astype("float32")
    conv_x = ops.convert_to_numpy(ops.conv(x, conv.kernel, strides=4, padding="same"))
    convT_y = ops.convert_to_numpy(dec(y)) - dec.bias.numpy()
    # <conv(x), y> == <x, conv^T(y)>: the decoder applies exactly the transpose of the encoder
    np.testing.assert_allclose(np.sum(conv_x * y), np.sum(x * convT_y), rtol=1e-4)


def _binary_patterns(n=400, d=24, seed=0):
    rng = np.random.default_rng(seed)
    protos = (rng.random((3, d)) > 0.5).astype("float32")
    labels = rng.integers(0, 3, n)
    flips = rng.random((n, d)) < 0.05
    return np.abs(protos[labels] - flips).astype("float32"), labels


def test_rbm_training_lowers_reconstruction_error_and_free_energy():
    x, _ = _binary_patterns()
    rbm = RBM(12, seed=0)
    rbm.build(x.shape)
    err0 = float(np.mean((ops.convert_to_numpy(rbm.reconstruct(x)) - x) ** 2))
    noise = (np.random.default_rng(9).random(x.shape) > 0.5).astype("float32")
    errors = rbm.pretrain(x, epochs=15, batch_size=20, learning_rate=0.1, seed=0)
    err1 = float(np.mean((ops.convert_to_numpy(rbm.reconstruct(x)) - x) ** 2))
    assert err1 < 0.5 * err0
    assert errors[-1] < errors[0]
    fe_data = float(np.mean(ops.convert_to_numpy(rbm.free_energy(x))))
    fe_noise = float(np.mean(ops.convert_to_numpy(rbm.free_energy(noise))))
    assert fe_data < fe_noise  # the model puts its probability mass on the training patterns


def test_rbm_rejects_inputs_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RBM(4).pretrain(np.array([[2.0, 0.0]]), epochs=1)


def _bars(n: int, seed: int = 0, side: int = 8):
    """8x8 "bars" images: each image is all-horizontal or all-vertical bars (each line on with
    p = 0.3); every pixel has the same marginal, so permuting an image's pixels keeps its number
    of ones and its visible-bias term but destroys the bar structure an RBM should learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.zeros((n, side, side), np.float32)
    on = rng.random((n, side)) < 0.3
    for i in range(n):
        if y[i]:
            x[i][:, on[i]] = 1
        else:
            x[i][on[i], :] = 1
    return x.reshape(n, -1), y


def test_dbn_pretraining_is_what_makes_the_fine_tuned_dbn_work():
    """The DBN's first hidden layer must hold an RBM that learnt the data by CD: its hidden free
    energy ``-sum softplus(v W + b_h)`` is much lower on the bars than on the same images with their
    pixels shuffled. Without pretraining (N(0, 0.01) or Glorot weights) the gap is about 0; with the
    CD sign reversed it is negative (about -43 here); correct CD gives about +20."""
    x, _ = _bars(600)
    model, curves = build_dbn(x, 2, hidden=(16, 8), rbm_epochs=30, rbm_learning_rate=0.1, batch_size=20, seed=0)
    assert [len(c) for c in curves] == [30, 30]
    assert curves[0][-1] < 0.6 * curves[0][0]  # CD lowers the reconstruction error of the first RBM
    W, b = model.get_layer("h0").get_weights()
    rng = np.random.default_rng(1)
    shuffled = np.array([row[rng.permutation(len(row))] for row in x])
    hidden_free_energy = lambda v: -np.logaddexp(0, v @ W + b).sum(axis=1)  # noqa: E731
    gap = float(hidden_free_energy(shuffled).mean() - hidden_free_energy(x).mean())
    assert gap > 5.0
    # and the same weights as a second, identical greedy pretraining of RBM 1 (the layer holds the RBM)
    rbm = RBM(16, seed=0)
    rbm.pretrain(x, epochs=30, batch_size=20, learning_rate=0.1, seed=0)
    np.testing.assert_allclose(W, rbm.W.numpy(), atol=1e-5)
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("kind, hidden", [("perceptron", 16), ("dnn", [32, 16]), ("dbn", [32, 16])])
def test_code_classifiers_learn_a_separable_problem(kind, hidden):
    x, y = _binary_patterns(n=300, seed=2)
    clf = CodeClassifier(kind, hidden, epochs=30, batch_size=32, learning_rate=1e-2, rbm_epochs=3, seed=0)
    clf.fit(x[:200], y[:200])
    assert np.mean(clf.predict(x[200:]) == y[200:]) > 0.9
    assert clf.predict_proba(x[:3]).shape == (3, 3)


def test_same_seed_gives_the_same_weights_on_cpu():
    from imgclf import train
    from imgclf.papers.p01_two_stage_autoencoder.pipeline import fit_autoencoder

    x = np.random.default_rng(0).random((128, 30)).astype("float32")
    runs = []
    for _ in range(2):
        train.set_seed(7)
        ae, _, hist = fit_autoencoder(x, hidden=(16, 4), a=10.0, epochs=2, batch_size=32, learning_rate=1e-3, seed=7)
        runs.append((ae.get_weights(), hist["loss"]))
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
