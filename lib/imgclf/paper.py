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
