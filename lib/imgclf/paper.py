"""The papers' own numbers, typed in from ``shared/papers/``, and tables that put ours beside them."""

from __future__ import annotations

import pandas as pd

# ---- Paper 1: Ososkov & Goncharov, two-stage classification --------------------------------
P1_TABLE1 = pd.DataFrame(
    {"Perceptron": [0.7977, 0.8750], "DNN": [0.9285, 1.0000], "DBN": [0.9839, 1.0000]},
    index=pd.Index(["MNIST", "faces"], name="data set"),
)
"""Table 1: test accuracy on the 64-d AE codes (the paper calls the faces set "FERET")."""

P1_TABLE2 = pd.DataFrame(
    {
        ("faces", "Perceptron"): [0.9166, 0.9083, 0.9000, 0.8750, 0.8500, 0.8000],
        ("faces", "DNN"): [0.9867, 0.9867, 0.9750, 0.9583, 0.9667, 0.9583],
        ("faces", "DBN"): [1.0000, 0.9833, 0.9666, 0.9583, 0.9499, 0.9333],
        ("MNIST", "Perceptron"): [0.7449, 0.6901, 0.6115, 0.5001, 0.4100, 0.3036],
        ("MNIST", "DNN"): [0.9182, 0.8779, 0.7832, 0.6443, 0.5202, 0.3973],
        ("MNIST", "DBN"): [0.9861, 0.9644, 0.8794, 0.6027, 0.3863, 0.2283],
    },
    index=pd.Index([0, 10, 20, 30, 40, 50], name="noise %"),
)
"""Table 2: accuracy of classifiers trained on clean codes, tested on DAE codes of noisy images."""

P1_TABLE3 = pd.DataFrame(
    {"CNN": [3, 150, 1, 69], "DNN": [66, 400, 0.2, 84]},
    index=pd.Index(["model size (MB)", "epochs", "epoch time (s)", "training time (s)"], name="parameter"),
)
"""Table 3: the spectra classifiers (real wheat data, 50 sorts, Tesla K80)."""


def side_by_side(paper: pd.DataFrame, ours: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Long table ``(row, column) -> paper, ours, ours - paper`` over the cells both tables have."""
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    o = ours.stack(list(range(ours.columns.nlevels)), future_stack=True).rename("ours")
    df = pd.concat([p, o], axis=1, join="inner")
    df["ours - paper"] = df["ours"] - df["paper"]
    return df.round(digits)


# ---- Paper 4: Radu, k-NN slicing with CMA-ES and PSO ---------------------------------------
P4_TABLE1 = pd.DataFrame(
    {"parameters": [1_200_000, 122_000, 70_000, 44_600, 31_700],
     "inference engine size (KB)": [4.5 * 1024, 0.5 * 1024, 273, 174, 124]},
    index=pd.Index([128, 64, 32, 16, 8], name="units in 1st dense layer"),
)
"""Table 1: width of the first dense layer, trained parameters, saved model size (MB as KB)."""

P4_TABLE2 = pd.DataFrame(
    {"4000/1000, 5 epochs": [97.5, 97, 97, 96.1, 87.5, 97.5, 97.3],
     "4000/1000, 20 epochs": [98, 97.5, 97.5, 97.4, 96.5, 97.5, 97.3],
     "60000/10000, 5 epochs": [99.91, 98.96, 98.98, 98.65, 97.8, 98.57, 98.52]},
    index=pd.Index(["CNN 128", "CNN 64", "CNN 32", "CNN 16", "CNN 8", "k-NN CMA-ES", "k-NN PSO"], name="model"),
)
"""Table 2: test accuracy (%), train/test images and epochs; CMA-ES/PSO rows are the 18.8k conv
parameters under a k=9 k-NN head. Columns in the order of the notebook's ``table2_settings``."""

P4_SLICED_SIZE_KB = 74
"""The k-NN sliced inference engine (kernels only, k=9), paper's "74 KB"."""
