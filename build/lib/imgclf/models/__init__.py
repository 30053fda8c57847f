"""Model builders: functional Keras models with their shapes in the docstrings.

``autoencoders`` (tied dense and 1-D conv AEs), ``classifiers`` (perceptron, DNN, RBM/DBN),
``cnns`` (small CNNs, VGG-16, GoogLeNet, ResNet-18, the MNIST CNN of paper 4), ``transfer``
(MobileNet and ResNet50 heads), ``knn`` (the k-NN head and the sliced CNN). Two helpers that
every paper uses live here: :func:`param_counts` and :func:`saved_bytes`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np


def param_counts(model) -> tuple[int, int]:
    """``(trainable, non_trainable)`` parameter counts, as ``model.summary()`` prints them.

    The trainable count is PyTorch's ``parameters()`` count (no batch-norm statistics).
    """
    tr = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    nt = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return tr, nt


def saved_bytes(write: Callable[[str], None], suffix: str) -> int:
    """Bytes on disk of what ``write(path)`` writes to a temporary ``*<suffix>`` file, e.g.
    ``saved_bytes(model.save, ".keras")`` or ``saved_bytes(model.save_weights, ".weights.h5")``."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "file" + suffix)
        write(path)
        return os.path.getsize(path)
