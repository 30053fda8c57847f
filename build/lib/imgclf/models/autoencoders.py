"""Autoencoders of paper 1: a tied-weight dense AE and a tied convolutional AE for spectra.

Tied weights: every decoder layer uses the *transpose* of its mirror encoder layer's kernel
(the very same variable, so gradients from both sides update it) and owns only its bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops


def lrelu(a: float) -> layers.LeakyReLU:
    """The paper's LReLU ``f(x) = x if x >= 0 else x / a`` (``a > 1``)."""
    if a <= 0:
        raise ValueError(f"LReLU parameter a must be positive, got {a!r}")
    return layers.LeakyReLU(negative_slope=1.0 / a)


class _Tied(layers.Layer):
    """A decoder layer that reads the kernel of the encoder layer ``tied_to`` at every call and
    owns only a bias of size ``tied_to.kernel.shape[bias_axis]``."""

    bias_axis = 0

    def __init__(self, tied_to: layers.Layer, activation=None, **kwargs):
        super().__init__(**kwargs)
        self._tied = [tied_to]  # a list is not tracked as a sub-layer: its kernel counts once
        self.activation = keras.activations.get(activation)

    @property
    def tied_to(self) -> layers.Layer:
        return self._tied[0]

    def build(self, input_shape):
        self.bias = self.add_weight(
            shape=(self.tied_to.kernel.shape[self.bias_axis],), initializer="zeros", name="bias"
        )


class DenseTranspose(_Tied):
    """Dense layer whose kernel is the transpose of ``tied_to``'s kernel.

    Input ``(batch, tied_to.units)`` -> output ``(batch, tied_to_input_dim)``. Only the bias
    is a weight of this layer; the kernel is read from ``tied_to`` at every call.
    """

    def call(self, x):
        return self.activation(ops.matmul(x, ops.transpose(self.tied_to.kernel)) + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.tied_to.kernel.shape[0])


def build_dense_autoencoder(
    input_dim: int,
    hidden: Sequence[int] = (256, 64),
    a: float = 10.0,
    tied: bool = True,
    name: str = "ae",
) -> tuple[keras.Model, keras.Model]:
    """The paper's m-256-64-256-m autoencoder with LReLU activations.

    Args:
        input_dim: m, the length of a flattened, normalised input.
        hidden: encoder widths, the last one is the code (bottleneck) size.
        a: the LReLU parameter (slope 1/a for x < 0).
        tied: decoder kernels are transposes of the encoder kernels.

    Returns:
        ``(autoencoder, encoder)``: ``(batch, m) -> (batch, m)`` with a linear output, and
        ``(batch, m) -> (batch, hidden[-1])`` sharing its layers.
    """
    inputs = keras.Input(shape=(input_dim,), name="x")
    h = inputs
    encoders: list[layers.Dense] = []
    for i, units in enumerate(hidden):
        dense = layers.Dense(units, name=f"enc{i}")
        encoders.append(dense)
        h = lrelu(a)(dense(h))
    code = h
    dims = [input_dim, *hidden[:-1]]
    for i, dense in reversed(list(enumerate(encoders))):
        last = i == 0
        if tied:
            h = DenseTranspose(dense, name=f"dec{i}")(h)
        else:
            h = layers.Dense(dims[i], name=f"dec{i}")(h)
        if not last:
            h = lrelu(a)(h)
    autoencoder = keras.Model(inputs, h, name=name)
    encoder = keras.Model(inputs, code, name=f"{name}_encoder")
    return autoencoder, encoder


class Conv1DTransposeTied(_Tied):
    """1-D transposed convolution that reuses ``tied_to``'s kernel (``(k, c_in, c_out)``).

    Input ``(batch, L, c_out)`` -> output ``(batch, L * stride, c_in)``: the adjoint of
    ``tied_to`` (same kernel, same stride, ``same`` padding) plus a bias of its own.
    """

    bias_axis = 1

    def call(self, x):
        y = ops.conv_transpose(
            x, self.tied_to.kernel, strides=self.tied_to.strides, padding="same"
        )
        return self.activation(y + self.bias)

    def compute_output_shape(self, input_shape):
        s = self.tied_to.strides[0]
        length = None if input_shape[1] is None else input_shape[1] * s
        return (input_shape[0], length, self.tied_to.kernel.shape[1])


def build_conv_autoencoder(
    length: int,
    filters: Sequence[int] = (8, 4),
    kernel_sizes: Sequence[int] = (9, 7),
    stride: int = 4,
    a: float = 10.0,
) -> tuple[keras.Model, keras.Model]:
    """Tied 1-D convolutional autoencoder for densitograms (about 315 parameters).

    ``(batch, length, 1) -> (batch, length, 1)``; the encoder maps to
    ``(batch, length / stride**len(filters), filters[-1])``. ``length`` must be divisible by
    ``stride ** len(filters)``. With the defaults: 80 + 228 encoder and 8 + 1 decoder-bias
    parameters = 317.
    """
    if length % stride ** len(filters):
        raise ValueError(f"length {length} must be divisible by {stride ** len(filters)}")
    inputs = keras.Input(shape=(length, 1), name="spectrum")
    h = inputs
    convs = []
    for i, (f, k) in enumerate(zip(filters, kernel_sizes)):
        conv = layers.Conv1D(f, k, strides=stride, padding="same", name=f"enc{i}")
        convs.append(conv)
        h = lrelu(a)(conv(h))
    code = h
    for i, conv in reversed(list(enumerate(convs))):
        h = Conv1DTransposeTied(conv, name=f"dec{i}")(h)
        if i:
            h = lrelu(a)(h)
    return keras.Model(inputs, h, name="cae"), keras.Model(inputs, code, name="cae_encoder")
