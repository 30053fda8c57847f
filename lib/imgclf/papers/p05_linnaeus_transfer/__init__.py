"""Paper 5: MobileNet and ResNet50 transfer learning on Linnaeus 5 (5-fold CV, per-class metrics).

``config`` holds the paper's settings and the smoke diff, ``published`` the paper's tables,
``pipeline`` the steps in the paper's order.
"""

from . import config, pipeline, published

NOTEBOOK = "05_linnaeus_transfer"
TITLE = "MobileNet and ResNet50 transfer learning (Linnaeus 5)"

__all__ = ["NOTEBOOK", "TITLE", "config", "pipeline", "published"]
