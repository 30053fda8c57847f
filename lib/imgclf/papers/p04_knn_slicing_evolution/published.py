"""The paper's own numbers (Radu, *Hybrid Deep Learning Topology for Image Classification*, slides)."""

from __future__ import annotations

import pandas as pd

TABLE1 = pd.DataFrame(
    {"parameters": [1_200_000, 122_000, 70_000, 44_600, 31_700],
     "inference engine size (KB)": [4.5 * 1024, 0.5 * 1024, 273, 174, 124]},
    index=pd.Index([128, 64, 32, 16, 8], name="units in 1st dense layer"),
)
"""Table 1: width of the first dense layer, trained parameters, saved model size (MB as KB)."""

TABLE2 = pd.DataFrame(
    {"4000/1000, 5 epochs": [97.5, 97, 97, 96.1, 87.5, 97.5, 97.3],
     "4000/1000, 20 epochs": [98, 97.5, 97.5, 97.4, 96.5, 97.5, 97.3],
     "60000/10000, 5 epochs": [99.91, 98.96, 98.98, 98.65, 97.8, 98.57, 98.52]},
    index=pd.Index(["CNN 128", "CNN 64", "CNN 32", "CNN 16", "CNN 8", "k-NN CMA-ES", "k-NN PSO"], name="model"),
)
"""Table 2: MNIST test accuracy (%), train/test images and backprop epochs; the CMA-ES/PSO rows are
the 18.8k conv parameters under a k = 9 k-NN head. Columns in the order of ``Config.table2_settings``."""

SLICED_SIZE_KB = 74
"""The k-NN sliced inference engine (kernels only, k = 9): the paper's "74 KB" (18,816 float32 =
73.5 KiB, so raw kernel bytes)."""
