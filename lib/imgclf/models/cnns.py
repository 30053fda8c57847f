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
