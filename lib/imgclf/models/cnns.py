"""Convolutional classifiers."""

from __future__ import annotations

import keras
from keras import layers


def build_spectra_cnn(input_shape: tuple[int, int], num_classes: int, filters: tuple[int, int] = (16, 32),
                      dense: int = 128) -> keras.Model:
    """1-D CNN over (compressed) densitograms.

    ``(batch, length, channels) -> Conv1D/ReLU/MaxPool x2 -> Dense(dense) -> softmax (batch, num_classes)``.
    """
    inputs = keras.Input(shape=input_shape)
    h = inputs
    for i, f in enumerate(filters):
        h = layers.Conv1D(f, 5, padding="same", activation="relu", name=f"conv{i}")(h)
        h = layers.MaxPooling1D(2, name=f"pool{i}")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(dense, activation="relu", name="dense")(h)
    h = layers.Dropout(0.3)(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="spectra_cnn")


def build_plain_cnn(input_shape: tuple[int, int, int], num_classes: int = 2, filters: tuple[int, ...] = (32, 64, 128),
                    dense: int = 128, dropout: float = 0.5, name: str = "plain_cnn") -> keras.Model:
    """The plain CNN of paper 2 (Tarasenko et al.): conv/ReLU/max-pool stacks, a dense head, softmax.

    ``(batch, h, w, c)`` uint8 or float pixels in 0..255 -> ``Rescaling(1/255)`` ->
    ``[Conv2D(f, 3, same, ReLU) -> MaxPool(2)]`` for each ``f`` in ``filters`` (the last conv layer
    is named ``last_conv`` for Grad-CAM) -> ``Flatten -> Dense(dense, ReLU) -> Dropout(dropout) ->
    Dense(num_classes, softmax)`` = ``(batch, num_classes)``. Each pooling halves the side, so
    ``h`` and ``w`` must be at least ``2 ** len(filters)``.
    """
    if min(input_shape[:2]) < 2 ** len(filters):
        raise ValueError(f"input {input_shape[:2]} is too small for {len(filters)} poolings (need >= {2 ** len(filters)})")
    inputs = keras.Input(shape=input_shape, name="image")
    h = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    for i, f in enumerate(filters):
        last = i == len(filters) - 1
        h = layers.Conv2D(f, 3, padding="same", activation="relu", name="last_conv" if last else f"conv{i}")(h)
        h = layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(dense, activation="relu", name="dense")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name=name)
