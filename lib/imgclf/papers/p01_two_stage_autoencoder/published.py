"""The paper's own numbers (typed in from the paper, ``shared/papers/1-two-stage-autoencoder-...``)."""

from __future__ import annotations

import pandas as pd

KINDS = ("Perceptron", "DNN", "DBN")

TABLE1 = pd.DataFrame(
    {"Perceptron": [0.7977, 0.8750], "DNN": [0.9285, 1.0000], "DBN": [0.9839, 1.0000]},
    index=pd.Index(["MNIST", "faces"], name="data set"),
)
"""Table 1: test accuracy of the three classifiers on the 64-d AE codes (the paper calls the faces
set "FERET")."""

TABLE2 = pd.DataFrame(
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
"""Table 2: test accuracy of classifiers trained on clean DAE codes, tested on DAE codes of images
with 0-50 % noise."""

TABLE3 = pd.DataFrame(
    {"CNN": [3, 150, 1, 69], "DNN": [66, 400, 0.2, 84]},
    index=pd.Index(["model size (MB)", "epochs", "epoch time (s)", "training time (s)"], name="parameter"),
)
"""Table 3: the spectra classifiers (real wheat densitograms, 50 sorts, Tesla K80)."""

CAE_PARAMETERS = 315
"""Section 3: the convolutional AE's parameter count."""
