"""Paper 1's two-stage method: normalise -> autoencoder codes -> classifier.

The notebook calls these steps; each returns plain arrays, dicts and DataFrames.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

from . import train
from .models.autoencoders import build_dense_autoencoder
from .models.classifiers import CodeClassifier

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
    keras.utils.set_random_seed(seed)
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
    from .models.classifiers import build_dnn
    from .models.cnns import build_spectra_cnn

    tr, te = spectra["y_train"] < n_classes, spectra["y_test"] < n_classes
    y_tr, y_te = spectra["y_train"][tr], spectra["y_test"][te]
    inputs = {"CNN": (codes["train"][tr], codes["test"][te]),
              "DNN": (spectra["x_train"][tr, :, 0], spectra["x_test"][te, :, 0])}
    out = {}
    for name, (x_tr, x_te) in inputs.items():
        keras.utils.set_random_seed(seed)
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
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.keras")
        model.save(path)
        return os.path.getsize(path) / 1e6
