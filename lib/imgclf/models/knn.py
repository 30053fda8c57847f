"""The k-NN head, the sliced CNN it sits on, and the fitness of its conv kernels (paper 4, reusable).

*Slicing* cuts a CNN's dense head off and classifies its pooled conv activations with an exact
Euclidean k-NN (:class:`KNNHead`). Conv layers are passed around as plain ``(kernel, bias)`` arrays
(:data:`Layer`) so that an optimiser without gradients can write them; :class:`PopulationFitness`
scores a whole population of one layer's kernels in one batched pass, and
:func:`fitness_per_individual` is the straightforward reference it must agree with.
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


# ------------------------------------------------------------------------------------------
# Genomes: one conv layer as one vector
# ------------------------------------------------------------------------------------------
def glorot_std(layer: Layer) -> float:
    """Standard deviation of a Glorot-uniform kernel of this layer's shape (the scale of steps)."""
    kh, kw, cin, cout = layer[0].shape
    return float(np.sqrt(2.0 / (kh * kw * (cin + cout))))


def flatten_layer(layer: Layer) -> np.ndarray:
    """One layer's kernel and bias as one genome vector (kernel first, C order)."""
    return np.concatenate([layer[0].ravel(), layer[1].ravel()]).astype(np.float64)


def unflatten_layer(genome: np.ndarray, shape: tuple[int, int, int, int]) -> Layer:
    """Inverse of :func:`flatten_layer` for a kernel of ``shape``."""
    n = int(np.prod(shape))
    genome = np.asarray(genome)
    if genome.shape != (n + shape[-1],):
        raise ValueError(f"genome of length {genome.shape}, expected {n + shape[-1]} for kernel {shape}")
    return genome[:n].reshape(shape).astype(np.float32), genome[n:].astype(np.float32)


# ------------------------------------------------------------------------------------------
# The fitness of conv kernels under a k-NN head: one candidate at a time (reference), or a whole
# population in one batched pass
# ------------------------------------------------------------------------------------------
def fitness_per_individual(
    conv: Sequence[Layer], layer_index: int, genome: np.ndarray, x_ref, y_ref, x_val, y_val, k: int = 9,
    model: keras.Model | None = None,
) -> float:
    """The straightforward fitness of one candidate: set its kernels into a Keras model, predict
    the features, fit scikit-learn's k-NN on the reference images and score it on the others."""
    from sklearn.neighbors import KNeighborsClassifier

    exact_float32()
    conv = list(conv)
    conv[layer_index] = unflatten_layer(genome, conv[layer_index][0].shape)
    if model is None:
        model = sliced_model(conv, x_ref.shape[1:])
    else:
        set_conv_weights(model, conv)
    f_ref = model.predict(x_ref, batch_size=256, verbose=0)
    f_val = model.predict(x_val, batch_size=256, verbose=0)
    knn = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(f_ref, y_ref)
    return float(knn.score(f_val, y_val))


class PopulationFitness:
    """k-NN accuracy of many candidates for one conv layer, in one batched TF pass per chunk.

    ``conv``: the current layers (the others stay fixed); ``layer_index``: the layer optimised.
    Reference images ``x_ref (n, 28, 28, 1)`` with labels, validation images ``x_val`` with labels:
    the fitness is the accuracy of the k-NN (reference set = ``x_ref``'s features) on ``x_val``.
    Calling it with genomes ``(P, D)`` (``D`` = the layer's kernel + bias size) returns ``(P,)``
    accuracies. TensorFloat-32 is turned off (:func:`exact_float32`). ``pop_chunk`` candidates go through the network together (the last chunk is
    padded, so a single graph serves every call), ``image_batch`` images at a time.
    The layers before the optimised one are applied once, here, and cached.
    """

    def __init__(self, conv: Sequence[Layer], layer_index: int, x_ref, y_ref, x_val, y_val, k: int = 9,
                 pop_chunk: int = 8, image_batch: int = 500, dtype: str = "float32"):
        import tensorflow as tf

        exact_float32()  # TF32 on a GPU would move the distances, so the fitness
        self.conv = [(np.asarray(a, np.float32), np.asarray(b, np.float32)) for a, b in conv]
        self.layer_index, self.k, self.pop_chunk, self.image_batch = layer_index, int(k), int(pop_chunk), int(image_batch)
        self.shape = self.conv[layer_index][0].shape
        self.dim = int(np.prod(self.shape) + self.shape[-1])
        self.dtype = dtype
        self.n_ref = len(x_ref)
        self.classes_, codes = np.unique(np.concatenate([np.asarray(y_ref), np.asarray(y_val)]), return_inverse=True)
        self._codes_ref = tf.constant(codes[: self.n_ref].astype(np.int32))
        self._codes_val = tf.constant(codes[self.n_ref :].astype(np.int32))
        x = np.concatenate([x_ref, x_val]).astype(np.float32)
        # the fixed prefix (layers before the optimised one), computed once
        h = tf.constant(x)
        for kern, bias in self.conv[:layer_index]:
            h = tf.nn.relu(tf.nn.conv2d(h, kern, 1, "VALID") + bias)
        self._inputs = h
        self._suffix = [(tf.constant(a), tf.constant(b)) for a, b in self.conv[layer_index + 1 :]]
        self._features = tf.function(self._features_fn, reduce_retracing=True)
        self._vote = tf.function(self._vote_fn, reduce_retracing=True)
        self.evaluations = 0

    def decode(self, genome) -> Layer:
        return unflatten_layer(np.asarray(genome), self.shape)

    def _features_fn(self, h, kernels, biases):
        """``h (n, H, W, cin)``, kernels ``(P, kh, kw, cin, cout)`` -> features ``(P, n, F)``."""
        import tensorflow as tf

        P = tf.shape(kernels)[0]
        kh, kw, cin, cout = self.shape
        stacked = tf.reshape(tf.transpose(kernels, [1, 2, 3, 0, 4]), [kh, kw, cin, -1])  # one conv, P*cout maps
        y = tf.nn.relu(tf.nn.conv2d(h, stacked, 1, "VALID") + tf.reshape(biases, [-1]))
        n, H, W = tf.shape(y)[0], tf.shape(y)[1], tf.shape(y)[2]
        y = tf.reshape(y, [n, H, W, P, cout])
        y = tf.reshape(tf.transpose(y, [3, 0, 1, 2, 4]), [P * n, H, W, cout])  # population -> batch
        for kern, bias in self._suffix:
            y = tf.nn.relu(tf.nn.conv2d(y, kern, 1, "VALID") + bias)
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")
        return tf.reshape(y, [P, n, -1])

    def _vote_fn(self, feats):
        import tensorflow as tf

        feats = tf.cast(feats, self.dtype)
        ref, val = feats[:, : self.n_ref], feats[:, self.n_ref :]
        ref_sq = tf.reduce_sum(tf.square(ref), axis=-1)
        pred = _knn_vote(val, ref, ref_sq, self._codes_ref, self.k, len(self.classes_))
        return tf.reduce_mean(tf.cast(tf.equal(pred, self._codes_val[None, :]), tf.float64), axis=-1)

    def __call__(self, genomes) -> np.ndarray:
        import tensorflow as tf

        genomes = np.atleast_2d(np.asarray(genomes, np.float32))
        if genomes.shape[1] != self.dim:
            raise ValueError(f"genomes of length {genomes.shape[1]}, expected {self.dim}")
        n_kern = self.dim - self.shape[-1]
        out = []
        for s in range(0, len(genomes), self.pop_chunk):
            g = genomes[s : s + self.pop_chunk]
            real = len(g)
            if real < self.pop_chunk:  # pad: one traced graph for every chunk
                g = np.concatenate([g, np.repeat(g[-1:], self.pop_chunk - real, axis=0)])
            kernels = tf.constant(g[:, :n_kern].reshape(len(g), *self.shape))
            biases = tf.constant(g[:, n_kern:])
            feats = tf.concat(
                [self._features(self._inputs[i : i + self.image_batch], kernels, biases)
                 for i in range(0, int(self._inputs.shape[0]), self.image_batch)], axis=1)
            out.append(self._vote(feats).numpy()[:real])
        self.evaluations += len(genomes)
        return np.concatenate(out)
