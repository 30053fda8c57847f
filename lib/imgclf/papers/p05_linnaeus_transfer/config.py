"""Paper 5's settings: the defaults are the paper's (sections "MobileNet" and "ResNet50", Tables 2-8,
11); ``PROFILES["smoke"]`` is the diff that runs on a 2-core CPU in minutes."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import DROPOUT, POSITIVE, Common, File, OneOf, Range, not_a_key

WEIGHTS_WORDS = ("imagenet", "random")
"""Weights that are not a file: Keras' ImageNet download (or its cache), or random initialisation."""


@dataclass(frozen=True)
class Config(Common):
    """Paper 5's protocol; every default is the paper's setting unless its comment says otherwise."""

    dataset: str = "flowers"            # "linnaeus5" is the paper's; it cannot be obtained offline
    linnaeus_resolution: int | None = None  # 256, 128, 64 or 32 (folder "Linnaeus 5 <N>X<N>"); None: largest present
    mobilenet_weights: str = "imagenet"  # "imagenet", "random" or a weights file of the no-top model
    resnet_weights: str = "imagenet"
    # Without the ImageNet weights: "supervised" pretrains the base ourselves, supervised, on the
    # training-split images the subset leaves out (never a CV or test image), saves it as a weights
    # file and uses that file as a user's ImageNet file is used; "none" trains whole networks from
    # random initialisation instead. Not the paper's (it has ImageNet).
    pretrain_base: str = "none"
    pretrain_images: int = 1_000_000    # at most this many held-out training images for it
    pretrain_epochs: int = 30
    pretrain_lr: float = 1e-3           # Adam, cosine decay to 0 over the pretraining
    n_train: int = 1_000_000            # images per split (stratified subset); more than there are: all
    n_test: int = 1_000_000
    mobilenet_size: int = 224           # input size of a pretrained (frozen) base: the paper's
    resnet_size: int = 256
    scratch_mobilenet_size: int = 128   # input size when the whole network trains from random weights (ours)
    scratch_resnet_size: int = 128
    folds: int = 5
    epochs: int = 20                    # MobileNet epochs per fold and for the final models
    learning_rates: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)  # MobileNet: Adam lr compared in CV
    batch_size: int = 32                # not stated in the paper: Keras' default
    resnet_epochs: int = 20
    resnet_lrs: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6)  # ResNet50: lr stages, equal shares of resnet_epochs
    resnet_heads: tuple[str, ...] = ("1024-1024", "256", "linear")  # the paper's head first; the others are ours
    resnet_dropout: float = 0.05
    step_time_batch: int = not_a_key(32)  # batch of the paper-configuration step timing (the paper's 32)
    step_time_steps: int = not_a_key(5)


PROFILES = {
    "paper": {},
    # a 2-core CPU in minutes: 250/150 images, 2 folds of 2 epochs, small inputs for from-scratch networks
    "smoke": dict(n_train=250, n_test=150, scratch_mobilenet_size=64, scratch_resnet_size=32, folds=2, epochs=2,
                  resnet_epochs=2, step_time_steps=2,
                  # no ImageNet here: a MobileNet base of our own, pretrained on 1,500 held-out training images
                  # at 32 px (what this 2-core CPU trains in minutes); a ResNet50 base would take hours here,
                  # so ResNet50 trains from random weights (labelled as such), with the paper's head only
                  pretrain_base="supervised", pretrain_images=1500, pretrain_epochs=6, mobilenet_size=32,
                  pretrain_lr=1e-2,  # measured: at 1e-3 a few epochs leave the base at chance on held-back images
                  resnet_weights="random", resnet_heads=("1024-1024",)),
}

RULES = {
    "dataset": OneOf(("flowers", "linnaeus5")),
    "linnaeus_resolution": OneOf((None, 256, 128, 64, 32)),
    "mobilenet_weights": File(allowed=WEIGHTS_WORDS),
    "resnet_weights": File(allowed=WEIGHTS_WORDS),
    "learning_rates": POSITIVE,
    "resnet_lrs": POSITIVE,
    "resnet_dropout": DROPOUT,
    "folds": Range(2, None),
    "pretrain_base": OneOf(("none", "supervised")),
    "pretrain_lr": POSITIVE,
    "pretrain_images": Range(50, None),
    "scratch_mobilenet_size": Range(32, None),
    "scratch_resnet_size": Range(32, None),
    "mobilenet_size": Range(32, None),
    "resnet_size": Range(32, None),
}
