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


# ---- Paper 3: Asif, VGG-16 / GoogLeNet / ResNet-18 on MNIST ---------------------------------
P3_TABLE1 = pd.DataFrame(
    [
        ("VGG-16", "VGG-16", 0.001, 99.1, "sgd"),
        ("VGG-16", "VGG-16", 0.01, 98.4, "sgd"),
        ("VGG-16", "VGG-16 with SGD", 0.001, 99.1, "sgd"),
        ("VGG-16", "VGG-16 with Adam", 0.001, 98.2, "adam"),
        ("GoogLeNet", "GoogLeNet", 0.001, 98.7, "sgd"),
        ("GoogLeNet", "GoogLeNet", 0.01, 81.5, "sgd"),
        ("GoogLeNet", "GoogLeNet with SGD", 0.001, 99.1, "sgd"),
        ("GoogLeNet", "GoogLeNet with Adam", 0.001, 99.0, "adam"),
        ("ResNet-18", "ResNet-18", 0.001, 99.2, "sgd"),
        ("ResNet-18", "ResNet-18", 0.01, 98.0, "sgd"),
        ("ResNet-18", "ResNet-18 with SGD", 0.001, 99.4, "sgd"),
        ("ResNet-18", "ResNet-18 with Adam", 0.001, 98.3, "adam"),
    ],
    columns=["model", "paper row", "learning rate", "accuracy (%)", "optimizer"],
)
"""Table I in the paper's order: test accuracy (%) after 10 epochs at batch 32 (PyTorch, Colab GPU).

``optimizer`` is *our* reading, not the paper's: the rows that name no optimiser ("vanilla" in
the paper's discussion) are mapped to plain SGD. The discussion introduces SGD (its Eq. 1) as the
training algorithm and Adam as the alternative, its "further work" proposes adding momentum (so
the SGD had none), and a vanilla row and the "with SGD" row at lr 0.001 then describe the same
configuration, which the paper reports twice (VGG-16 99.1/99.1, GoogLeNet 98.7/99.1, ResNet-18
99.2/99.4): we compare our one SGD run at 0.001 with both. Adam at 0.01 has no row in the paper.
"""

P3_TRAIN_HOURS = pd.Series({"VGG-16": 4.0, "GoogLeNet": 1.5, "ResNet-18": 1.2}, name="paper (h)")
"""Approximate training times the paper's discussion quotes (the SGD runs, Colab GPU)."""

P3_PARAMS_TEXT = pd.Series({"VGG-16": 15e6, "GoogLeNet": 10.8e6, "ResNet-18": 11e6}, name="paper text")
"""Parameter counts the paper's discussion quotes ("hyperparameters")."""


def p3_table1_vs_ours(ours: pd.DataFrame) -> pd.DataFrame:
    """Every row of the paper's Table I beside the run it maps to, then our runs it has no row for.

    ``ours`` has columns model, optimizer (``sgd``/``adam``), learning rate, accuracy (%) and
    status. Returns columns model, paper row, optimizer, learning rate, paper, ours,
    ours - paper, status (accuracies in %).
    """
    key = ["model", "optimizer", "learning rate"]
    ours = ours.assign(**{"learning rate": ours["learning rate"].astype(float).round(6)})
    table = P3_TABLE1.rename(columns={"accuracy (%)": "paper"})
    table = table.assign(**{"learning rate": table["learning rate"].round(6)})
    merged = table.merge(ours.rename(columns={"accuracy (%)": "ours"}), on=key, how="left")
    extra = ours.merge(table[key].drop_duplicates(), on=key, how="left", indicator=True)
    extra = extra[extra["_merge"] == "left_only"].drop(columns="_merge").rename(columns={"accuracy (%)": "ours"})
    extra.insert(1, "paper row", "(no row in the paper)")
    out = pd.concat([merged, extra], ignore_index=True)
    order = {**{m: i for i, m in enumerate(P3_TABLE1["model"].unique())}, "sgd": 0, "adam": 1}
    out = out.sort_values(key, key=lambda c: c.map(order) if c.name != "learning rate" else c, kind="stable")
    out["ours - paper"] = out["ours"] - out["paper"]
    cols = ["model", "paper row", "optimizer", "learning rate", "paper", "ours", "ours - paper", "status"]
    return out[cols].reset_index(drop=True)


def side_by_side(paper: pd.DataFrame, ours: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Long table ``(row, column) -> paper, ours, ours - paper`` over the cells both tables have."""
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    o = ours.stack(list(range(ours.columns.nlevels)), future_stack=True).rename("ours")
    df = pd.concat([p, o], axis=1, join="inner")
    df["ours - paper"] = df["ours"] - df["paper"]
    return df.round(digits)
