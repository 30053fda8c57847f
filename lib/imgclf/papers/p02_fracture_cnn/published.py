"""Paper 2's own numbers (typed in from ``shared/papers/2-fracture-cnn-tarasenko-yakimov-soloviev.md``),
and the outside references the notebook shows in their own labelled rows. Nothing here is computed."""

import pandas as pd

TEST_ACCURACY = 0.7313
"""Section 4: "an accuracy of 73.13% on the test data" (MURA, MedPix, OmniMedicalSearch X-rays)."""

BEST_EPOCH = 10
"""Figures 8-9: validation accuracy peaks and validation loss bottoms out at the tenth epoch."""

EPOCH_LOG = pd.DataFrame(
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

PAPER_LOG_START = {"loss": 1.6839, "acc": 0.3842}
"""The first epoch of the paper's printed log (Fig. 7): a loss above ln 2 = 0.693 and an accuracy
below 0.5, both worse than chance for two balanced classes: the log probably comes from a task with
more than two classes (or a different data set)."""

# -- outside references (not from the paper; each shown in its own labelled row) ------------
MURA_DENSENET_AUROC = 0.929
"""Rajpurkar et al., "MURA: Large Dataset for Abnormality Detection in Musculoskeletal Radiographs"
(2017): AUROC of their 169-layer DenseNet on MURA's test studies (per study, not per image)."""

REPO_KAPPA_CNN_SCRATCH = 0.386
"""Cohen's kappa of a CNN trained from scratch on MURA v1.1, from the README of the public repository
ilias-ant/x-ray-abnormality-detection (not from the MURA paper)."""

REPO_KAPPA_DENSENET_PRETRAINED = 0.629
"""Cohen's kappa of a pretrained DenseNet-169 on MURA v1.1, from the README of the public repository
ilias-ant/x-ray-abnormality-detection (not from the MURA paper)."""
