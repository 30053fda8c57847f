"""Paper 2's settings: the defaults are the paper's (or, where it is silent, our choice for its
scale); ``smoke`` is the short diff that runs on a 2-core CPU in minutes."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import DROPOUT, FRACTION, OPEN_FRACTION, POSITIVE, Common, ParameterError, Range, not_a_key


@dataclass(frozen=True)
class Config(Common):
    """Paper 2's settings. The paper gives 25 epochs and a small square input ("it is advisable to
    use a 28x28 pixel image" to start); the rest (stages, widths, optimiser, split shares) it leaves
    open, and these are our choices at its scale."""

    input_size: int = 64                         # px, square grayscale input
    epochs: int = 25                             # the paper's 25 epochs (plain CNN)
    batch_size: int = 32
    learning_rate: float = 1e-3                  # Adam
    filters: tuple[int, ...] = (32, 64, 128)     # one conv/ReLU/max-pool stage per entry
    dense: int = 128                             # width of the dense head
    dropout: float = 0.5
    folds: int = 5                               # grouped cross-validation: every duplicate group tested once
    val_size: float = 0.1                        # share for validation (best epoch by validation loss)
    dup_threshold: float = 0.98                  # thumbnail correlation at or above which two images are copies
    dup_max_angle: int = 45                      # rotations searched around each flip/rotation pose; 45 = any angle
    dup_angle_step: int = 5
    resnet_epochs: int = 30                      # the small residual CNN (our extra row)
    patience: int = 8                            # early stop after this many epochs without a lower val loss
    check_candidates: int = 10                   # independent duplicate check: candidates verified per test image
    gradcam_images: int = not_a_key(8)           # fractured test images shown with Grad-CAM (a figure only)
    misclassified_images: int = not_a_key(24)    # misclassified test images shown (a figure only)

    def check(self) -> None:
        # valid alone, not together: refuse before minutes of duplicate search and training
        if 1 / self.folds + self.val_size >= 1:  # each fold tests 1/folds of the images
            raise ParameterError(f"parameters 'folds' and 'val_size': the test share 1/folds plus 'val_size' must "
                                 f"be below 1 (nothing would be left to train on), got 1/{self.folds} + {self.val_size}")
        if self.input_size < 2 ** len(self.filters):  # each stage halves the side
            raise ParameterError(f"parameter 'input_size' ({self.input_size}) is too small for "
                                 f"{len(self.filters)} pooling stages of 'filters' (need >= {2 ** len(self.filters)})")


PROFILES = {
    "paper": {},
    # a 2-core CPU in minutes: 28 px (the paper's suggested start), fewer epochs, smaller nets, 3 folds
    "smoke": dict(input_size=28, epochs=8, batch_size=64, filters=(16, 32, 64), dense=64, folds=3,
                  resnet_epochs=8, patience=5, check_candidates=5, gradcam_images=6, misclassified_images=16),
}

RULES = {
    "learning_rate": POSITIVE, "dropout": DROPOUT,
    "folds": Range(2, 20), "val_size": OPEN_FRACTION, "dup_threshold": FRACTION,
    "input_size": Range(8, 256),         # the staged X-rays are at most 256 px: larger only upsamples
    "filters": Range(1, 1024), "dense": Range(1, 8192), "batch_size": Range(1, 4096),
    "epochs": Range(1, 1000), "resnet_epochs": Range(1, 1000),
    "dup_max_angle": Range(0, 45),       # the 8 poses are 90 degrees apart: 45 covers every angle
    "dup_angle_step": Range(1, 45), "patience": Range(1, None), "check_candidates": Range(1, 100),
    "gradcam_images": Range(1, 64), "misclassified_images": Range(1, 256),
}
