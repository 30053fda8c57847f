"""Classifiers of paper 1 on 64-d codes: perceptron, DNN, DBN (RBM-pretrained).

Keras has no restricted Boltzmann machine, so :class:`RBM` is written here (Bernoulli hidden and
visible units, contrastive divergence CD-k). A DBN is a stack of RBMs trained greedily, layer by
layer, whose weights then initialise sigmoid ``Dense`` layers that are fine-tuned with a softmax
output by backprop.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops
from sklearn.base import BaseEstimator, ClassifierMixin

from ..train import set_seed


def build_perceptron(input_dim: int, num_classes: int, hidden: int = 100) -> keras.Model:
    """Shallow net: ``(batch, input_dim) -> sigmoid(hidden) -> softmax (batch, num_classes)``;
    ``hidden=0``: no hidden layer (softmax regression)."""
    inputs = keras.Input(shape=(input_dim,))
    h = layers.Dense(hidden, activation="sigmoid", name="hidden")(inputs) if hidden else inputs
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="perceptron")


def build_dnn(
    input_dim: int, num_classes: int, hidden: Sequence[int] = (300, 100), activation: str = "relu"
) -> keras.Model:
    """Deep net with Glorot-uniform ("normalised") initialisation, the paper's eq. (1).

    ``(batch, input_dim) -> Dense(h) ... -> softmax (batch, num_classes)``.
    """
    inputs = keras.Input(shape=(input_dim,))
    h = inputs
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation=activation, kernel_initializer="glorot_uniform", name=f"h{i}")(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="dnn")


class RBM(layers.Layer):
    """Bernoulli-Bernoulli restricted Boltzmann machine trained by CD-k.

    As a layer it maps visible ``(batch, n_visible)`` in [0, 1] to hidden probabilities
    ``p(h=1|v) = sigmoid(v W + b_h)`` of shape ``(batch, units)``.
    """

    def __init__(self, units: int, k: int = 1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.k = k
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        n_visible = input_shape[-1]
        self.W = self.add_weight(
            shape=(n_visible, self.units),
            initializer=keras.initializers.RandomNormal(stddev=0.01, seed=self.seed_generator),
            name="W",
        )
        self.h_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="h_bias")
        self.v_bias = self.add_weight(shape=(n_visible,), initializer="zeros", name="v_bias")

    def call(self, v):
        return self.hidden_probs(v)

    def hidden_probs(self, v):
        return ops.sigmoid(ops.matmul(v, self.W) + self.h_bias)

    def visible_probs(self, h):
        return ops.sigmoid(ops.matmul(h, ops.transpose(self.W)) + self.v_bias)

    def _sample(self, p):
        return ops.cast(keras.random.uniform(ops.shape(p), seed=self.seed_generator) < p, p.dtype)

    def reconstruct(self, v):
        """Mean-field reconstruction ``p(v|h)`` with ``h = p(h|v)``."""
        return self.visible_probs(self.hidden_probs(v))

    def free_energy(self, v):
        """``F(v) = -v.b_v - sum_j softplus(v W + b_h)_j``, shape ``(batch,)``."""
        return -ops.matmul(v, self.v_bias) - ops.sum(ops.softplus(ops.matmul(v, self.W) + self.h_bias), axis=-1)

    def cd_step(self, v0, learning_rate):
        """One CD-k update on batch ``v0``; returns the mean squared reconstruction error."""
        ph0 = self.hidden_probs(v0)
        h = self._sample(ph0)
        for _ in range(self.k):
            pv = self.visible_probs(h)
            phk = self.hidden_probs(pv)
            h = self._sample(phk)
        n = ops.cast(ops.shape(v0)[0], v0.dtype)
        grad_w = (ops.matmul(ops.transpose(v0), ph0) - ops.matmul(ops.transpose(pv), phk)) / n
        self.W.assign_add(learning_rate * grad_w)
        self.v_bias.assign_add(learning_rate * ops.mean(v0 - pv, axis=0))
        self.h_bias.assign_add(learning_rate * ops.mean(ph0 - phk, axis=0))
        return ops.mean(ops.square(v0 - pv))

    def pretrain(
        self, x: np.ndarray, epochs: int = 10, batch_size: int = 64, learning_rate: float = 0.05, seed: int = 0
    ) -> list[float]:
        """Train on ``x`` (values in [0, 1]) by CD-k; returns the reconstruction MSE per epoch."""
        import tensorflow as tf

        x = np.asarray(x, dtype="float32")
        if x.min() < 0 or x.max() > 1:
            raise ValueError("RBM visible units are Bernoulli: scale the inputs to [0, 1] first")
        if not self.built:
            self.build(x.shape)
        step = tf.function(self.cd_step, reduce_retracing=True)
        rng = np.random.default_rng(seed)
        lr = tf.constant(learning_rate, tf.float32)
        errors = []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            errs = [float(step(tf.constant(x[order[i : i + batch_size]]), lr)) for i in range(0, len(x), batch_size)]
            errors.append(float(np.mean(errs)))
        return errors


def build_dbn(
    x_pretrain: np.ndarray,
    num_classes: int,
    hidden: Sequence[int] = (300, 100),
    rbm_epochs: int = 10,
    rbm_learning_rate: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[keras.Model, list[list[float]]]:
    """Deep belief net: greedy RBM pretraining on ``x_pretrain`` (in [0, 1]), then a classifier.

    Returns the un-compiled model ``(batch, d) -> sigmoid(h1) -> ... -> softmax (batch, classes)``
    whose hidden layers hold the RBM weights, and the RBMs' per-epoch reconstruction errors.
    """
    inputs = keras.Input(shape=(x_pretrain.shape[1],))
    h, v = inputs, np.asarray(x_pretrain, "float32")
    curves = []
    for i, units in enumerate(hidden):
        rbm = RBM(units, seed=seed + i, name=f"rbm{i}")
        curves.append(rbm.pretrain(v, rbm_epochs, batch_size, rbm_learning_rate, seed=seed + i))
        dense = layers.Dense(units, activation="sigmoid", name=f"h{i}")
        h = dense(h)
        dense.set_weights([rbm.W.numpy(), rbm.h_bias.numpy()])
        v = ops.convert_to_numpy(rbm.hidden_probs(v))
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="dbn"), curves


class CodeClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn estimator over the three Keras classifiers, for ``GridSearchCV``.

    ``kind`` is ``"perceptron"`` (``hidden`` = one int), ``"dnn"`` or ``"dbn"`` (a list of widths).
    DBN inputs must be in [0, 1] (scale codes with ``MinMaxScaler`` and clip). ``patience``: early
    stopping on a stratified 10 % of the training data (best weights kept). A training set smaller
    than ``min_epoch_size`` is repeated ``r = min_epoch_size // n`` times per Keras epoch and run for
    ``epochs / r`` epochs: the same number of passes, far less per-epoch overhead.
    """

    def __init__(
        self,
        kind: str = "dnn",
        hidden=(300, 100),
        epochs: int = 20,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        rbm_epochs: int = 10,
        rbm_learning_rate: float = 0.05,
        seed: int = 0,
        patience: int | None = None,
        optimizer: str = "adam",
        min_epoch_size: int = 2048,
    ):
        self.min_epoch_size = min_epoch_size
        self.patience = patience
        self.optimizer = optimizer
        self.kind = kind
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.rbm_epochs = rbm_epochs
        self.rbm_learning_rate = rbm_learning_rate
        self.seed = seed

    def fit(self, X, y, callbacks=None):
        set_seed(self.seed, deterministic=None)
        X = np.asarray(X, "float32")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        n = len(self.classes_)
        self.rbm_errors_ = []
        if self.kind == "perceptron":
            hidden = self.hidden if isinstance(self.hidden, int) else int(self.hidden[0])
            model = build_perceptron(X.shape[1], n, hidden)
        elif self.kind == "dnn":
            model = build_dnn(X.shape[1], n, tuple(self.hidden))
        elif self.kind == "dbn":
            model, self.rbm_errors_ = build_dbn(
                X, n, tuple(self.hidden), self.rbm_epochs, self.rbm_learning_rate, self.batch_size, self.seed
            )
        else:
            raise ValueError(f"kind must be 'perceptron', 'dnn' or 'dbn', got {self.kind!r}")
        opt = (keras.optimizers.Adam(self.learning_rate) if self.optimizer == "adam"
               else keras.optimizers.SGD(self.learning_rate))
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        callbacks, val = list(callbacks or []), None
        if self.patience:
            # early stopping on a stratified 10 % of the training data; the best epoch's weights are kept
            from sklearn.model_selection import train_test_split

            X, Xv, y_idx, yv = train_test_split(X, y_idx, test_size=0.1, stratify=y_idx, random_state=self.seed)
            val = (Xv, yv)
            callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=self.patience,
                                                           restore_best_weights=True))
        # a small training set (the 280 faces) is repeated within an epoch, so that Keras' per-epoch
        # overhead does not dominate: r passes per epoch and epochs / r epochs = the same number of passes
        r = max(1, self.min_epoch_size // len(X)) if not self.patience else 1
        if r > 1:
            X, y_idx = np.tile(X, (r, 1)), np.tile(y_idx, r)
        self.history_ = model.fit(
            X, y_idx, epochs=max(1, round(self.epochs / r)), batch_size=self.batch_size, verbose=0, shuffle=True,
            callbacks=callbacks, validation_data=val,
        ).history
        self.passes_per_epoch_ = r
        self.model_ = model
        return self

    def predict_proba(self, X):
        return self.model_.predict(np.asarray(X, "float32"), verbose=0, batch_size=1024)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
