"""Paper 3's settings: the defaults are the paper's (Table I and its discussion), a profile is a
short diff from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...config import DROPOUT, Common, OneOf, ParameterError, Range, not_a_key

ARCHS = ("vgg16", "googlenet", "resnet18")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Config(Common):
    """Table I's grid: every model x optimiser x learning rate, 10 epochs at batch 32 on all of
    MNIST resized to 224 px (PyTorch on a Colab GPU in the paper)."""

    mnist_train: int = 60000                 # training images (a stratified subset when fewer)
    mnist_test: int = 10000                  # test images, also the per-epoch validation set
    image_size: int = 224                    # px the digits are resized to inside the model
    epochs: int = 10
    vgg16_epochs: int | None = None          # VGG-16's epochs when they differ (it is 5x slower on a CPU)
    batch_size: int = 32
    models: tuple[str, ...] = ARCHS
    optimizers: tuple[str, ...] = OPTIMIZERS
    learning_rates: tuple[float, ...] = (0.001, 0.01)
    momentum: float = 0.0                    # the paper's "further work" proposes adding momentum: none here
    aux_logits: bool = True                  # GoogLeNet's two auxiliary classifiers (loss weight 0.3) in training
    googlenet_batch_norm: bool = True        # batch norm after every GoogLeNet convolution, as torchvision's
    mixed_precision: str = "auto"            # "auto": mixed_float16 on a GPU only
    jit_compile: str = "auto"                # XLA; "auto": on a GPU only
    steps_per_execution: int = not_a_key(125)     # speed only: training steps per compiled call
    count_params_at_224: bool = not_a_key(True)   # also build each model at 224 px to count its weights

    def check(self) -> None:
        if self.batch_size > self.mnist_train:
            raise ParameterError(f"parameter 'batch_size' ({self.batch_size}) must not exceed "
                                 f"'mnist_train' ({self.mnist_train})")

    def epochs_of(self, arch: str) -> int:
        """Epochs of ``arch``'s runs: ``epochs``, or ``vgg16_epochs`` for VGG-16 when it is set."""
        return self.vgg16_epochs if arch == "vgg16" and self.vgg16_epochs is not None else self.epochs

    def one_run(self, arch: str, optimizer: str, learning_rate: float) -> Config:
        """The config of one cell of Table I: the grid narrowed to that cell and its epochs made
        explicit, so the cell's run unit depends on exactly the settings that change its numbers
        (adding a model to ``models`` recomputes no other run)."""
        return dataclasses.replace(self, models=(arch,), optimizers=(optimizer,),
                                   learning_rates=(float(learning_rate),), epochs=self.epochs_of(arch),
                                   vgg16_epochs=None)


PROFILES: dict[str, dict] = {
    "paper": {},  # the paper's scale: a GPU (about 630 CPU hours at 224 px)
    # All 12 runs on a small MNIST subset at 32 px (the smallest size the three networks take) in
    # minutes on a 2-core CPU: GoogLeNet and ResNet-18 get 141 steps (enough to pass 90 % test
    # accuracy), VGG-16 (5x slower per image on a CPU) 47 and may stay at chance.
    "smoke": dict(mnist_train=1500, mnist_test=300, image_size=32, epochs=3, vgg16_epochs=1,
                  steps_per_execution=1),
    # All 60k/10k images and all 12 runs at 32 px (NOT the paper's 224 px), 2 epochs, the fewest
    # the issue allows, in budget slices. Re-measured on the idle 2-core CPU (2026-12-02,
    # benchmarks/train_throughput.py --sizes 32 --steps 20): VGG-16 15.6 img/s, GoogLeNet 195; the
    # running VGG-16 unit itself did 21 img/s. The earlier 75 / 301 / 301 (10 timed steps) were too
    # high. ResNet-18's units train at 38 img/s (SGD 0.01, its second epoch on the idle CPU; the
    # benchmark side by side on a shared CPU: 0.47 x GoogLeNet's rate), GoogLeNet's at 129-177.
    # So one epoch of the 4 runs of each model is about
    #   4 x (60000/18 + 60000/150 + 60000/38) s = 4 x (3,333 + 400 + 1,579) s = 5.9 h,
    # and 2 epochs about 12 CPU hours, VGG-16 7.4 and ResNet-18 3.5 of them: several sessions' slices.
    "cpu32": dict(image_size=32, epochs=2, steps_per_execution=1),
}

RULES = {
    "mnist_train": Range(10, 60000), "mnist_test": Range(10, 10000),  # MNIST has 60k/10k images
    "image_size": Range(32, None),  # the three networks downsample by 32
    "vgg16_epochs": Range(1, None),
    "learning_rates": Range(0.0, 1.0, lo_open=True), "momentum": DROPOUT,
    "models": OneOf(ARCHS), "optimizers": OneOf(OPTIMIZERS),
    "mixed_precision": OneOf(("auto", "on", "off")), "jit_compile": OneOf(("auto", "on", "off")),
}
