"""Paper 4: k-NN slicing (a CNN's dense head replaced by a k-NN) and conv kernels evolved by CMA-ES
and PSO. ``config`` (settings), ``published`` (the paper's numbers), ``pipeline`` (the steps)."""

from . import config, pipeline, published

NOTEBOOK = "04_knn_slicing_evolution"
TITLE = "k-NN slicing with CMA-ES and PSO (Radu)"

__all__ = ["NOTEBOOK", "TITLE", "config", "pipeline", "published"]
