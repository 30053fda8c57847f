"""The k-NN head and the sliced CNN it sits on (paper 4, reusable).

*Slicing* cuts a CNN's dense head off and classifies its pooled conv activations with an exact
Euclidean k-NN (:class:`KNNHead`). Conv layers are passed around as plain ``(kernel, bias)`` arrays
(:data:`Layer`) so that an optimiser without gradients can write them.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

# ------------------------------------------------------------------------------------------
Layer = tuple[np.ndarray, np.ndarray]  # (kernel (kh, kw, cin, cout), bias (cout,))

def conv_layers(model: keras.Model) -> list[Layer]:
    """The ``(kernel, bias)`` arrays of the model's Conv2D layers, in order (copies)."""
    return [
        (np.array(l.kernel.numpy()), np.array(l.bias.numpy()))
        for l in model.layers
        if isinstance(l, layers.Conv2D)
    ]


def sliced_model(conv: Sequence[Layer], input_shape: tuple[int, int, int] = (28, 28, 1)) -> keras.Model:
    """The sliced network: the conv layers (ReLU, valid) + 2x2 max-pool + flatten.

    Input ``(batch, 28, 28, 1)``; output ``(batch, 9216)`` for the 32/64 network. Weights are
    set from ``conv`` (a list of ``(kernel, bias)``).
    """
    inp = keras.Input(input_shape, name="image")
    x = inp
    for i, (kern, _) in enumerate(conv):
        x = layers.Conv2D(kern.shape[-1], kern.shape[:2], activation="relu", name=f"conv{i + 1}")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="features")(x)
    model = keras.Model(inp, x, name="sliced_cnn")
    set_conv_weights(model, conv)
    return model


def set_conv_weights(model: keras.Model, conv: Sequence[Layer]) -> None:
    """Set the Conv2D layers' weights of ``model`` from ``conv``, in order."""
    convs = [l for l in model.layers if isinstance(l, layers.Conv2D)]
    if len(convs) != len(conv):
        raise ValueError(f"model has {len(convs)} conv layers, got weights for {len(conv)}")
    for l, (k, b) in zip(convs, conv):
        l.set_weights([k, b])


def random_conv_layers(filters: Sequence[int] = (32, 64), in_channels: int = 1, seed: int = 0) -> list[Layer]:
    """Freshly initialised conv layers as Keras does it (Glorot-uniform kernels, zero biases)."""
    rng = np.random.default_rng(seed)
    out, cin = [], in_channels
    for f in filters:
        fan_in, fan_out = 9 * cin, 9 * f
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        out.append((rng.uniform(-lim, lim, (3, 3, cin, f)).astype(np.float32), np.zeros(f, np.float32)))
        cin = f
    return out


# ------------------------------------------------------------------------------------------
# The k-NN head
# ------------------------------------------------------------------------------------------
def exact_float32() -> None:
    """Turn TensorFloat-32 off: on an Ampere or newer GPU, TF32 matmuls and convolutions keep only
    10 mantissa bits, which moves k-NN distances enough to change neighbours and so the fitness.
    Called wherever k-NN distances or fitness are computed (the batched and the per-individual
    fitness must agree exactly). On a CPU it has no effect; process-wide, as TensorFlow has it."""
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)


class KNNHead:
    """Exact Euclidean k-NN with a uniform vote, as scikit-learn's ``KNeighborsClassifier``.

    ``fit(features (n, d), labels (n,))`` stores the reference set; ``predict(features (m, d))``
    returns labels ``(m,)``. Squared distances come from a matrix product
    (``|q|^2 - 2 q.r + |r|^2``, in ``dtype``), the ``k`` nearest from ``top_k`` (equal distances:
    the lower reference index first), and a tied vote goes to the lowest label, as in
    scikit-learn (``uniform`` weights, the mode over sorted classes).
    """

    def __init__(self, k: int = 9, batch: int = 1024, dtype: str = "float64"):
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k, self.batch, self.dtype = int(k), int(batch), dtype

    def fit(self, features, labels) -> KNNHead:
        import tensorflow as tf

        exact_float32()
        features = np.asarray(features).reshape(len(features), -1)
        if len(features) < self.k:
            raise ValueError(f"k={self.k} but only {len(features)} reference samples")
        self.classes_, codes = np.unique(np.asarray(labels), return_inverse=True)
        self._ref = tf.constant(features, self.dtype)
        self._ref_sq = tf.reduce_sum(tf.square(self._ref), axis=1)
        self._codes = tf.constant(codes.astype(np.int32))
        return self

    def predict(self, features) -> np.ndarray:
        import tensorflow as tf

        features = np.asarray(features).reshape(len(features), -1)
        out = []
        for i in range(0, len(features), self.batch):
            q = tf.constant(features[i : i + self.batch], self.dtype)
            out.append(_knn_vote(q, self._ref, self._ref_sq, self._codes, self.k, len(self.classes_)).numpy())
        return self.classes_[np.concatenate(out)] if out else self.classes_[:0]

    def score(self, features, labels) -> float:
        return float(np.mean(self.predict(features) == np.asarray(labels)))


def _knn_vote(q, ref, ref_sq, codes, k: int, n_classes: int):
    """Batched k-NN vote: ``q (..., m, d)``, ``ref (..., n, d)`` -> class codes ``(..., m)``."""
    import tensorflow as tf

    # |q|^2 is the same for every reference point of a query, so it does not change the ranking;
    # it is kept so that the numbers are the true squared distances.
    d2 = tf.reduce_sum(tf.square(q), axis=-1)[..., :, None] - 2.0 * tf.matmul(q, ref, transpose_b=True)
    d2 = d2 + ref_sq[..., None, :]
    _, idx = tf.math.top_k(-d2, k=k, sorted=False)  # ties: the lower index first
    votes = tf.reduce_sum(tf.one_hot(tf.gather(codes, idx), n_classes, dtype=tf.int32), axis=-2)
    return tf.argmax(votes, axis=-1, output_type=tf.int32)  # first maximum = lowest label
