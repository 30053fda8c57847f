"""A small model and a stand-in for a kill, shared by the resume and checkpoint tests."""

import keras
from imgclf import train


def small_model(width: int = 16) -> keras.Model:
    """``(batch, 20)`` -> dense ``width`` + dropout 0.3 -> softmax ``(batch, 2)``; seeded, compiled."""
    train.set_seed(3)
    inp = keras.Input((20,))
    h = keras.layers.Dropout(0.3)(keras.layers.Dense(width, activation="relu")(inp))
    m = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h))
    m.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class Kill(keras.callbacks.Callback):
    """Stands in for a kill in the middle of epoch ``at`` (after some of its batches)."""

    def __init__(self, at: int, batch: int = 3):
        super().__init__()
        self.at, self.batch = at, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.at and batch == self.batch:
            raise KeyboardInterrupt
