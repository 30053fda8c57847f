"""Paper 3's own numbers (typed in from ``shared/papers/3-mnist-vgg-googlenet-resnet-asif.md``)."""

import pandas as pd

TABLE1 = pd.DataFrame(
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

BEST = ("ResNet-18 with SGD, lr 0.001", 99.4)
"""The paper's best cell of Table I (test accuracy, %)."""

LOWEST = ("GoogLeNet, lr 0.01", 81.5)
"""The paper's lowest cell of Table I (test accuracy, %); it reports no run at chance."""

TRAIN_HOURS = pd.Series({"VGG-16": 4.0, "GoogLeNet": 1.5, "ResNet-18": 1.2}, name="paper (h)")
"""Approximate training times the paper's discussion quotes (the SGD runs, Colab GPU)."""

PARAMS_TEXT = pd.Series({"VGG-16": 15e6, "GoogLeNet": 10.8e6, "ResNet-18": 11e6}, name="paper text")
"""Parameter counts the paper's discussion quotes ("hyperparameters")."""

PARAMS_PUBLISHED = {"vgg16": 138_357_544, "googlenet": 6_998_552, "resnet18": 11_689_512}
"""Weights of the original ImageNet models (224 px, 1000 classes; GoogLeNet without its auxiliary
heads): the VGG and GoogLeNet papers, torchvision's ResNet-18. Not from paper 3."""

PAPER_SCALE = dict(mnist_train=60000, mnist_test=10000, image_size=224, epochs=10, batch_size=32)
"""The set-up behind Table I (the paper's section on training)."""
