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
    # the issue allows. What it costs depends on the CPU kind far more than on the core count: its
    # own units trained (images/s, batch 32, 32 px, float32, op determinism on) on an idle 2-core
    # Intel Xeon at about 100 (VGG-16), 330 (GoogLeNet) and 430 (ResNet-18), about 2.6 hours for all 12;
    # on the 2-core AMD EPYC of earlier sessions at 21, 129-177 and 38, about 12 hours. A run longer
    # than its machine's time goes on elsewhere: ./run_all.sh bank / restore carry finished units.
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
