"""Paper 1's two-stage method: normalise -> autoencoder codes -> classifier.

The notebook calls these steps; each returns plain arrays, dicts and DataFrames.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

from .. import config, train
from ..models import saved_bytes
from ..models.autoencoders import build_dense_autoencoder
from ..models.classifiers import CodeClassifier

KINDS = ("Perceptron", "DNN", "DBN")


def _center_rows(x):
    return x - x.mean(axis=1, keepdims=True)


def make_normalizer():
    """The paper's input normalisation: centre each sample (subtract its mean value), then
    MinMax-scale each feature to [0, 1] with the training set's range (a scikit-learn pipeline)."""
    return make_pipeline(FunctionTransformer(_center_rows), MinMaxScaler())


def train_autoencoder(
    x: np.ndarray,
    target: np.ndarray | None = None,
    hidden: Sequence[int] = (256, 64),
    a: float = 10.0,
    tied: bool = True,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    desc: str = "AE",
) -> tuple[keras.Model, keras.Model, dict]:
    """Fit a dense AE on ``x`` (normalised, ``(n, m)``) to reproduce ``target`` (default ``x``).

    ``optimizer`` is ``"adam"`` or ``"gd"`` (plain mini-batch gradient descent). Returns
    ``(autoencoder, encoder, history)`` with the history of :func:`imgclf.train.fit`.
    """
    train.set_seed(seed, deterministic=None)
    ae, enc = build_dense_autoencoder(x.shape[1], hidden, a=a, tied=tied)
    opt = keras.optimizers.Adam(learning_rate) if optimizer == "adam" else keras.optimizers.SGD(learning_rate)
    ae.compile(optimizer=opt, loss="mse")
    hist = train.fit(ae, x, x if target is None else target, epochs=epochs, batch_size=batch_size,
                     desc=desc, record_initial_loss=True)
    return ae, enc, hist


def encode(encoder: keras.Model, x: np.ndarray) -> np.ndarray:
    return encoder.predict(x, batch_size=1024, verbose=0)


def code_scaler(codes_train: np.ndarray):
    """MinMax scaler of the codes to [0, 1] (clipped), fitted on the training codes: one input
    space for all three classifiers, and the Bernoulli range the DBN's RBMs need."""
    return MinMaxScaler(clip=True).fit(codes_train)


def optimizer_comparison(x: np.ndarray, hidden=(256, 64), a=10.0, epochs=5, batch_size=64,
                         adam_lr=1e-3, gd_lr=0.05, seed=0) -> dict[str, dict]:
    """Figure 1: AE loss against wall-clock time for Tied/Uncoupled x GD/Adam (same data, seed)."""
    out = {}
    for tied in (True, False):
        for opt, lr in (("gd", gd_lr), ("adam", adam_lr)):
            label = f"{'Tied' if tied else 'Uncoupled'} {'Adam' if opt == 'adam' else 'GD'}"
            ae, _, hist = train_autoencoder(x, hidden=hidden, a=a, tied=tied, optimizer=opt, learning_rate=lr,
                                            epochs=epochs, batch_size=batch_size, seed=seed, desc=label)
            hist["params"] = ae.count_params()
            out[label] = hist
    return out


def bottleneck_sweep(x_train, y_train, x_test, y_test, sizes: Sequence[int], a=10.0, epochs=5, batch_size=64,
                     clf_epochs=10, seed=0) -> pd.DataFrame:
    """Accuracy of a DNN on the codes and AE training time against the code size (m-256-k-256-m)."""
    rows = []
    for k in sizes:
        _, enc, hist = train_autoencoder(x_train, hidden=(256, k), a=a, epochs=epochs, batch_size=batch_size,
                                         seed=seed, desc=f"AE code {k}")
        c_tr, c_te = encode(enc, x_train), encode(enc, x_test)
        sc = code_scaler(c_tr)
        clf = CodeClassifier("dnn", (300, 100), epochs=clf_epochs, seed=seed).fit(sc.transform(c_tr), y_train)
        acc = float(np.mean(clf.predict(sc.transform(c_te)) == y_test))
        rows.append({"code units": k, "accuracy": acc, "AE train time (s)": hist["seconds"],
                     "AE final loss": hist["loss"][-1]})
    return pd.DataFrame(rows).set_index("code units")


def select_hidden(kind: str, grid: Sequence[Sequence[int]], codes: np.ndarray, y: np.ndarray, epochs: int,
                  holdout: float | None = 0.2, seed: int = 0, **clf_kwargs) -> tuple[list[int], pd.DataFrame]:
    """The paper's grid-search CV for DNN/DBN widths.

    With ``holdout=0.2`` the training codes are split 80/20 and a 3-fold CV runs on the 20% part,
    as the paper describes; with ``holdout=None`` the 3-fold CV runs on all of ``codes`` (for the
    280-image faces set, whose 20% would leave about one image per person).
    Returns the best widths and the CV table.
    """
    if holdout:
        _, codes, _, y = train_test_split(codes, y, test_size=holdout, stratify=y, random_state=seed)
    est = CodeClassifier(kind, epochs=epochs, seed=seed, **clf_kwargs)
    search = train.grid_search(est, {"hidden": [list(g) for g in grid]}, codes, y, cv=3, seed=seed)
    table = pd.DataFrame(
        {"hidden": [str(p["hidden"]) for p in search.cv_results_["params"]],
         "mean CV accuracy": search.cv_results_["mean_test_score"],
         "std": search.cv_results_["std_test_score"]}
    ).set_index("hidden")
    return list(search.best_params_["hidden"]), table


def fit_classifiers(codes_train, y_train, hidden: dict, learning_rates: dict, epochs: int, batch_size: int,
                    seed: int = 0, rbm_epochs: int = 10, rbm_learning_rate: float = 0.05) -> dict[str, CodeClassifier]:
    """Fit the perceptron, the DNN and the DBN on (scaled) codes.

    ``hidden`` and ``learning_rates`` map each kind (``KINDS``) to its widths and Adam learning rate.
    """
    out = {}
    for kind in KINDS:
        with train.Stopwatch() as t:
            out[kind] = CodeClassifier(kind.lower(), hidden[kind], epochs=epochs, batch_size=batch_size, seed=seed,
                                       learning_rate=learning_rates[kind], rbm_epochs=rbm_epochs,
                                       rbm_learning_rate=rbm_learning_rate).fit(codes_train, y_train)
        out[kind].fit_seconds_ = t.seconds
    return out


def fit_spectra_classifiers(codes: dict, spectra: dict, n_classes: int, epochs: dict, dnn_hidden: Sequence[int],
                            seed: int = 0, patience: int = 20) -> dict[str, dict]:
    """Paper 1 section 3: a 1-D CNN on CAE codes and a DNN on raw spectra, on sorts ``0..n_classes-1``.

    ``codes`` holds ``train``/``test`` CAE codes ``(n, l, c)``; ``spectra`` holds ``x_train``,
    ``x_test`` ``(n, length, 1)`` and ``y_train``, ``y_test``. Each model is trained with Adam and
    early stopping (``patience``) on a stratified 1/8 validation split of the training lanes, for
    at most ``epochs[name]`` epochs. Returns ``{name: {model, hist, accuracy}}``.
    """
    from ..models.classifiers import build_dnn
    from ..models.cnns import build_spectra_cnn

    tr, te = spectra["y_train"] < n_classes, spectra["y_test"] < n_classes
    y_tr, y_te = spectra["y_train"][tr], spectra["y_test"][te]
    inputs = {"CNN": (codes["train"][tr], codes["test"][te]),
              "DNN": (spectra["x_train"][tr, :, 0], spectra["x_test"][te, :, 0])}
    out = {}
    for name, (x_tr, x_te) in inputs.items():
        train.set_seed(seed, deterministic=None)
        model = (build_spectra_cnn(x_tr.shape[1:], n_classes) if name == "CNN"
                 else build_dnn(x_tr.shape[1], n_classes, tuple(dnn_hidden)))
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        x_fit, x_val, y_fit, y_val = train_test_split(x_tr, y_tr, test_size=0.125, stratify=y_tr, random_state=seed)
        stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
        hist = train.fit(model, x_fit, y_fit, epochs=epochs[name], batch_size=32, validation_data=(x_val, y_val),
                         callbacks=[stop], desc=f"{name} {n_classes} classes")
        acc = float(np.mean(model.predict(x_te, verbose=0).argmax(1) == y_te))
        out[name] = dict(model=model, hist=hist, accuracy=acc)
    return out


def model_file_mb(model: keras.Model) -> float:
    """Size in MB (10^6 bytes) of the model saved in the native ``.keras`` format."""
    return saved_bytes(model.save, ".keras") / 1e6


# ------------------------------------------------------------------------------------------
# Profiles: "smoke" runs the notebook on a 2-core CPU in minutes, "paper" at the paper's scale
# ------------------------------------------------------------------------------------------
NOTEBOOK = "01_two_stage_autoencoder"

TITLE = "Two-stage classification (Ososkov & Goncharov)"

RULES = {
    "ae_learning_rate": config.POSITIVE, "clf_learning_rate": config.POSITIVE,
    "dbn_learning_rate": config.POSITIVE, "rbm_learning_rate": config.POSITIVE,
    "lrelu_a_mnist": config.POSITIVE, "lrelu_a_faces": config.POSITIVE,
    "dae_noise": config.FRACTION, "noise_levels": config.FRACTION,
    "dnn_grid": config.Length(2, "two hidden widths"), "dbn_grid": config.Length(2, "two hidden widths"),
}

EXTRA_PARAMETERS = {
    # name: (default, check); spectra_file: .npz with x (n, length) and y (n,); None: synthetic
    "spectra_file": (None, config.existing_file_or_none),
}

PROFILES: dict[str, dict] = {
        "smoke": dict(
            mnist_train=2000,
            mnist_test=500,
            ae_epochs=8,
            ae_batch_size=64,
            ae_learning_rate=1e-3,
            lrelu_a_mnist=10.0,
            lrelu_a_faces=5.0,
            faces_ae_epochs=60,
            clf_epochs=15,
            faces_clf_epochs=150,
            clf_batch_size=64,
            clf_learning_rate=3e-3,
            dbn_learning_rate=1e-2,
            perceptron_hidden=100,
            dnn_grid=[[64, 32], [300, 100]],
            dbn_grid=[[300, 100]],
            grid_epochs=5,
            faces_grid_epochs=60,
            rbm_epochs=3,
            rbm_learning_rate=0.05,
            fig1_train=1000,
            fig1_epochs=4,
            bottleneck_sizes=[16, 64],
            sweep_train=1000,
            sweep_epochs=4,
            dae_noise=0.2,
            noise_levels=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
            spectra_classes=10,
            spectra_samples=400,
            spectra_length=1000,
            cae_epochs=5,
            cnn_epochs=10,
            dnn_spectra_epochs=10,
            dnn_spectra_hidden=[256, 128],
            class_counts=[5, 10],
            class_sweep_epochs=5,
        ),
        "paper": dict(
            mnist_train=60000,
            mnist_test=10000,
            ae_epochs=20,
            ae_batch_size=256,
            ae_learning_rate=1e-3,
            lrelu_a_mnist=10.0,
            lrelu_a_faces=5.0,
            faces_ae_epochs=300,
            clf_epochs=30,
            faces_clf_epochs=300,
            clf_batch_size=128,
            clf_learning_rate=3e-3,
            dbn_learning_rate=1e-2,
            perceptron_hidden=100,
            dnn_grid=[[100, 50], [300, 100], [500, 200]],
            dbn_grid=[[100, 50], [300, 100], [500, 200]],
            grid_epochs=10,
            faces_grid_epochs=100,
            rbm_epochs=10,
            rbm_learning_rate=0.05,
            fig1_train=10000,
            fig1_epochs=10,
            bottleneck_sizes=[16, 32, 64, 128, 256],
            sweep_train=10000,
            sweep_epochs=10,
            dae_noise=0.2,
            noise_levels=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
            spectra_classes=50,
            spectra_samples=3225,
            spectra_length=4000,
            cae_epochs=30,
            cnn_epochs=150,
            dnn_spectra_epochs=400,
            dnn_spectra_hidden=[512, 256],
            class_counts=[5, 10, 20, 30, 40, 50],
            class_sweep_epochs=30,
        ),
    }


# ------------------------------------------------------------------------------------------
# The paper's published numbers (typed in from shared/papers/)
# ------------------------------------------------------------------------------------------
TABLE1 = pd.DataFrame(
    {"Perceptron": [0.7977, 0.8750], "DNN": [0.9285, 1.0000], "DBN": [0.9839, 1.0000]},
    index=pd.Index(["MNIST", "faces"], name="data set"),
)
"""Table 1: test accuracy on the 64-d AE codes (the paper calls the faces set "FERET")."""

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
"""Table 2: accuracy of classifiers trained on clean codes, tested on DAE codes of noisy images."""

TABLE3 = pd.DataFrame(
    {"CNN": [3, 150, 1, 69], "DNN": [66, 400, 0.2, 84]},
    index=pd.Index(["model size (MB)", "epochs", "epoch time (s)", "training time (s)"], name="parameter"),
)
"""Table 3: the spectra classifiers (real wheat data, 50 sorts, Tesla K80)."""
