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


# ---- Paper 5: MobileNet and ResNet50 transfer learning on Linnaeus 5 -------------------------
P5_CLASSES = ["berry", "bird", "dog", "flower", "other"]

P5_TABLE7 = pd.DataFrame(
    {
        "train accuracy": [0.9806, 0.9829, 0.9796, 0.9804, 0.9760, 0.9799],
        "val accuracy": [0.9617, 0.9617, 0.9675, 0.9633, 0.9633, 0.9635],
        "train loss": [0.0762, 0.0675, 0.0809, 0.0714, 0.0865, 0.0765],
        "val loss": [0.1183, 0.1249, 0.1126, 0.1127, 0.1178, 0.1173],
    },
    index=pd.Index(["1", "2", "3", "4", "5", "AVG"], name="k"),
)
"""Table 7: MobileNet, lr 1e-4, best epoch of each CV fold."""

P5_TABLE8 = pd.DataFrame(
    {
        "train accuracy": [0.9635, 0.9678, 0.9799, 0.9528, 0.9449],
        "val accuracy": [0.9502, 0.9528, 0.9635, 0.9599, 0.9460],
        "test accuracy": [0.9465, 0.9562, 0.9670, 0.9602, 0.9545],
        "train loss": [0.0903, 0.0817, 0.0765, 0.1397, 0.1488],
        "val loss": [0.1263, 0.1286, 0.1173, 0.1328, 0.1437],
        "test loss": [0.1335, 0.1275, 0.1150, 0.1294, 0.1349],
    },
    index=pd.Index([1e-2, 1e-3, 1e-4, 1e-5, 1e-6], name="lr"),
)
"""Table 8: MobileNet CV averages per learning rate, and test after retraining."""

P5_TABLE9 = pd.DataFrame(
    {"TP": [383, 391, 395, 384, 381], "TN": [1577, 1596, 1596, 1586, 1579],
     "FP": [23, 4, 4, 14, 21], "FN": [17, 9, 5, 16, 19]},
    index=pd.Index(P5_CLASSES, name="class"),
)
"""Table 9: MobileNet test-set TP/TN/FP/FN (2,000 test images)."""

P5_TABLE10 = pd.DataFrame(
    {"precision": [0.94, 0.99, 0.99, 0.96, 0.95], "recall": [0.96, 0.98, 0.99, 0.96, 0.95],
     "specificity": [0.98, 0.99, 0.99, 0.99, 0.98], "accuracy": [0.98, 0.99, 0.99, 0.98, 0.98],
     "F1": [0.95, 0.98, 0.99, 0.96, 0.95]},
    index=pd.Index(P5_CLASSES, name="class"),
)
"""Table 10 (= Table 15, MobileNet): per-class test metrics."""

P5_TABLE11 = pd.DataFrame(
    {
        "train accuracy": [0.9925, 0.9925, 0.9946, 0.9954, 0.9925],
        "val accuracy": [0.9758, 0.9742, 0.9717, 0.9633, 0.9650],
        "train loss": [0.3579, 0.3576, 0.3488, 0.3591, 0.3749],
        "val loss": [0.3281, 0.3505, 0.3563, 0.3684, 0.3512],
    },
    index=pd.Index(["1", "2", "3", "4", "5"], name="k"),
)
"""Table 11: ResNet50 (best head), CV folds."""

P5_TABLE12 = pd.DataFrame(
    {"precision": [0.96, 0.99, 1.00, 0.97, 0.96], "recall": [0.98, 0.99, 1.00, 0.97, 0.95],
     "specificity": [0.99, 1.00, 1.00, 0.99, 0.99], "accuracy": [0.99, 0.99, 1.00, 0.99, 0.98],
     "F1": [0.97, 0.99, 1.00, 0.97, 0.95]},
    index=pd.Index(P5_CLASSES, name="class"),
)
"""Table 12 (= Table 15, ResNet50): per-class test metrics."""

P5_TABLE13 = pd.DataFrame(
    {"TP": [390, 394, 398, 386, 379], "TN": [1582, 1594, 1598, 1589, 1584],
     "FP": [18, 6, 2, 11, 16], "FN": [10, 6, 2, 14, 21]},
    index=pd.Index(P5_CLASSES, name="class"),
)
"""Table 13: ResNet50 test-set TP/TN/FP/FN."""

P5_TABLE14 = pd.DataFrame(
    {
        "test accuracy": [0.9670, 0.9735],
        "test loss": [0.1150, 0.4271],
        "step time (s)": [0.176, 2.0],
        "trainable params": [5125, 4207621],
        "non-trainable params": [3228864, 22532992],
    },
    index=pd.Index(["MobileNet", "ResNet50"], name="model"),
)
"""Table 14: the two final models (step time: 176 ms and 2 s per training step)."""


# ---- Paper 2: Tarasenko, Yakimov & Soloviev, CNN on bone X-rays ----------------------------
P2_TEST_ACCURACY = 0.7313
"""Section 4: "an accuracy of 73.13% on the test data" (MURA, MedPix, OmniMedicalSearch X-rays)."""

P2_BEST_EPOCH = 10
"""Figures 8-9: validation accuracy peaks and validation loss bottoms out at the tenth epoch."""

P2_EPOCH_LOG = pd.DataFrame(
    {
        "seconds": [148, 139, 142, 143, 144, 146, 147, 144, 148, 146, 146, 146, 147, 146, 145],
        "loss": [1.6839, 1.3321, 1.1922, 1.1047, 1.0282, 0.9746, 0.9281, 0.8862, 0.8496, 0.8242, 0.7889, 0.7630,
                 0.7261, 0.7107, 0.6936],
        "acc": [0.3842, 0.5198, 0.5769, 0.6096, 0.6382, 0.6555, 0.6721, 0.6856, 0.7018, 0.7096, 0.7216, 0.7312,
                0.7437, 0.7496, 0.7576],
        "val_loss": [1.3082, 1.1408, 1.0420, 0.9681, 0.9166, 0.9387, 0.8726, 0.9464, 0.8446, 0.7807, 0.7913, 0.8651,
                     0.8043, 0.8587, 0.7686],
        "val_acc": [0.5328, 0.6042, 0.6432, 0.6670, 0.6896, 0.6826, 0.7032, 0.6610, 0.7118, 0.7326, 0.7246, 0.6990,
                    0.7278, 0.7158, 0.7368],
    },
    index=pd.RangeIndex(1, 16, name="epoch"),
)
"""Fig. 7: the printed training log, epochs 1-15 of 25 (the rest is not printed). Its loss starts
at 1.68, above ln 2, so the log may come from a task with more than two classes."""

MURA_KAPPA_CNN_BASELINE = 0.386
"""Rajpurkar et al., MURA (2017): Cohen's kappa of a CNN trained from scratch, as quoted in the issue."""

MURA_DENSENET_AUROC = 0.929
"""Rajpurkar et al., MURA (2017): AUROC of the 169-layer DenseNet on MURA's test studies."""
