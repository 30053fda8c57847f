"""Paper 1's settings: the defaults are the paper profile (the paper's data sizes, our choices where
it states none); ``smoke`` lists only what differs, for a 2-core CPU in minutes."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import FRACTION, POSITIVE, Common, File, Length, OneOf, Range


@dataclass(frozen=True)
class Config(Common):
    """Paper 1 (Ososkov & Goncharov): MNIST and faces through a tied AE, then three classifiers."""

    # seeds and splits: every Table 1/2 cell is a mean over these
    mnist_seeds: int = 3             # MNIST: training seeds (AE, classifiers)
    faces_splits: int = 5            # faces: random 7/3 splits per person
    variant_seeds: int = 1           # seeds/splits that also run the noise-model table and the range-trained DAE
    # data
    mnist_train: int = 60000         # MNIST training images used (stratified subset)
    mnist_test: int = 10000
    # the autoencoders (m-256-64-256-m, tied, Adam)
    ae_epochs: int = 20              # MNIST AE epochs (cap; early stopping on a validation part)
    faces_ae_epochs: int = 400       # faces: 280 images need many more passes
    ae_batch_size: int = 256
    faces_ae_batch_size: int = 16    # about 15 updates per epoch instead of 1-2
    ae_patience: int = 3             # AE early stopping (epochs), MNIST
    faces_ae_patience: int = 30
    ae_learning_rate: float = 1e-3
    lrelu_a_mnist: float = 10.0      # LReLU parameter a (slope 1/a below zero), per data set
    lrelu_a_faces: float = 5.0
    # the classifiers on the codes
    clf_epochs: int = 25             # MNIST classifier epochs (perceptron, DNN, DBN fine-tuning)
    faces_clf_epochs: int = 200
    clf_batch_size: int = 256
    clf_patience: int = 3            # MNIST classifiers: early stopping on 10 % of the training codes
    clf_learning_rate: float = 3e-3  # Adam, perceptron and DNN
    dbn_learning_rate: float = 1e-2  # Adam, DBN fine-tuning (sigmoid layers learn slower)
    perceptron_hidden: int = 100
    dnn_grid: tuple[tuple[int, int], ...] = ((100, 50), (300, 100), (500, 200))  # DNN widths searched
    dbn_grid: tuple[tuple[int, int], ...] = ((300, 100),)
    dbn_lr_grid: tuple[float, ...] = (1e-2, 3e-3)   # DBN fine-tuning learning rates searched
    rbm_epochs_grid: tuple[int, ...] = (10, 30)      # RBM pretraining epochs searched
    grid_epochs: int = 10            # epochs per grid-search fit, MNIST
    faces_grid_epochs: int = 100
    dbn_scaling_grid: tuple[str, ...] = ("minmax", "sigmoid")  # codes into [0, 1] for the RBMs (see code_scaler)
    rbm_epochs: int = 10
    rbm_learning_rate: float = 0.05
    # what limits the accuracy on the codes: code scaling x AE trained as above or to convergence (MNIST)
    ablation_seeds: int = 3          # MNIST seeds of the ablation (the first ones of mnist_seeds)
    converge_epochs: int = 200       # the converged AE's epoch cap (not reached: early stopping stops it)
    converge_patience: int = 5
    converge_min_delta: float = 1e-5  # validation-MSE gain per epoch below which an epoch does not count
    # Figure 1 and the bottleneck sweep
    fig1_train: int = 10000
    fig1_epochs: int = 10
    bottleneck_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    sweep_train: int = 10000
    sweep_epochs: int = 10
    # denoising (Table 2)
    dae_noise: float = 0.2           # noise fraction the DAE is trained on
    noise_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # test noise (Table 2)
    range_noise_max: float = 0.5     # the variant DAE draws each image's level from U[0, range_noise_max]
    sensitivity_levels: tuple[float, ...] = (0.1, 0.3, 0.5)  # noise-model table
    # spectra (section 3, Table 3, Figure 5)
    spectra_file: str | None = None  # .npz with x (n, length) and y (n,); None: SYNTHETIC densitograms
    spectra_classes: int = 50
    spectra_samples: int = 3225
    spectra_length: int = 4000
    cae_epochs: int = 30
    cnn_epochs: int = 150
    dnn_spectra_epochs: int = 400
    dnn_spectra_hidden: tuple[int, ...] = (512, 256)
    class_counts: tuple[int, ...] = (5, 10, 25, 50)  # Figure 5: numbers of sorts
    class_sweep_epochs: int = 20


PROFILES = {
    "paper": {},
    "smoke": dict(  # a 2-core CPU in minutes: 2000/500 MNIST images, 2 seeds and 2 splits, few epochs
        mnist_seeds=2, faces_splits=2, mnist_train=2000, mnist_test=500,
        ae_epochs=8, faces_ae_epochs=40, ae_batch_size=64, faces_ae_patience=15,
        clf_epochs=15, faces_clf_epochs=100, clf_batch_size=64, dnn_grid=((64, 32), (300, 100)),
        dbn_lr_grid=(1e-2,), rbm_epochs_grid=(3,), ablation_seeds=2, converge_epochs=60, grid_epochs=5, faces_grid_epochs=40, rbm_epochs=3,
        fig1_train=1000, fig1_epochs=4, bottleneck_sizes=(16, 64), sweep_train=1000, sweep_epochs=4,
        spectra_classes=10, spectra_samples=400, spectra_length=1000, cae_epochs=5, cnn_epochs=10,
        dnn_spectra_epochs=10, dnn_spectra_hidden=(256, 128), class_counts=(5, 10), class_sweep_epochs=5,
    ),
}

RULES = {
    "ae_learning_rate": POSITIVE, "clf_learning_rate": POSITIVE, "dbn_learning_rate": POSITIVE,
    "rbm_learning_rate": POSITIVE, "lrelu_a_mnist": POSITIVE, "lrelu_a_faces": POSITIVE,
    "dae_noise": FRACTION, "noise_levels": FRACTION, "range_noise_max": FRACTION, "sensitivity_levels": FRACTION,
    "dnn_grid": Length(2, "two hidden widths"), "dbn_grid": Length(2, "two hidden widths"),
    "mnist_seeds": Range(1, None), "faces_splits": Range(1, None), "variant_seeds": Range(0, None),
    "dbn_lr_grid": POSITIVE, "spectra_file": File(), "dbn_scaling_grid": OneOf(("minmax", "sigmoid")),
    "ablation_seeds": Range(1, None), "converge_min_delta": Range(0.0, None),
}
