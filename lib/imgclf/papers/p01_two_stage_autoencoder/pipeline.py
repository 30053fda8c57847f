"""Paper 1's steps in the paper's order: normalise -> autoencoder codes -> three classifiers
(Table 1) -> denoising (Table 2) -> spectra (Table 3, Figure 5).

Functions whose first argument is ``cfg`` are run units: the notebook calls them through
``report.runs.cached(fn, cfg=cfg, ...)`` (stored, reused while neither the call nor the code
changes). Arrays a unit keeps (codes) are saved in its folder and read back with
:func:`cached_with_arrays`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

from ... import runs as _runs
from ... import stats, train
from ...models import saved_bytes
from ...models.autoencoders import build_dense_autoencoder
from ...models.classifiers import CodeClassifier
from ...models.layers import NOISE_KINDS, Normalize, PixelNoise
from .config import Config
from .published import KINDS

DATA_SETS = ("MNIST", "faces")


# ------------------------------------------------------------------------------------------
# 0. Data: normalisation (paper section 2.1), splits, per-data-set settings
# ------------------------------------------------------------------------------------------
def _center_rows(x):
    return x - x.mean(axis=1, keepdims=True)


def make_normalizer():
    """The paper's input normalisation: centre each sample (subtract its mean value), then
    MinMax-scale each feature to [0, 1] with the training set's range (a scikit-learn pipeline)."""
    return make_pipeline(FunctionTransformer(_center_rows), MinMaxScaler())


def settings(cfg: Config, data: str) -> dict:
    """The settings of one data set: MNIST and faces differ in LReLU ``a``, epochs, batch size and
    patience; faces (280 images) repeat their training set 8 times per Keras epoch."""
    mnist = data == "MNIST"
    return dict(
        a=cfg.lrelu_a_mnist if mnist else cfg.lrelu_a_faces,
        ae_epochs=cfg.ae_epochs if mnist else cfg.faces_ae_epochs,
        ae_batch_size=cfg.ae_batch_size if mnist else cfg.faces_ae_batch_size,
        ae_patience=cfg.ae_patience if mnist else cfg.faces_ae_patience,
        clf_epochs=cfg.clf_epochs if mnist else cfg.faces_clf_epochs,
        clf_patience=cfg.clf_patience if mnist else None,
        grid_epochs=cfg.grid_epochs if mnist else cfg.faces_grid_epochs,
        holdout=0.2 if mnist else None,  # faces: 20 % of 280 would leave about one image per person
        passes_per_epoch=1 if mnist else 8,
    )


def learning_rate(cfg: Config, kind: str) -> float:
    """Adam learning rate of a classifier kind (the DBN's sigmoid layers get their own)."""
    return cfg.dbn_learning_rate if kind == "DBN" else cfg.clf_learning_rate


def make_set(data: str, x_train, y_train, x_test, y_test, seed: int) -> dict:
    """One seed's (MNIST) or split's (faces) data: flattened images in [0, 1], the fitted normaliser
    and the validation part of the training images for AE early stopping (MNIST: a stratified 1/12;
    faces: one image of each person, 7 -> 6 for fitting)."""
    s = dict(x_train=np.asarray(x_train, np.float32).reshape(len(x_train), -1),
             x_test=np.asarray(x_test, np.float32).reshape(len(x_test), -1),
             y_train=np.asarray(y_train), y_test=np.asarray(y_test), data=data, seed=seed,
             side=28 if data == "MNIST" else 64)
    rng = np.random.default_rng(seed + 17)
    if data == "MNIST":
        _, val = train_test_split(np.arange(len(s["y_train"])), test_size=1 / 12, stratify=s["y_train"],
                                  random_state=seed)
    else:
        val = np.array([rng.choice(np.flatnonzero(s["y_train"] == c)) for c in np.unique(s["y_train"])])
    s["val_idx"] = np.sort(val)
    s["norm"] = make_normalizer().fit(s["x_train"])
    return s


def load_sets(cfg: Config, data_dir) -> dict[tuple[str, int], dict]:
    """Every seed's MNIST subset and every faces split: ``{(data set, seed): make_set(...)}``.
    MNIST seeds share one stratified subset (drawn with ``cfg.seed``); faces: 7/3 images per person."""
    from ... import data

    (xm_tr, ym_tr), (xm_te, ym_te) = data.load_mnist(data_dir)
    xm_tr, ym_tr = data.stratified_subset(xm_tr, ym_tr, cfg.mnist_train, cfg.seed)
    xm_te, ym_te = data.stratified_subset(xm_te, ym_te, cfg.mnist_test, cfg.seed)
    out = {("MNIST", s): make_set("MNIST", xm_tr / 255.0, ym_tr, xm_te / 255.0, ym_te, s) for s in seeds(cfg, "MNIST")}
    faces, yf = data.load_faces(data_dir)
    for s in seeds(cfg, "faces"):
        f_tr, f_te = data.faces_split(yf, n_train=7, seed=s)
        out[("faces", s)] = make_set("faces", faces[f_tr], yf[f_tr], faces[f_te], yf[f_te], s)
    return out


def seeds(cfg: Config, data: str) -> list[int]:
    """The seeds (MNIST) or split seeds (faces) every Table 1/2 cell averages over."""
    n = cfg.mnist_seeds if data == "MNIST" else cfg.faces_splits
    return [cfg.seed + i for i in range(n)]


# ------------------------------------------------------------------------------------------
# 1. The autoencoder m-256-64-256-m (one trainer for every AE of the notebook)
# ------------------------------------------------------------------------------------------
def fit_autoencoder(x_train, *, a: float, epochs: int, batch_size: int, learning_rate: float, seed: int,
                    hidden: Sequence[int] = (256, 64), tied: bool = True, optimizer: str = "adam", norm=None,
                    x_val=None, patience: int | None = None, noise: Mapping | None = None, checkpoint_dir=None,
                    passes_per_epoch: int = 1, record_initial_loss: bool = False, jit_compile="auto",
                    min_delta: float = 0.0, desc: str = "AE"):
    """Train a dense AE (LReLU, linear output, MSE) and return ``(autoencoder, encoder, history)``.

    ``norm=None``: ``x_train`` is already normalised and the AE reproduces it. With ``norm`` (a
    fitted :func:`make_normalizer`), ``x_train`` holds raw images in [0, 1] that pass through a
    :class:`Normalize` layer, optionally after a :class:`PixelNoise` layer (``noise``:
    ``dict(kind=, level=, level_max=)``, a fresh draw per batch); the target is the clean normalised
    image, and the returned models take *normalised* images. ``x_val`` (raw; noisy with one fixed
    draw for a DAE) drives early stopping (``patience``), the best epoch's weights restored.
    ``optimizer``: ``"adam"`` or ``"gd"`` (plain mini-batch gradient descent). ``passes_per_epoch``
    > 1 repeats a small training set within one Keras epoch (``epochs``, ``patience`` divided by
    it): the same passes, less per-epoch overhead. ``min_delta``: an epoch improving the validation
    loss by less counts as no improvement (so that training to convergence stops).
    ``checkpoint_dir``: resume after a kill.
    """
    train.set_seed(seed, deterministic=None)
    ae, enc = build_dense_autoencoder(x_train.shape[1], tuple(hidden), a=a, tied=tied)
    opt = keras.optimizers.Adam(learning_rate) if optimizer == "adam" else keras.optimizers.SGD(learning_rate)
    if norm is None:
        ae.compile(optimizer=opt, loss="mse", jit_compile=jit_compile)
        hist = train.fit(ae, x_train, x_train, epochs=epochs, batch_size=batch_size, desc=desc,
                         record_initial_loss=record_initial_loss, checkpoint_dir=checkpoint_dir, seed=seed)
        return ae, enc, hist
    mm = norm.steps[-1][1]
    inp = keras.Input((x_train.shape[1],))
    h = inp if noise is None else PixelNoise(seed=seed, **noise)(inp)
    model = keras.Model(inp, ae(Normalize(mm.scale_, mm.min_)(h)))
    model.compile(opt, "mse", jit_compile=jit_compile)
    r = max(1, int(passes_per_epoch))
    epochs, patience = max(1, round(epochs / r)), (max(1, round(patience / r)) if patience else patience)
    val = None
    if x_val is not None:
        y_val = norm.transform(x_val)
        if noise is not None:
            x_val = noisy(x_val, noise.get("level_max") or noise["level"], noise["kind"], seed + 7)
        val = (x_val.astype("float32"), y_val.astype("float32"))
    cbs = [keras.callbacks.EarlyStopping("val_loss", patience=patience, min_delta=min_delta)] if patience and val else []
    x_fit = np.tile(x_train, (r, 1)).astype("float32")
    hist = train.fit(model, x_fit, norm.transform(x_fit).astype("float32"), epochs=epochs, batch_size=batch_size,
                     validation_data=val, callbacks=cbs, desc=desc, checkpoint_dir=checkpoint_dir, seed=seed,
                     restore_best="val_loss" if val else None, record_initial_loss=record_initial_loss)
    return ae, enc, hist


def encode(encoder: keras.Model, x: np.ndarray) -> np.ndarray:
    return encoder.predict(x, batch_size=1024, verbose=0)


def _checkpoint():
    unit = _runs.current()
    return None if unit is None else unit.checkpoint


def _keep(filename: str, **arrays) -> None:
    """Save arrays in the running unit's folder (nothing outside a unit)."""
    unit = _runs.current()
    if unit is not None:
        unit.save_arrays(filename, **arrays)


def cached_with_arrays(runs, fn, /, *, name: str, filename: str = "codes.npz", **kwargs):
    """``runs.cached(fn, **kwargs)`` and the arrays the unit kept: ``(result, arrays)``, or
    ``(None, None)`` when the budget is spent."""
    res = runs.cached(fn, name=name, **kwargs)
    if res is None:
        return None, None
    return res, runs.find(fn, name=name, **kwargs).load_arrays(filename)


def figure1(cfg: Config, x: np.ndarray, seed: int, gd_learning_rate: float = 0.05) -> dict[str, dict]:
    """Figure 1 (run unit): AE loss against wall-clock time for Tied/Uncoupled x GD/Adam, on the
    same normalised MNIST images ``x`` and seed. Returns each curve's history and parameter count."""
    out, a = {}, cfg.lrelu_a_mnist
    for tied in (True, False):
        for opt, lr in (("gd", gd_learning_rate), ("adam", cfg.ae_learning_rate)):
            label = f"{'Tied' if tied else 'Uncoupled'} {'Adam' if opt == 'adam' else 'GD'}"
            ae, _, hist = fit_autoencoder(x, a=a, tied=tied, optimizer=opt, learning_rate=lr, epochs=cfg.fig1_epochs,
                                          batch_size=cfg.ae_batch_size, seed=seed, record_initial_loss=True,
                                          desc=label)
            out[label] = {**hist, "params": ae.count_params()}
    return out


def bottleneck_sweep(cfg: Config, x_train, y_train, x_test, y_test, seed: int) -> list[dict]:
    """Section 2.3's code-size sweep (run unit): an m-256-k-256-m AE per k in
    ``cfg.bottleneck_sizes``, then a fixed 300-100 DNN on its MinMax-scaled codes (``x``:
    normalised images). Returns one row per k: accuracy, AE training time and final loss."""
    rows, a = [], cfg.lrelu_a_mnist
    for k in cfg.bottleneck_sizes:
        _, enc, hist = fit_autoencoder(x_train, hidden=(256, k), a=a, epochs=cfg.sweep_epochs, batch_size=cfg.ae_batch_size,
                                       learning_rate=1e-3, seed=seed, record_initial_loss=True,
                                       desc=f"AE code {k}")
        c_tr, c_te = encode(enc, x_train), encode(enc, x_test)
        sc = code_scaler(c_tr)
        clf = CodeClassifier("dnn", (300, 100), epochs=cfg.clf_epochs, seed=seed).fit(sc.transform(c_tr), y_train)
        rows.append({"code units": k, "accuracy": float(np.mean(clf.predict(sc.transform(c_te)) == y_test)),
                     "AE train time (s)": hist["seconds"], "AE final loss": hist["loss"][-1]})
    return rows


def train_ae(cfg: Config, data: str, x_train, x_test, val_idx, seed: int, noise: Mapping | None = None,
             epochs: int | None = None, test_sets: Mapping[str, np.ndarray] | None = None, label: str = "AE",
             converge: bool = False) -> dict:
    """One AE or DAE of Tables 1 and 2 (run unit): tied m-256-64-256-m, Adam, trained on the
    training images less ``val_idx`` (early stopping on those). Keeps ``codes.npz``: ``train`` and
    ``test`` codes of the clean images, ``recon`` (6 test reconstructions) and one entry per
    ``test_sets`` item (raw test images: noisy or median-filtered). ``converge``: train until the
    validation loss stops improving by ``cfg.converge_min_delta`` for ``cfg.converge_patience``
    epochs, at most ``cfg.converge_epochs``. Returns the training summary."""
    st = settings(cfg, data)
    epochs = cfg.converge_epochs if converge else (epochs or st["ae_epochs"])
    patience = cfg.converge_patience if converge else st["ae_patience"]
    norm = make_normalizer().fit(x_train)
    fit_idx = np.setdiff1d(np.arange(len(x_train)), val_idx)
    ae, enc, hist = fit_autoencoder(x_train[fit_idx], x_val=x_train[val_idx], norm=norm, a=st["a"], epochs=epochs,
                                    batch_size=st["ae_batch_size"], learning_rate=cfg.ae_learning_rate,
                                    patience=patience, seed=seed, noise=noise, checkpoint_dir=_checkpoint(),
                                    desc=f"{label} {data} seed {seed}", passes_per_epoch=st["passes_per_epoch"],
                                    jit_compile=False, min_delta=cfg.converge_min_delta if converge else 0.0)
    arrays = {"train": encode(enc, norm.transform(x_train)), "test": encode(enc, norm.transform(x_test)),
              "recon": ae.predict(norm.transform(x_test[:6]), verbose=0)}
    for k, x in (test_sets or {}).items():
        arrays[k] = encode(enc, norm.transform(x))
    _keep("codes.npz", **arrays)
    return {"epochs_run": hist["epochs_run"], "seconds": hist["seconds"], "final loss": hist["loss"][-1],
            "best val loss": float(np.min(hist["val_loss"])), "best epoch": int(np.argmin(hist["val_loss"])) + 1,
            "epoch cap": max(1, round(epochs / st["passes_per_epoch"])),
            "passes over the data": hist["epochs_run"] * st["passes_per_epoch"]}


# ------------------------------------------------------------------------------------------
# 2. Table 1: perceptron, DNN and DBN on the codes; grid search; baselines
# ------------------------------------------------------------------------------------------
def code_scaler(codes_train: np.ndarray, scaling: str = "minmax"):
    """The codes' scaler, fitted on the training codes. ``"minmax"``: to [0, 1], clipped (one input
    space for all three classifiers, and the Bernoulli range the DBN's RBMs need); ``"standard"``:
    zero mean, unit variance per code unit; ``"sigmoid"``: standardised, then squashed by the
    logistic function into (0, 1) (an RBM input that keeps the standardised codes' shape);
    ``"none"``: the raw codes."""
    from sklearn.preprocessing import StandardScaler

    if scaling == "minmax":
        return MinMaxScaler(clip=True).fit(codes_train)
    if scaling == "standard":
        return StandardScaler().fit(codes_train)
    if scaling == "sigmoid":
        return make_pipeline(StandardScaler(), FunctionTransformer(_sigmoid)).fit(codes_train)
    if scaling == "none":
        return FunctionTransformer().fit(codes_train)
    raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")


SCALINGS = ("minmax", "standard", "sigmoid", "none")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def grid_search(cfg: Config, data: str, kind: str, codes_train, y, seed: int) -> dict:
    """Section 2.3's grid-search CV for ``kind`` ("DNN": widths ``cfg.dnn_grid``; "DBN": widths,
    fine-tuning rate and RBM epochs) on MinMax-scaled codes (run unit). MNIST: 3-fold CV on a
    stratified 20 % of the training codes, as the paper describes; faces: on all 280 codes.
    The DBN's grid also searches the codes' scaling (``cfg.dbn_scaling_grid``: MinMax, or
    standardised then sigmoid-squashed, both in [0, 1] as its RBMs need).
    Returns ``{"best": params, "rows": one per candidate}``."""
    st = settings(cfg, data)
    grid = ({"hidden": [list(g) for g in cfg.dnn_grid]} if kind == "DNN" else
            {"hidden": [list(g) for g in cfg.dbn_grid], "learning_rate": list(cfg.dbn_lr_grid),
             "rbm_epochs": list(cfg.rbm_epochs_grid)})
    rows, best, best_score = [], None, -np.inf
    for scaling in (("minmax",) if kind == "DNN" else cfg.dbn_scaling_grid):
        c, yy = code_scaler(codes_train, scaling).transform(codes_train), y
        if st["holdout"]:
            _, c, _, yy = train_test_split(c, y, test_size=st["holdout"], stratify=y, random_state=seed)
        est = CodeClassifier(kind.lower(), epochs=st["grid_epochs"], seed=seed, batch_size=cfg.clf_batch_size,
                             learning_rate=learning_rate(cfg, kind), rbm_epochs=cfg.rbm_epochs,
                             rbm_learning_rate=cfg.rbm_learning_rate)
        search = train.grid_search(est, grid, c, yy, cv=3, seed=seed, verbose=0)
        extra = {} if kind == "DNN" else {"scaling": scaling}
        rows += [{**{k: str(v) for k, v in p.items()}, **extra, "mean CV accuracy": m, "std": sd}
                 for p, m, sd in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                     search.cv_results_["std_test_score"])]
        if search.best_score_ > best_score:
            best, best_score = {**search.best_params_, **extra}, search.best_score_
    return {"best": best, "rows": rows}


def chosen_settings(cfg: Config, kind: str, best: Mapping | None) -> dict:
    """A classifier's settings: the grid's best where it ran, else the grid's first candidate."""
    if kind == "Perceptron":
        return {"hidden": cfg.perceptron_hidden, "learning_rate": learning_rate(cfg, kind)}
    grid = cfg.dnn_grid if kind == "DNN" else cfg.dbn_grid
    return {"hidden": list(grid[0]), "learning_rate": learning_rate(cfg, kind), **(best or {})}


def fit_classifier(cfg: Config, data: str, kind: str, codes: Mapping[str, np.ndarray], y_train, y_test,
                   choice: Mapping, seed: int, eval_sets: Sequence[str] = (), scaling: str | None = None) -> dict:
    """One classifier (``kind`` in :data:`KINDS`) on ``codes["train"]``, scaled by :func:`code_scaler`
    (``scaling``, else the choice's, else MinMax), with the settings ``choice``
    (:func:`chosen_settings`); run unit. Returns the
    accuracy on ``codes["test"]`` and on every ``eval_sets`` entry of ``codes``, seconds, epochs
    run and the RBM reconstruction errors (DBN)."""
    st = settings(cfg, data)
    rbm_epochs = cfg.rbm_epochs if choice.get("rbm_epochs") is None else choice["rbm_epochs"]
    sc = code_scaler(codes["train"], scaling or choice.get("scaling", "minmax"))
    tf_ = sc.transform
    with train.Stopwatch() as t:
        clf = CodeClassifier(kind.lower(), choice["hidden"], epochs=st["clf_epochs"], batch_size=cfg.clf_batch_size,
                             seed=seed, learning_rate=choice["learning_rate"], rbm_epochs=rbm_epochs,
                             rbm_learning_rate=cfg.rbm_learning_rate, patience=st["clf_patience"]).fit(
            tf_(codes["train"]), y_train)
    out = {"accuracy": float(np.mean(clf.predict(tf_(codes["test"])) == y_test)), "seconds": t.seconds,
           "epochs_run": len(clf.history_["loss"]), "rbm_errors": clf.rbm_errors_}
    for k in eval_sets:
        out[k] = float(np.mean(clf.predict(tf_(codes[k])) == y_test))
    return out


def baselines(cfg: Config, data: str, x_train, y_train, x_test, y_test, codes_train, codes_test, dnn_hidden,
              seed: int) -> dict[str, float]:
    """Baselines on the same split (run unit): PCA-64 of the normalised pixels with logistic
    regression and with the DNN (widths ``dnn_hidden``, the grid's choice); k-NN (k = 1, 5) on the
    MinMax-scaled AE codes. Returns test accuracies."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    st = settings(cfg, data)
    norm = make_normalizer().fit(x_train)
    xtr, xte = norm.transform(x_train), norm.transform(x_test)
    pca = PCA(64, random_state=seed).fit(xtr)
    ptr, pte = pca.transform(xtr), pca.transform(xte)
    out = {}
    lr = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(ptr, y_train)
    out["PCA-64 + logistic regression"] = float(np.mean(lr.predict(pte) == y_test))
    sc = MinMaxScaler(clip=True).fit(ptr)
    mlp = CodeClassifier("dnn", dnn_hidden, epochs=st["clf_epochs"], batch_size=cfg.clf_batch_size, seed=seed,
                         learning_rate=cfg.clf_learning_rate, patience=st["clf_patience"]).fit(sc.transform(ptr), y_train)
    out["PCA-64 + DNN (MLP)"] = float(np.mean(mlp.predict(sc.transform(pte)) == y_test))
    csc = code_scaler(codes_train)
    for k in (1, 5):
        knn = KNeighborsClassifier(k).fit(csc.transform(codes_train), y_train)
        out[f"{k}-NN on AE codes"] = float(np.mean(knn.predict(csc.transform(codes_test)) == y_test))
    return out


PERCEPTRON_READINGS = {
    "ours: 100 sigmoid hidden, scaled codes, Adam": dict(scale=True),
    "unscaled codes": dict(scale=False),
    "1 epoch": dict(scale=True, epochs=1),
    "narrow: 10 hidden units": dict(hidden=10, scale=True),
    "no hidden layer (softmax regression), SGD 0.01, 1 epoch, unscaled": dict(
        hidden=0, scale=False, epochs=1, optimizer="sgd", learning_rate=0.01),
    "10 hidden, SGD 0.01, 1 epoch, unscaled": dict(hidden=10, scale=False, epochs=1, optimizer="sgd",
                                                   learning_rate=0.01),
}
"""Readings of the paper's "perceptron" (hidden width, code scaling, epochs, optimiser)."""


def perceptron_readings(cfg: Config, codes_train, y_train, codes_test, y_test, seed: int) -> dict[str, float]:
    """Which reading of "perceptron" gives the paper's 0.80 on MNIST codes? (run unit; test
    accuracy per reading of :data:`PERCEPTRON_READINGS`)."""
    out = {}
    sc = code_scaler(codes_train)
    for name, v in PERCEPTRON_READINGS.items():
        tf_ = (lambda c: sc.transform(c)) if v["scale"] else (lambda c: c)
        clf = CodeClassifier("perceptron", v.get("hidden", cfg.perceptron_hidden), epochs=v.get("epochs", cfg.clf_epochs),
                             batch_size=cfg.clf_batch_size, seed=seed,
                             learning_rate=v.get("learning_rate", cfg.clf_learning_rate),
                             optimizer=v.get("optimizer", "adam")).fit(tf_(codes_train), y_train)
        out[name] = float(np.mean(clf.predict(tf_(codes_test)) == y_test))
    return out


# ------------------------------------------------------------------------------------------
# 3. Denoising (Figure 2, Table 2)
# ------------------------------------------------------------------------------------------
def noisy(x: np.ndarray, level: float, kind: str = "replace", seed: int = 0) -> np.ndarray:
    """Test-time noise on images in [0, 1] (float32 copy), one fixed draw per ``seed``.

    ``replace``: ``level`` of the pixels get U[0, 1] values (:func:`imgclf.data.add_noise`, our
    reading of "x % noise"); ``salt-and-pepper``: ``level`` of the pixels set to 0 or 1;
    ``gaussian``: N(0, ``level``) added to every pixel, clipped to [0, 1].
    """
    from ... import data

    if kind == "replace":
        return data.add_noise(x, level, seed)
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float32)
    if kind == "salt-and-pepper":
        hit = rng.random(x.shape) < level
        return np.where(hit, (rng.random(x.shape) < 0.5).astype(np.float32), x).astype(np.float32)
    if kind == "gaussian":
        return np.clip(x + rng.normal(0.0, level, x.shape), 0.0, 1.0).astype(np.float32)
    raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")


def median_filtered(x: np.ndarray, side: int, size: int = 3) -> np.ndarray:
    """3x3 median filter of flattened square images ``(n, side*side)`` (the classical denoiser)."""
    from scipy.ndimage import median_filter

    return median_filter(x.reshape(-1, side, side), size=(1, size, size)).reshape(len(x), -1)


def noisy_test_sets(cfg: Config, s: dict) -> tuple[dict, dict]:
    """The test images at every Table 2 noise level (fixed draws) and their 3x3 median-filtered versions."""
    noisy_sets = {f"noisy{i}": noisy(s["x_test"], lv, "replace", s["seed"] + 1000 + i)
                  for i, lv in enumerate(cfg.noise_levels)}
    median_sets = {f"median{i}": median_filtered(x, s["side"]) for i, x in enumerate(noisy_sets.values())}
    return noisy_sets, median_sets


def plain_ae(runs, cfg: Config, s: dict):
    """The plain AE of one seed/split (Table 1), with codes of the noisy and median-filtered test sets."""
    noisy_sets, median_sets = noisy_test_sets(cfg, s)
    return cached_with_arrays(runs, train_ae, name=f"AE {s['data']} seed {s['seed']}", cfg=cfg, data=s["data"],
                              x_train=s["x_train"], x_test=s["x_test"], val_idx=s["val_idx"], seed=s["seed"],
                              test_sets={**noisy_sets, **median_sets})


def run_split(runs, cfg: Config, s: dict, chosen: Mapping, variants: bool) -> list[dict]:
    """Everything Tables 1 and 2 need for one seed (MNIST) or one split (faces), as run units:
    the AE, the three classifiers on its codes, the baselines, the DAE (fresh noise per batch) and
    the classifiers on its codes under 0-50 % noise, the controls (AE without denoising, median
    filter); with ``variants`` also the noise-model sensitivity and the DAE trained over a range
    of noise levels. Returns long records ``{data set, seed, table, model, noise %, accuracy}``
    (a unit skipped by the budget leaves its rows out)."""
    ds, seed, levels = s["data"], s["seed"], cfg.noise_levels
    noisy_sets, _ = noisy_test_sets(cfg, s)
    recs = []

    def add(table, model, acc, noise=None):
        if acc is not None:
            recs.append({"data set": ds, "seed": seed, "table": table, "model": model, "noise %": noise,
                         "accuracy": float(acc)})

    def clf(name, kind, codes, eval_sets=()):
        keep = {k: codes[k] for k in ("train", "test", *eval_sets)}
        return runs.cached(fit_classifier, name=f"{name} {ds} {kind} seed {seed}", cfg=cfg, data=ds, kind=kind,
                           codes=keep, y_train=s["y_train"], y_test=s["y_test"], choice=chosen[kind], seed=seed,
                           eval_sets=tuple(eval_sets))

    def ae(label, noise, test_sets):
        return cached_with_arrays(runs, train_ae, name=f"{label} {ds} seed {seed}", cfg=cfg, data=ds,
                                  x_train=s["x_train"], x_test=s["x_test"], val_idx=s["val_idx"], seed=seed,
                                  noise=noise, test_sets=test_sets, label=label)

    ae_sum, codes = plain_ae(runs, cfg, s)
    if codes is not None:
        add("autoencoder", "AE passes over the data", ae_sum["passes over the data"])
        for kind in KINDS:
            evals = [k for k in codes if k.startswith(("noisy", "median"))] if kind == "DNN" else []
            r = clf("Table 1", kind, codes, evals)
            if r is None:
                continue
            add("Table 1", kind, r["accuracy"])
            if kind == "DNN":
                for i, lv in enumerate(levels):
                    add("Table 2 controls", "AE (not denoising) + DNN", r[f"noisy{i}"], round(100 * lv))
                    add("Table 2 controls", "median filter 3x3 + AE + DNN", r[f"median{i}"], round(100 * lv))
        b = runs.cached(baselines, name=f"baselines {ds} seed {seed}", cfg=cfg, data=ds, x_train=s["x_train"],
                        y_train=s["y_train"], x_test=s["x_test"], y_test=s["y_test"], codes_train=codes["train"],
                        codes_test=codes["test"], dnn_hidden=list(chosen["DNN"]["hidden"]), seed=seed)
        for k, v in (b or {}).items():
            add("Table 1 baselines", k, v)

    sens = {}
    if variants:  # one fixed draw per level (seeded): the noise-model table runs on these seeds only
        for kind in NOISE_KINDS[1:]:
            for j, lv in enumerate(cfg.sensitivity_levels):
                sens[f"{kind} {j}"] = noisy(s["x_test"], lv, kind, seed + 2000 + j)
    dae_sum, dcodes = ae("DAE", dict(kind="replace", level=cfg.dae_noise), {**noisy_sets, **sens})
    if dcodes is not None:
        add("autoencoder", "DAE passes over the data", dae_sum["passes over the data"])
        for kind in KINDS:
            r = clf("Table 2", kind, dcodes, list(noisy_sets) + (list(sens) if kind == "DNN" else []))
            if r is None:
                continue
            for i, lv in enumerate(levels):
                add("Table 2", kind, r[f"noisy{i}"], round(100 * lv))
            if kind == "DNN" and variants:
                for i, lv in enumerate(levels):
                    if lv in cfg.sensitivity_levels:
                        add("noise model", "replace (uniform values)", r[f"noisy{i}"], round(100 * lv))
                for key in sens:
                    kind_name, j = key.rsplit(" ", 1)
                    add("noise model", kind_name, r[key], round(100 * cfg.sensitivity_levels[int(j)]))
    if variants:
        rng_noise = dict(kind="replace", level=0.0, level_max=cfg.range_noise_max)
        _, rcodes = ae("DAE range", rng_noise, noisy_sets)
        if rcodes is not None:
            r = clf("Table 2 range-DAE", "DNN", rcodes, list(noisy_sets))
            if r is not None:
                for i, lv in enumerate(levels):
                    add("Table 2 controls", range_dae_name(cfg), r[f"noisy{i}"], round(100 * lv))
    return recs


def range_dae_name(cfg: Config) -> str:
    return f"DAE over 0-{cfg.range_noise_max:.0%} noise + DNN (variant)"


# ------------------------------------------------------------------------------------------
# 4. Spectra (section 3): convolutional AE, then a 1-D CNN on its codes vs a DNN on raw spectra
# ------------------------------------------------------------------------------------------
def load_spectra(cfg: Config) -> tuple[dict, str]:
    """The densitograms, cut to a length divisible by 16 and split 80/20 (stratified):
    ``({x_train, x_test, y_train, y_test}, "real" | "SYNTHETIC")``. Real lanes come from
    ``cfg.spectra_file``; without it, synthetic ones (:func:`imgclf.data.make_synthetic_spectra`)."""
    from ... import data

    if cfg.spectra_file is None:
        xs, ys = data.make_synthetic_spectra(cfg.spectra_classes, cfg.spectra_samples, cfg.spectra_length, cfg.seed)
        label = "SYNTHETIC"
    else:
        xs, ys = data.load_spectra(cfg.spectra_file)
        label = "real"
    length = xs.shape[1] - xs.shape[1] % 16  # two stride-4 convolutions and back
    parts = train_test_split(xs[:, :length, None], ys, test_size=0.2, stratify=ys, random_state=cfg.seed)
    return dict(zip(("x_train", "x_test", "y_train", "y_test"), parts)), label


def train_cae(cfg: Config, x_train, x_test, seed: int) -> dict:
    """The tied convolutional AE on the training spectra ``(n, L, 1)`` (run unit). Keeps
    ``codes.npz`` (``train``, ``test``); returns its parameters, seconds and final MSE."""
    from ...models.autoencoders import build_conv_autoencoder

    keras.utils.set_random_seed(seed)
    cae, cae_encoder = build_conv_autoencoder(x_train.shape[1])
    cae.compile(keras.optimizers.Adam(1e-3), "mse")
    h = train.fit(cae, x_train, x_train, epochs=cfg.cae_epochs, batch_size=32, desc="CAE",
                  checkpoint_dir=_checkpoint(), seed=seed)
    _keep("codes.npz", train=cae_encoder.predict(x_train, verbose=0), test=cae_encoder.predict(x_test, verbose=0))
    return {"params": cae.count_params(), "seconds": h["seconds"], "final MSE": h["loss"][-1]}


def fit_spectra(cfg: Config, codes: Mapping, spectra: Mapping, n_classes: int, epochs: Mapping[str, int],
                seed: int, patience: int = 20) -> dict[str, dict]:
    """Section 3 (run unit): a 1-D CNN on CAE codes and a DNN (``cfg.dnn_spectra_hidden``) on raw
    spectra, on sorts ``0..n_classes-1``. ``codes``: ``train``/``test`` CAE codes ``(n, l, c)``;
    ``spectra``: ``x_train``, ``x_test`` ``(n, length, 1)``, ``y_train``, ``y_test``. Adam, early
    stopping (``patience``) on a stratified 1/8 of the training lanes, at most ``epochs[name]``
    epochs. Returns per model its accuracy, saved size (MB), parameters and history."""
    from ...models.classifiers import build_dnn
    from ...models.cnns import build_spectra_cnn

    tr, te = spectra["y_train"] < n_classes, spectra["y_test"] < n_classes
    y_tr, y_te = spectra["y_train"][tr], spectra["y_test"][te]
    inputs = {"CNN": (codes["train"][tr], codes["test"][te]),
              "DNN": (spectra["x_train"][tr, :, 0], spectra["x_test"][te, :, 0])}
    out = {}
    for name, (x_tr, x_te) in inputs.items():
        train.set_seed(seed, deterministic=None)
        model = (build_spectra_cnn(x_tr.shape[1:], n_classes) if name == "CNN"
                 else build_dnn(x_tr.shape[1], n_classes, tuple(cfg.dnn_spectra_hidden)))
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        x_fit, x_val, y_fit, y_val = train_test_split(x_tr, y_tr, test_size=0.125, stratify=y_tr, random_state=seed)
        stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
        hist = train.fit(model, x_fit, y_fit, epochs=epochs[name], batch_size=32, validation_data=(x_val, y_val),
                         callbacks=[stop], desc=f"{name} {n_classes} classes")
        out[name] = {"accuracy": float(np.mean(model.predict(x_te, verbose=0).argmax(1) == y_te)),
                     "size_mb": saved_bytes(model.save, ".keras") / 1e6, "params": model.count_params(),
                     "hist": hist}
    return out


# ------------------------------------------------------------------------------------------
# 5. Tables from the long records: mean ± sd over seeds, paired differences
# ------------------------------------------------------------------------------------------
def accs(rec: pd.DataFrame, table: str, ds: str, model: str, noise: int | None = None) -> pd.Series:
    """The per-seed accuracies of one cell of the long records, indexed by seed."""
    q = rec[(rec["table"] == table) & (rec["data set"] == ds) & (rec["model"] == model)]
    if noise is not None:
        q = q[q["noise %"] == noise]
    return q.set_index("seed")["accuracy"].sort_index()


def summary_table(rec: pd.DataFrame, table: str, index=("data set",), columns=("model",)) -> pd.DataFrame:
    """:class:`imgclf.stats.Summary` cells (mean, sd, n, 95 % interval over seeds) for the rows of
    one ``table``, ``index`` down and ``columns`` across."""
    r = rec[rec["table"] == table]
    if r.empty:
        return pd.DataFrame()
    cells = r.groupby([*index, *columns], dropna=False)["accuracy"].agg(lambda v: stats.summarize(v.to_numpy()))
    return cells.unstack(list(columns))


def vs_paper(paper: pd.DataFrame, rec: pd.DataFrame, table: str) -> pd.DataFrame:
    """The paper's Table 1 or 2 beside ours (a :class:`~imgclf.stats.Summary` per cell), one row
    per cell both have."""
    r = rec[rec["table"] == table]
    keys = ["data set", "model"] if table == "Table 1" else ["noise %", "data set", "model"]
    ours = r.groupby(keys)["accuracy"].agg(lambda v: stats.summarize(v.to_numpy())).rename("ours")
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    p.index.names = keys
    return pd.concat([p, ours], axis=1, join="inner")


def paired(rec: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], ds: str, noise: int | None = None,
           names: tuple[str, str] | None = None) -> stats.Paired:
    """:func:`imgclf.stats.paired` of two cells ``(table, model)`` of one data set over the seeds
    (or splits) both ran."""
    sa, sb = accs(rec, a[0], ds, a[1], noise), accs(rec, b[0], ds, b[1], noise)
    common = sa.index.intersection(sb.index)
    return stats.paired(sa[common].to_numpy(), sb[common].to_numpy(), names or (a[1], b[1]))


def _cell(rec, table, ds, model, noise=None) -> str:
    v = accs(rec, table, ds, model, noise)
    return stats.summarize(v.to_numpy()).text() if len(v) else "not run"


def _diff(rec, ds, a, b, noise=None) -> str:
    if not (len(accs(rec, a[0], ds, a[1], noise)) and len(accs(rec, b[0], ds, b[1], noise))):
        return f"{ds}: not run"
    return paired(rec, a, b, ds, noise, names=(f"{ds} {a[1]}", b[1])).text()


def measured_answers(rec: pd.DataFrame, perceptron: pd.DataFrame | None, cfg: Config) -> dict[str, str]:
    """The closing summary: one measured sentence per question this notebook asks, from this run's
    records (paired differences over the same seeds / splits, 95 % intervals)."""
    out = {}
    t1 = "Table 1"
    out["Are the Table 1 differences larger than the seed-to-seed spread?"] = "; ".join(
        _diff(rec, ds, (t1, "DBN"), (t1, "DNN")) for ds in DATA_SETS)
    ep = rec[rec["table"] == "autoencoder"].groupby(["data set", "model"])["accuracy"].mean()
    parts = []
    for ds in DATA_SETS:
        a = rec[(rec["table"] == t1) & (rec["data set"] == ds)].groupby("model")["accuracy"].mean()
        b = rec[(rec["table"] == "Table 1 baselines") & (rec["data set"] == ds)].groupby("model")["accuracy"].mean()
        if len(a) and len(b):
            parts.append(_diff(rec, ds, ("Table 1 baselines", b.idxmax()), (t1, a.idxmax())))
    out["Is the AE trained enough, and does the two-stage method beat simple baselines?"] = (
        "AEs stop early on a validation part (mean passes over the data: "
        + ", ".join(f"{d} {m.split()[0]} {v:.0f}" for (d, m), v in ep.items()) + "). Best baseline − best AE row: "
        + "; ".join(parts) + ".")
    out["Does the denoising AE help on noisy images?"] = (
        f"faces DNN at 50 % noise: DAE {_cell(rec, 'Table 2', 'faces', 'DNN', 50)}, median filter + AE "
        f"{_cell(rec, 'Table 2 controls', 'faces', 'median filter 3x3 + AE + DNN', 50)}, AE without denoising "
        f"{_cell(rec, 'Table 2 controls', 'faces', 'AE (not denoising) + DNN', 50)}, "
        f"{range_dae_name(cfg)} {_cell(rec, 'Table 2 controls', 'faces', range_dae_name(cfg), 50)} (paper 0.9583); "
        f"MNIST DNN at 30 %: DAE {_cell(rec, 'Table 2', 'MNIST', 'DNN', 30)} (paper 0.6443). Paired: "
        + "; ".join(_diff(rec, ds, ("Table 2", "DNN"), ("Table 2 controls", "AE (not denoising) + DNN"), lv)
                    for ds, lv in (("faces", 50), ("MNIST", 30))) + ".")
    if perceptron is not None:
        col = perceptron["MNIST test accuracy"]
        close = perceptron["|ours - paper|"].idxmin()
        out["Which reading of 'perceptron' gives the paper's 0.80 on MNIST?"] = (
            f"ours {col.iloc[0]:.4f}; closest to 0.7977: '{close}' ({col[close]:.4f}); all readings: "
            + ", ".join(f"{k}: {v:.3f}" for k, v in col.items()))
    return out
