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
from keras import layers, ops

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
    fitness must agree exactly). On a CPU it has no effect; process-wide, as the backend has it."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def compiled(fn):
    """``fn`` (written in ``keras.ops``) compiled by the backend: ``tf.function`` on TensorFlow,
    ``jax.jit`` on JAX, as it is elsewhere."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


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
        exact_float32()
        features = np.asarray(features).reshape(len(features), -1)
        if len(features) < self.k:
            raise ValueError(f"k={self.k} but only {len(features)} reference samples")
        self.classes_, codes = np.unique(np.asarray(labels), return_inverse=True)
        self._ref = ops.convert_to_tensor(features, self.dtype)
        self._ref_sq = ops.sum(ops.square(self._ref), axis=1)
        self._codes = ops.convert_to_tensor(codes.astype(np.int32))
        return self

    def predict(self, features) -> np.ndarray:
        features = np.asarray(features).reshape(len(features), -1)
        out = []
        for i in range(0, len(features), self.batch):
            q = ops.convert_to_tensor(features[i : i + self.batch], self.dtype)
            vote = _knn_vote(q, self._ref, self._ref_sq, self._codes, self.k, len(self.classes_))
            out.append(ops.convert_to_numpy(vote))
        return self.classes_[np.concatenate(out)] if out else self.classes_[:0]

    def score(self, features, labels) -> float:
        return float(np.mean(self.predict(features) == np.asarray(labels)))


def _sq_distances(q, ref, ref_sq):
    """``|q|^2 - 2 q.r + |r|^2``: ``q (..., m, d)``, ``ref (..., n, d)`` -> ``(..., m, n)``."""
    # |q|^2 is the same for every reference point of a query, so it does not change the ranking;
    # it is kept so that the numbers are the true squared distances.
    d2 = ops.sum(ops.square(q), axis=-1)[..., :, None] - 2.0 * ops.matmul(q, ops.swapaxes(ref, -1, -2))
    return d2 + ref_sq[..., None, :]


def _knn_vote(q, ref, ref_sq, codes, k: int, n_classes: int):
    """Batched k-NN vote: ``q (..., m, d)``, ``ref (..., n, d)`` -> class codes ``(..., m)``."""
    _, idx = ops.top_k(-_sq_distances(q, ref, ref_sq), k=k, sorted=False)  # ties: the lower index first
    votes = ops.sum(ops.one_hot(ops.take(codes, idx), n_classes, dtype="int32"), axis=-2)
    return ops.cast(ops.argmax(votes, axis=-1), "int32")  # first maximum = lowest label


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


FITNESS_SCORES = ("accuracy", "soft-loo")
"""How :class:`PopulationFitness` scores a candidate's features:

- ``"accuracy"``: the k-NN's 0/1 accuracy on the scored images, the reference images as its set;
- ``"soft-loo"``: leave-one-out over *all* the fitness images (reference and scored): for each
  image, the share of its k nearest other images that carry its label, averaged. Every image is
  scored, and a candidate gains by moving a neighbour, not only by flipping a vote, so two
  candidates a little apart get different, repeatable scores (``benchmarks/knn_fitness_signal.py``).
"""


class PopulationFitness:
    """The k-NN fitness of many candidates for one conv layer, in one batched pass per chunk
    (``keras.ops``, compiled by the backend).

    ``conv``: the current layers (the others stay fixed); ``layer_index``: the layer optimised.
    Reference images ``x_ref (n, 28, 28, 1)`` with labels and scored images ``x_val`` with labels;
    ``score`` (:data:`FITNESS_SCORES`): the k-NN accuracy on ``x_val`` with ``x_ref`` as reference set,
    or the soft leave-one-out score over both. Calling it with genomes ``(P, D)`` (``D`` = the layer's
    kernel + bias size) returns ``(P,)`` scores in [0, 1]. The candidates' kernels are stacked along the
    output-channel axis of one convolution (the input is shared), the population is then folded into
    the batch axis for the fixed layers after it, and the k-NN is a batched matrix product followed
    by ``top_k``. TensorFloat-32 is turned off (:func:`exact_float32`). ``pop_chunk`` candidates go
    through the network together (the last chunk is padded, so one compiled graph serves every
    call), ``image_batch`` images at a time. The layers before the optimised one are applied once.
    """

    def __init__(self, conv: Sequence[Layer], layer_index: int, x_ref, y_ref, x_val, y_val, k: int = 9,
                 pop_chunk: int = 8, image_batch: int = 500, dtype: str = "float32", score: str = "accuracy"):
        if score not in FITNESS_SCORES:
            raise ValueError(f"score must be one of {FITNESS_SCORES}, got {score!r}")
        exact_float32()  # TF32 on a GPU would move the distances, so the fitness
        self.conv = [(np.asarray(a, np.float32), np.asarray(b, np.float32)) for a, b in conv]
        self.layer_index, self.k, self.pop_chunk, self.image_batch = layer_index, int(k), int(pop_chunk), int(image_batch)
        self.score = score
        self.shape = tuple(self.conv[layer_index][0].shape)
        self.dim = int(np.prod(self.shape) + self.shape[-1])
        self.dtype = dtype
        self.n_ref = len(x_ref)
        self.classes_, codes = np.unique(np.concatenate([np.asarray(y_ref), np.asarray(y_val)]), return_inverse=True)
        self._codes = ops.convert_to_tensor(codes.astype(np.int32))
        n = len(codes)
        if score == "soft-loo":
            self._eye = ops.convert_to_tensor(np.eye(n, dtype=bool))  # an image is not its own neighbour
        # the fixed prefix (layers before the optimised one), computed once
        h = ops.convert_to_tensor(np.concatenate([x_ref, x_val]).astype(np.float32))
        for kern, bias in self.conv[:layer_index]:
            h = ops.relu(ops.conv(h, kern, padding="valid") + bias)
        self._inputs = h
        self._suffix = [(ops.convert_to_tensor(a), ops.convert_to_tensor(b)) for a, b in self.conv[layer_index + 1 :]]
        self._features = compiled(self._features_fn)
        self._score = compiled(self._accuracy_fn if score == "accuracy" else self._soft_loo_fn)
        self.evaluations = 0

    def decode(self, genome) -> Layer:
        return unflatten_layer(np.asarray(genome), self.shape)

    def _features_fn(self, h, kernels, biases):
        """``h (n, H, W, cin)``, kernels ``(P, kh, kw, cin, cout)`` -> features ``(P, n, F)``."""
        P = self.pop_chunk
        kh, kw, cin, cout = self.shape
        stacked = ops.reshape(ops.transpose(kernels, (1, 2, 3, 0, 4)), (kh, kw, cin, P * cout))  # one conv
        y = ops.relu(ops.conv(h, stacked, padding="valid") + ops.reshape(biases, (-1,)))
        n, H, W = y.shape[0], y.shape[1], y.shape[2]
        y = ops.reshape(y, (n, H, W, P, cout))
        y = ops.reshape(ops.transpose(y, (3, 0, 1, 2, 4)), (P * n, H, W, cout))  # population -> batch
        for kern, bias in self._suffix:
            y = ops.relu(ops.conv(y, kern, padding="valid") + bias)
        y = ops.max_pool(y, 2, 2, padding="valid")
        return ops.reshape(y, (P, n, -1))

    def _accuracy_fn(self, feats):
        feats = ops.cast(feats, self.dtype)
        ref, val = feats[:, : self.n_ref], feats[:, self.n_ref :]
        ref_sq = ops.sum(ops.square(ref), axis=-1)
        pred = _knn_vote(val, ref, ref_sq, self._codes[: self.n_ref], self.k, len(self.classes_))
        return ops.mean(ops.cast(ops.equal(pred, self._codes[None, self.n_ref :]), "float64"), axis=-1)

    def _soft_loo_fn(self, feats):
        feats = ops.cast(feats, self.dtype)
        d2 = _sq_distances(feats, feats, ops.sum(ops.square(feats), axis=-1))
        d2 = ops.where(self._eye[None], ops.cast(np.inf, d2.dtype), d2)
        _, idx = ops.top_k(-d2, k=self.k, sorted=False)  # (P, n, k): each image's k nearest others
        same = ops.equal(ops.take(self._codes, idx), self._codes[None, :, None])
        return ops.mean(ops.cast(same, "float64"), axis=(1, 2))

    def __call__(self, genomes) -> np.ndarray:
        genomes = np.atleast_2d(np.asarray(genomes, np.float32))
        if genomes.shape[1] != self.dim:
            raise ValueError(f"genomes of length {genomes.shape[1]}, expected {self.dim}")
        n_kern = self.dim - self.shape[-1]
        n = int(self._inputs.shape[0])
        out = []
        for s in range(0, len(genomes), self.pop_chunk):
            g = genomes[s : s + self.pop_chunk]
            real = len(g)
            if real < self.pop_chunk:  # pad: one compiled graph for every chunk
                g = np.concatenate([g, np.repeat(g[-1:], self.pop_chunk - real, axis=0)])
            kernels = ops.convert_to_tensor(g[:, :n_kern].reshape(len(g), *self.shape))
            biases = ops.convert_to_tensor(g[:, n_kern:])
            feats = ops.concatenate([self._features(self._inputs[i : i + self.image_batch], kernels, biases)
                                     for i in range(0, n, self.image_batch)], axis=1)
            out.append(ops.convert_to_numpy(self._score(feats))[:real])
        self.evaluations += len(genomes)
        return np.concatenate(out)
