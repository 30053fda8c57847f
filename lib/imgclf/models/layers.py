"""Layers shared by the papers' models: training-time pixel noise and a fitted normaliser.

:class:`PixelNoise` corrupts raw pixels in [0, 1] with a fresh draw for every batch (a denoising
autoencoder's input); :class:`Normalize` applies paper 1's fitted normaliser (centre each row, then
scikit-learn's MinMax scaling) inside a model, so the noise can be drawn on raw pixels first.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

NOISE_KINDS = ("replace", "salt-and-pepper", "gaussian")
"""``replace``: a fraction of the pixels get U[0, 1] values; ``salt-and-pepper``: set to 0 or 1;
``gaussian``: N(0, level) added to every pixel, clipped to [0, 1]."""


class PixelNoise(keras.layers.Layer):
    """Training-time noise on raw pixels in [0, 1], a fresh draw for every batch (identity at inference).

    ``kind`` one of :data:`NOISE_KINDS`; ``level`` the fraction of pixels hit (or the Gaussian sd);
    with ``level_max`` each image draws its own level from U[0, level_max] (a DAE trained over a
    range of noise).
    """

    def __init__(self, kind: str = "replace", level: float = 0.2, level_max: float | None = None, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if kind not in NOISE_KINDS:
            raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
        self.kind, self.level, self.level_max = kind, float(level), level_max
        self.seed_generator = keras.random.SeedGenerator(seed)  # advances at every call: a new draw per batch

    def call(self, x, training=False):
        if not training:
            return x
        shape = ops.shape(x)
        if self.level_max is None:
            lv = self.level
        else:
            lv = keras.random.uniform((shape[0], 1), 0.0, self.level_max, seed=self.seed_generator)
        if self.kind == "gaussian":
            return ops.clip(x + lv * keras.random.normal(shape, seed=self.seed_generator), 0.0, 1.0)
        hit = keras.random.uniform(shape, seed=self.seed_generator) < lv
        if self.kind == "replace":
            values = keras.random.uniform(shape, seed=self.seed_generator)
        else:
            values = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < 0.5, x.dtype)
        return ops.where(hit, values, x)


class Normalize(keras.layers.Layer):
    """A fitted "centre each row, then MinMax-scale each feature" normaliser as a layer:
    ``(x - mean(x, row)) * scale + offset``, with ``scale``/``offset`` the ``scale_``/``min_`` of
    the fitted scikit-learn ``MinMaxScaler`` (frozen weights)."""

    def __init__(self, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self._scale, self._offset = np.asarray(scale, np.float32), np.asarray(offset, np.float32)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=self._scale.shape, initializer=keras.initializers.Constant(self._scale),
                                     trainable=False, name="scale")
        self.offset = self.add_weight(shape=self._offset.shape,
                                      initializer=keras.initializers.Constant(self._offset), trainable=False,
                                      name="offset")

    def call(self, x):
        return (x - ops.mean(x, axis=1, keepdims=True)) * self.scale + self.offset
