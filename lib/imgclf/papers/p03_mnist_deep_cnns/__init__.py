"""Paper 3: VGG-16, GoogLeNet and ResNet-18 trained from scratch on MNIST with SGD or Adam
(M. Asif, *Deep Networks for Image Classification*).

``config``: the paper's settings and the profiles (``smoke``, ``cpu32``); ``published``: its Table I
and the figures its text quotes; ``pipeline``: device set-up, data, the twelve runs of Table I,
their labels and tables, in the paper's order.
"""

from . import config, pipeline, published

NOTEBOOK = "03_mnist_deep_cnns"

TITLE = "VGG-16, GoogLeNet and ResNet-18 on MNIST (Asif)"

DETERMINISTIC = None  # op determinism is decided by pipeline.setup from the device (off on a GPU)

__all__ = ["NOTEBOOK", "TITLE", "DETERMINISTIC", "config", "pipeline", "published"]
