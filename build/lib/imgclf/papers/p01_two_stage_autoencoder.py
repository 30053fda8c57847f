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
    "mnist_seeds": config.Range(1, None), "faces_splits": config.Range(1, None), "variant_seeds": config.Range(0, None),
    "dbn_lr_grid": config.POSITIVE, "range_noise_max": config.FRACTION, "sensitivity_levels": config.FRACTION,
}

EXTRA_PARAMETERS = {
    # name: (default, check); spectra_file: .npz with x (n, length) and y (n,); None: synthetic
    "spectra_file": (None, config.existing_file_or_none),
}

PROFILES: dict[str, dict] = {
        "smoke": dict(
            mnist_seeds=2,
            faces_splits=2,
            variant_seeds=1,
            ae_patience=3,
            faces_ae_batch_size=16,
            faces_ae_patience=15,
            clf_patience=3,
            dbn_lr_grid=[1e-2],
            rbm_epochs_grid=[3],
            ae_long_epochs=16,
            range_noise_max=0.5,
            sensitivity_levels=[0.1, 0.3, 0.5],
            mnist_train=2000,
            mnist_test=500,
            ae_epochs=8,
            ae_batch_size=64,
            ae_learning_rate=1e-3,
            lrelu_a_mnist=10.0,
            lrelu_a_faces=5.0,
            faces_ae_epochs=40,
            clf_epochs=15,
            faces_clf_epochs=100,
            clf_batch_size=64,
            clf_learning_rate=3e-3,
            dbn_learning_rate=1e-2,
            perceptron_hidden=100,
            dnn_grid=[[64, 32], [300, 100]],
            dbn_grid=[[300, 100]],
            grid_epochs=5,
            faces_grid_epochs=40,
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
            mnist_seeds=3,
            faces_splits=5,
            variant_seeds=1,
            ae_patience=3,
            faces_ae_batch_size=16,
            faces_ae_patience=30,
            clf_patience=3,
            dbn_lr_grid=[1e-2, 3e-3],
            rbm_epochs_grid=[10, 30],
            ae_long_epochs=40,
            range_noise_max=0.5,
            sensitivity_levels=[0.1, 0.3, 0.5],
            mnist_train=60000,
            mnist_test=10000,
            ae_epochs=20,
            ae_batch_size=256,
            ae_learning_rate=1e-3,
            lrelu_a_mnist=10.0,
            lrelu_a_faces=5.0,
            faces_ae_epochs=400,
            clf_epochs=25,
            faces_clf_epochs=200,
            clf_batch_size=256,
            clf_learning_rate=3e-3,
            dbn_learning_rate=1e-2,
            perceptron_hidden=100,
            dnn_grid=[[100, 50], [300, 100], [500, 200]],
            dbn_grid=[[300, 100]],
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
            class_counts=[5, 10, 25, 50],
            class_sweep_epochs=20,
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


# ==========================================================================================
# Second pass (issue 13): every expensive fit is a run unit, seeds and splits, baselines.
# ==========================================================================================
NOISE_KINDS = ("replace", "salt-and-pepper", "gaussian")


def noisy(x: np.ndarray, level: float, kind: str = "replace", seed: int = 0) -> np.ndarray:
    """Test-time noise on images in [0, 1] (float32 copy), one fixed draw per ``seed``.

    ``replace``: ``level`` of the pixels get U[0, 1] values (:func:`imgclf.data.add_noise`, the
    notebook's reading of "x % noise"); ``salt-and-pepper``: ``level`` of the pixels set to 0 or 1;
    ``gaussian``: N(0, ``level``) added to every pixel, clipped to [0, 1].
    """
    from .. import data

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


class PixelNoise(keras.layers.Layer):
    """Training-time noise on raw pixels in [0, 1], a fresh draw for every batch (identity at inference).

    ``kind`` as in :func:`noisy`; ``level`` the fraction (or the Gaussian sd); with ``level_max``
    each image draws its own level from U[0, level_max] (a DAE trained over a range of noise).
    """

    def __init__(self, kind: str = "replace", level: float = 0.2, level_max: float | None = None, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if kind not in NOISE_KINDS:
            raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
        self.kind, self.level, self.level_max = kind, float(level), level_max
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        from keras import ops

        if not training:
            return x
        shape = ops.shape(x)
        if self.level_max is None:
            lv = self.level
        else:
            lv = keras.random.uniform((shape[0], 1), 0.0, self.level_max, seed=self.seed_generator)
        if self.kind == "gaussian":
            return ops.clip(x + lv * keras.random.normal(shape, seed=self.seed_generator), 0.0, 1.0)
        hit = keras.random.uniform(shape, seed=self.seed_generator) < lv
        if self.kind == "replace":
            values = keras.random.uniform(shape, seed=self.seed_generator)
        else:
            values = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < 0.5, x.dtype)
        return ops.where(hit, values, x)


class Normalize(keras.layers.Layer):
    """The notebook's normaliser (:func:`make_normalizer`, fitted) as a layer: centre each row,
    then ``x * scale + offset`` (scikit-learn's MinMaxScaler), so noise can be drawn on raw pixels
    inside the model and normalised after."""

    def __init__(self, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self._scale, self._offset = np.asarray(scale, np.float32), np.asarray(offset, np.float32)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=self._scale.shape, initializer=keras.initializers.Constant(self._scale),
                                     trainable=False, name="scale")
        self.offset = self.add_weight(shape=self._offset.shape,
                                      initializer=keras.initializers.Constant(self._offset), trainable=False,
                                      name="offset")

    def call(self, x):
        from keras import ops

        return (x - ops.mean(x, axis=1, keepdims=True)) * self.scale + self.offset


def fit_autoencoder(x_train, x_val, norm, *, a: float, epochs: int, batch_size: int, learning_rate: float,
                    patience: int | None, seed: int, noise: dict | None = None, hidden=(256, 64),
                    checkpoint_dir=None, desc: str = "AE", jit_compile: bool = False, passes_per_epoch: int = 1):
    """Train a tied m-256-64-256-m AE (or DAE) on raw images in [0, 1] through :class:`Normalize`.

    ``noise`` (``dict(kind=, level=, level_max=)``, optional) puts a :class:`PixelNoise` layer in
    front: a fresh noise draw per batch, the target stays the clean normalised image. Validation
    on ``x_val`` (raw; noisy with one fixed draw for a DAE) with early stopping (``patience``) and
    the best epoch's weights restored. Resumes from ``checkpoint_dir`` (a run unit's checkpoint).
    ``passes_per_epoch`` > 1 repeats a small training set within one Keras epoch (``epochs`` and
    ``patience`` are then divided by it): the same passes with far less per-epoch overhead (saving
    the resume state, validation, logs). Returns ``(autoencoder, encoder, history)``; both take
    *normalised* images.
    """
    train.set_seed(seed, deterministic=None)
    ae, enc = build_dense_autoencoder(x_train.shape[1], hidden, a=a, tied=True)
    mm = norm.steps[-1][1]
    inp = keras.Input((x_train.shape[1],))
    h = inp if noise is None else PixelNoise(seed=seed, **noise)(inp)
    model = keras.Model(inp, ae(Normalize(mm.scale_, mm.min_)(h)))
    model.compile(keras.optimizers.Adam(learning_rate), "mse", jit_compile=jit_compile)
    y_val = norm.transform(x_val)
    if noise is not None:
        x_val = noisy(x_val, noise.get("level_max") or noise["level"], noise["kind"], seed + 7)
    r = max(1, int(passes_per_epoch))
    epochs, patience = max(1, round(epochs / r)), (max(1, round(patience / r)) if patience else patience)
    cbs = [keras.callbacks.EarlyStopping("val_loss", patience=patience)] if patience else []
    x_fit = np.tile(x_train, (r, 1)).astype("float32")
    hist = train.fit(model, x_fit, norm.transform(x_fit).astype("float32"), epochs=epochs,
                     batch_size=batch_size, validation_data=(x_val.astype("float32"), y_val.astype("float32")),
                     callbacks=cbs, desc=desc, checkpoint_dir=checkpoint_dir, seed=seed, restore_best="val_loss")
    return ae, enc, hist


def _hist_summary(hist: dict) -> dict:
    return {"epochs_run": hist["epochs_run"], "seconds": hist["seconds"], "final loss": hist["loss"][-1],
            "best val loss": float(np.min(hist["val_loss"])), "best epoch": int(np.argmin(hist["val_loss"])) + 1}


def run_arrays(runs, name: str, work, *, settings: dict, data, seed: int):
    """A run unit whose ``work(unit)`` returns ``(result, arrays)``: the arrays are stored in the
    unit (``arrays.npz``) and loaded back. Returns ``(result, arrays)``, or ``(None, None)`` when
    the budget is spent."""
    def fn(unit):
        res, arrays = work(unit)
        unit.save_arrays("arrays.npz", **arrays)
        return res

    res = runs.run(name, fn, settings=settings, data=data, seed=seed)
    if res is None:
        return None, None
    return res, runs.unit(name, settings, data, seed).load_arrays("arrays.npz")


def ae_codes(runs, ds: str, s: dict, P: dict, seed: int, *, noise: dict | None = None, epochs: int | None = None,
             label: str = "AE", test_sets: dict | None = None):
    """One AE (or DAE) as a run unit: train on ``s['x_train']`` minus its validation part, return
    ``(summary, codes)``; ``codes`` holds ``train`` and ``test`` codes of the clean images and one
    entry per ``test_sets`` item (name -> raw test images, e.g. noisy or median-filtered)."""
    test_sets = test_sets or {}
    epochs = epochs or s["ae_epochs"]
    settings = dict(ds=ds, a=s["a"], epochs=epochs, batch_size=s["ae_batch_size"], lr=P["ae_learning_rate"],
                    patience=s["ae_patience"], noise=noise, val=s["val_idx"].tolist()[:50] + [len(s["val_idx"])],
                    test_sets=sorted(test_sets), passes=s["passes_per_epoch"], v=2)

    def work(unit):
        fit_idx = np.setdiff1d(np.arange(len(s["x_train"])), s["val_idx"])
        ae, enc, hist = fit_autoencoder(s["x_train"][fit_idx], s["x_train"][s["val_idx"]], s["norm"], a=s["a"],
                                    epochs=epochs, batch_size=s["ae_batch_size"], learning_rate=P["ae_learning_rate"],
                                    patience=s["ae_patience"], seed=seed, noise=noise,
                                    checkpoint_dir=unit.checkpoint, desc=f"{label} {ds} seed {seed}",
                                    passes_per_epoch=s["passes_per_epoch"])
        arrays = {"train": encode(enc, s["norm"].transform(s["x_train"])),
                  "test": encode(enc, s["norm"].transform(s["x_test"])),
                  "recon": ae.predict(s["norm"].transform(s["x_test"][:6]), verbose=0)}
        for k, x in test_sets.items():
            arrays[k] = encode(enc, s["norm"].transform(x))
        return {**_hist_summary(hist), "passes over the data": hist["epochs_run"] * s["passes_per_epoch"]}, arrays

    return run_arrays(runs, f"{label} {ds} seed {seed}", work, settings=settings,
                      data=(s["x_train"], s["x_test"]), seed=seed)


def classifier_unit(runs, name: str, kind: str, codes: dict, y_train, y_test, *, hidden, learning_rate: float,
                    epochs: int, batch_size: int, P: dict, seed: int, patience: int | None = None,
                    rbm_epochs: int | None = None,
                    scale: bool = True, eval_sets: Sequence[str] = ()):
    """Fit one classifier on ``codes['train']`` (MinMax-scaled unless ``scale=False``) as a run
    unit; returns ``{"accuracy": on codes['test'], "<set>": accuracy on codes[set] for eval_sets,
    "seconds", "epochs_run", "rbm_errors"}`` or ``None`` (budget spent)."""
    rbm_epochs = P["rbm_epochs"] if rbm_epochs is None else rbm_epochs
    settings = dict(kind=kind, hidden=hidden, lr=learning_rate, epochs=epochs, batch_size=batch_size,
                    rbm_epochs=rbm_epochs, rbm_lr=P["rbm_learning_rate"], patience=patience, scale=scale,
                    eval_sets=list(eval_sets), v=2)

    def work(unit):
        sc = code_scaler(codes["train"]) if scale else None
        tf_ = (lambda c: sc.transform(c)) if scale else (lambda c: c)
        with train.Stopwatch() as t:
            clf = CodeClassifier(kind, hidden, epochs=epochs, batch_size=batch_size, seed=seed,
                                 learning_rate=learning_rate, rbm_epochs=rbm_epochs,
                                 rbm_learning_rate=P["rbm_learning_rate"], patience=patience).fit(
                tf_(codes["train"]), y_train)
        out = {"accuracy": float(np.mean(clf.predict(tf_(codes["test"])) == y_test)), "seconds": t.seconds,
               "epochs_run": len(clf.history_["loss"]), "rbm_errors": clf.rbm_errors_}
        for k in eval_sets:
            out[k] = float(np.mean(clf.predict(tf_(codes[k])) == y_test))
        return out

    return runs.run(name, work, settings=settings, data=(codes["train"], codes["test"], y_train, y_test), seed=seed)


def baselines_unit(runs, ds: str, s: dict, codes: dict, P: dict, seed: int, dnn_hidden):
    """Baselines on the same split: PCA-64 + logistic regression and an MLP (the DNN's widths) on
    PCA-64 of the normalised pixels; k-NN (k = 1, 5) on the AE codes. A run unit."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    def work(unit):
        xtr, xte = s["norm"].transform(s["x_train"]), s["norm"].transform(s["x_test"])
        pca = PCA(64, random_state=seed).fit(xtr)
        ptr, pte = pca.transform(xtr), pca.transform(xte)
        out = {}
        lr = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(ptr, s["y_train"])
        out["PCA-64 + logistic regression"] = float(np.mean(lr.predict(pte) == s["y_test"]))
        sc = MinMaxScaler(clip=True).fit(ptr)
        mlp = CodeClassifier("dnn", dnn_hidden, epochs=s["clf_epochs"], batch_size=P["clf_batch_size"], seed=seed,
                             learning_rate=P["clf_learning_rate"], patience=s["clf_patience"]).fit(sc.transform(ptr),
                                                                                                  s["y_train"])
        out["PCA-64 + DNN (MLP)"] = float(np.mean(mlp.predict(sc.transform(pte)) == s["y_test"]))
        csc = code_scaler(codes["train"])
        for k in (1, 5):
            knn = KNeighborsClassifier(k).fit(csc.transform(codes["train"]), s["y_train"])
            out[f"{k}-NN on AE codes"] = float(np.mean(knn.predict(csc.transform(codes["test"])) == s["y_test"]))
        return out

    return runs.run(f"baselines {ds} seed {seed}", work,
                    settings=dict(ds=ds, dnn_hidden=dnn_hidden, epochs=s["clf_epochs"], v=2),
                    data=(s["x_train"], s["x_test"], codes["train"]), seed=seed)


def perceptron_readings(runs, codes: dict, y_train, y_test, P: dict, seed: int) -> pd.DataFrame | None:
    """Objection 4: which reading of "perceptron" gives about 0.80 on MNIST codes? One run unit."""
    variants = {
        "ours: 100 sigmoid hidden, scaled codes, Adam": dict(hidden=P["perceptron_hidden"], scale=True),
        "unscaled codes": dict(hidden=P["perceptron_hidden"], scale=False),
        "1 epoch": dict(hidden=P["perceptron_hidden"], scale=True, epochs=1),
        "narrow: 10 hidden units": dict(hidden=10, scale=True),
        "no hidden layer (softmax regression), SGD 0.01, 1 epoch, unscaled": dict(
            hidden=0, scale=False, epochs=1, optimizer="sgd", learning_rate=0.01),
        "10 hidden, SGD 0.01, 1 epoch, unscaled": dict(hidden=10, scale=False, epochs=1, optimizer="sgd",
                                                       learning_rate=0.01),
    }

    def work(unit):
        out = {}
        for name, v in variants.items():
            sc = code_scaler(codes["train"])
            tf_ = (lambda c: sc.transform(c)) if v["scale"] else (lambda c: c)
            clf = CodeClassifier("perceptron", v["hidden"], epochs=v.get("epochs", P["clf_epochs"]),
                                 batch_size=P["clf_batch_size"], seed=seed,
                                 learning_rate=v.get("learning_rate", P["clf_learning_rate"]),
                                 optimizer=v.get("optimizer", "adam")).fit(tf_(codes["train"]), y_train)
            out[name] = float(np.mean(clf.predict(tf_(codes["test"])) == y_test))
        return out

    res = runs.run("perceptron readings MNIST", work, settings=dict(variants=variants, v=2),
                   data=(codes["train"], y_train), seed=seed)
    if res is None:
        return None
    return pd.Series(res, name="MNIST test accuracy").to_frame()


def select_params(runs, ds: str, kind: str, codes_train, y, grid: dict, *, epochs: int, holdout, P: dict,
                  seed: int, learning_rate: float):
    """The paper's grid-search CV as a run unit; ``grid`` maps CodeClassifier parameters to lists
    (``hidden`` always; ``learning_rate`` and ``rbm_epochs`` for the DBN). Returns ``(best, rows)``."""
    def work(unit):
        c, yy = codes_train, y
        if holdout:
            _, c, _, yy = train_test_split(c, y, test_size=holdout, stratify=y, random_state=seed)
        est = CodeClassifier(kind.lower(), epochs=epochs, seed=seed, batch_size=P["clf_batch_size"],
                             learning_rate=learning_rate, rbm_epochs=P["rbm_epochs"],
                             rbm_learning_rate=P["rbm_learning_rate"])
        search = train.grid_search(est, grid, c, yy, cv=3, seed=seed, verbose=0)
        rows = [{**{k: str(v) for k, v in p.items()}, "mean CV accuracy": m, "std": sd}
                for p, m, sd in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                    search.cv_results_["std_test_score"])]
        return {"best": search.best_params_, "rows": rows}

    res = runs.run(f"grid search {ds} {kind}", work, settings=dict(grid=grid, epochs=epochs, holdout=holdout,
                                                                   lr=learning_rate, v=2),
                   data=(codes_train, y), seed=seed)
    return (None, None) if res is None else (res["best"], res["rows"])


def accs(rec: pd.DataFrame, table: str, ds: str, model: str, noise: int | None = None) -> np.ndarray:
    """The per-seed accuracies of one cell of the long records."""
    q = rec[(rec["table"] == table) & (rec["data set"] == ds) & (rec["model"] == model)]
    if noise is not None:
        q = q[q["noise %"] == noise]
    return q["accuracy"].to_numpy()


def mean_sd(values) -> str:
    """``"0.9712 ± 0.0021 (n=3)"``; one value: ``"0.9712 (n=1)"``; none: ``"not run"``."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if not len(v):
        return "not run"
    if len(v) == 1:
        return f"{v[0]:.4f} (n=1)"
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f} (n={len(v)})"


def summarize(records: pd.DataFrame, index: str, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long records (one row per seed) -> ``(mean, sd)`` tables (sd with ddof=1, NaN for one seed)."""
    g = records.groupby([index, *columns])["accuracy"]
    mean, sd = g.mean().unstack(list(range(1, len(columns) + 1))), g.std(ddof=1).unstack(list(range(1, len(columns) + 1)))
    return mean, sd


def mean_sd_table(records: pd.DataFrame, index, columns) -> pd.DataFrame:
    """Records -> a table of ``"mean ± sd (n)"`` strings."""
    return records.groupby([*np.atleast_1d(index), *np.atleast_1d(columns)])["accuracy"].agg(
        lambda v: mean_sd(v.to_numpy())).unstack(list(range(len(np.atleast_1d(index)), len(np.atleast_1d(index)) + len(np.atleast_1d(columns)))))


def make_set(name: str, x_train, y_train, x_test, y_test, P: dict, seed: int) -> dict:
    """One data set's split as the pipeline uses it: flattened images in [0, 1], the fitted
    normaliser, the validation part of the training images (for AE early stopping) and the
    per-data-set settings. MNIST: a stratified 1/12 of the training images; faces: one image of
    each person (7 -> 6 for fitting)."""
    mnist = name == "MNIST"
    side = 28 if mnist else 64
    s = dict(x_train=np.asarray(x_train, np.float32).reshape(len(x_train), -1),
             x_test=np.asarray(x_test, np.float32).reshape(len(x_test), -1),
             y_train=np.asarray(y_train), y_test=np.asarray(y_test), side=side,
             a=P["lrelu_a_mnist" if mnist else "lrelu_a_faces"],
             ae_epochs=P["ae_epochs" if mnist else "faces_ae_epochs"],
             ae_batch_size=P["ae_batch_size" if mnist else "faces_ae_batch_size"],
             ae_patience=P["ae_patience" if mnist else "faces_ae_patience"],
             clf_epochs=P["clf_epochs" if mnist else "faces_clf_epochs"],
             clf_patience=P["clf_patience"] if mnist else None,
             grid_epochs=P["grid_epochs" if mnist else "faces_grid_epochs"], holdout=0.2 if mnist else None,
             passes_per_epoch=1 if mnist else 8)
    rng = np.random.default_rng(seed + 17)
    if mnist:
        _, val = train_test_split(np.arange(len(s["y_train"])), test_size=1 / 12, stratify=s["y_train"],
                                  random_state=seed)
    else:
        val = np.array([rng.choice(np.flatnonzero(s["y_train"] == c)) for c in np.unique(s["y_train"])])
    s["val_idx"] = np.sort(val)
    s["norm"] = make_normalizer().fit(s["x_train"])
    return s


def noisy_test_sets(s: dict, P: dict, seed: int) -> tuple[dict, dict]:
    """The test images at every Table 2 noise level (fixed draws) and their 3x3 median-filtered versions."""
    noisy_sets = {f"noisy{i}": noisy(s["x_test"], lv, "replace", seed + 1000 + i) for i, lv in enumerate(P["noise_levels"])}
    median_sets = {f"median{i}": median_filtered(x, s["side"]) for i, x in enumerate(noisy_sets.values())}
    return noisy_sets, median_sets


def table1_ae(runs, ds: str, s: dict, P: dict, seed: int):
    """The plain AE of one seed/split (run unit), with codes of the noisy and median-filtered test sets."""
    noisy_sets, median_sets = noisy_test_sets(s, P, seed)
    return ae_codes(runs, ds, s, P, seed, test_sets={**noisy_sets, **median_sets})


def run_split(runs, ds: str, s: dict, P: dict, seed: int, chosen: dict, variants: bool) -> list[dict]:
    """Everything Tables 1 and 2 need for one seed (MNIST) or one split (faces), as run units:
    the AE, the three classifiers on its codes, the baselines, the DAE (fresh noise per batch) and
    the classifiers on its codes under 0-50 % noise, the controls (AE without denoising, median
    filter); with ``variants`` also the noise-model sensitivity and the DAE trained over a range
    of noise levels. Returns long records ``{data set, seed, table, model, noise %, accuracy}``
    (a unit skipped by the budget leaves its rows out)."""
    levels = P["noise_levels"]
    noisy_sets, median_sets = noisy_test_sets(s, P, seed)
    recs = []

    def add(table, model, acc, noise=None):
        if acc is not None:
            recs.append({"data set": ds, "seed": seed, "table": table, "model": model, "noise %": noise,
                         "accuracy": float(acc)})

    def clf(name, kind, codes, eval_sets=()):
        c = chosen[kind]
        return classifier_unit(runs, f"{name} {ds} {kind} seed {seed}", kind.lower(), codes, s["y_train"],
                               s["y_test"], hidden=c["hidden"], learning_rate=c["learning_rate"],
                               rbm_epochs=c.get("rbm_epochs"), epochs=s["clf_epochs"],
                               batch_size=P["clf_batch_size"], P=P, seed=seed, patience=s["clf_patience"],
                               eval_sets=eval_sets)

    ae_sum, codes = table1_ae(runs, ds, s, P, seed)
    if codes is not None:
        add("autoencoder", "AE passes over the data", ae_sum["passes over the data"])
        for kind in KINDS:
            r = clf("Table 1", kind, codes, eval_sets=list(noisy_sets) + list(median_sets) if kind == "DNN" else ())
            if r is None:
                continue
            add("Table 1", kind, r["accuracy"])
            if kind == "DNN":
                for i, lv in enumerate(levels):
                    add("Table 2 controls", "AE (not denoising) + DNN", r[f"noisy{i}"], round(100 * lv))
                    add("Table 2 controls", "median filter 3x3 + AE + DNN", r[f"median{i}"], round(100 * lv))
        b = baselines_unit(runs, ds, s, codes, P, seed, chosen["DNN"]["hidden"])
        for k, v in (b or {}).items():
            add("Table 1 baselines", k, v)

    sens = {}
    if variants:
        for kind in NOISE_KINDS[1:]:
            for j, lv in enumerate(P["sensitivity_levels"]):
                sens[f"{kind} {j}"] = noisy(s["x_test"], lv, kind, seed + 2000 + j)
    dae_noise = dict(kind="replace", level=P["dae_noise"])
    dae_sum, dcodes = ae_codes(runs, ds, s, P, seed, noise=dae_noise, label="DAE", test_sets={**noisy_sets, **sens})
    if dcodes is not None:
        add("autoencoder", "DAE passes over the data", dae_sum["passes over the data"])
        for kind in KINDS:
            r = clf("Table 2", kind, dcodes, eval_sets=list(noisy_sets) + (list(sens) if kind == "DNN" else []))
            if r is None:
                continue
            for i, lv in enumerate(levels):
                add("Table 2", kind, r[f"noisy{i}"], round(100 * lv))
            if kind == "DNN" and variants:
                for i, lv in enumerate(levels):
                    if lv in P["sensitivity_levels"]:
                        add("noise model", "replace (uniform values)", r[f"noisy{i}"], round(100 * lv))
                for key in sens:
                    kind_name, j = key.rsplit(" ", 1)
                    add("noise model", kind_name, r[key], round(100 * P["sensitivity_levels"][int(j)]))
    if variants:
        rng_noise = dict(kind="replace", level=0.0, level_max=P["range_noise_max"])
        _, rcodes = ae_codes(runs, ds, s, P, seed, noise=rng_noise, label="DAE range", test_sets=noisy_sets)
        if rcodes is not None:
            r = clf("Table 2 range-DAE", "DNN", rcodes, eval_sets=list(noisy_sets))
            if r is not None:
                for i, lv in enumerate(levels):
                    add("Table 2 controls", f"DAE over 0-{P['range_noise_max']:.0%} noise + DNN (variant)",
                        r[f"noisy{i}"], round(100 * lv))
    return recs


def spectra_unit(runs, codes: dict, spectra: dict, n_classes: int, epochs: dict, dnn_hidden, seed: int,
                 name: str = "spectra") -> dict | None:
    """:func:`fit_spectra_classifiers` as a run unit: per model its accuracy, size, parameters and history."""
    def work(unit):
        out = {}
        for k, r in fit_spectra_classifiers(codes, spectra, n_classes, epochs, dnn_hidden, seed).items():
            out[k] = {"accuracy": r["accuracy"], "size_mb": model_file_mb(r["model"]),
                      "params": r["model"].count_params(), "hist": r["hist"]}
        return out

    return runs.run(f"{name} {n_classes} classes", work,
                    settings=dict(n=n_classes, epochs=epochs, hidden=list(dnn_hidden), v=2),
                    data=(codes["train"], spectra["y_train"]), seed=seed)


def with_sd(paper: pd.DataFrame, records: pd.DataFrame, table: str) -> pd.DataFrame:
    """Paper beside our mean, sd (ddof=1) and number of seeds/splits, for Table 1 or Table 2.

    ``records`` are :func:`run_split`'s rows. Long format: one row per table cell."""
    r = records[records["table"] == table]
    if table == "Table 1":
        g = r.groupby(["data set", "model"])["accuracy"]
    else:
        g = r.groupby(["noise %", "data set", "model"])["accuracy"]
    ours = pd.DataFrame({"ours (mean)": g.mean(), "sd": g.std(ddof=1), "n": g.size()})
    p = paper.stack(list(range(paper.columns.nlevels)), future_stack=True).rename("paper")
    p.index.names = ours.index.names
    out = pd.concat([p, ours], axis=1, join="inner")
    out["ours - paper"] = out["ours (mean)"] - out["paper"]
    return out.round(4)


def spread_table(records: pd.DataFrame, table: str, index=("data set",), columns=("model",)) -> pd.DataFrame:
    """``mean ± sd (n)`` strings for the rows of one ``table``."""
    r = records[records["table"] == table]
    if r.empty:
        return pd.DataFrame()
    cells = r.groupby([*index, *columns], dropna=False)["accuracy"].agg(lambda v: mean_sd(v.to_numpy()))
    return cells.unstack(list(columns))


def objection_answers(rec: pd.DataFrame, perceptron: pd.DataFrame | None, ablation: pd.DataFrame,
                      P: dict) -> dict[str, str]:
    """The closing note: one measured sentence per reviewer objection (1-6), from this run's records."""
    def ms(table, ds, model, noise=None):
        q = rec[(rec["table"] == table) & (rec["data set"] == ds) & (rec["model"] == model)]
        if noise is not None:
            q = q[q["noise %"] == noise]
        return mean_sd(q["accuracy"].to_numpy()), q["accuracy"].to_numpy()

    def diff(ds, a, b):
        qa, qb = (rec[(rec["table"] == "Table 1") & (rec["data set"] == ds) & (rec["model"] == m)].set_index("seed")["accuracy"]
                  for m in (a, b))
        d = (qa - qb).dropna()
        return mean_sd(d.to_numpy())

    out = {}
    n_m = rec.loc[rec["data set"] == "MNIST", "seed"].nunique()
    n_f = rec.loc[rec["data set"] == "faces", "seed"].nunique()
    out["1 (seeds and splits)"] = (
        f"Table 1 over {n_m} MNIST seeds and {n_f} faces splits: MNIST DNN {ms('Table 1', 'MNIST', 'DNN')[0]}, "
        f"DBN {ms('Table 1', 'MNIST', 'DBN')[0]}; DBN - DNN per seed {diff('MNIST', 'DBN', 'DNN')} (MNIST), "
        f"{diff('faces', 'DBN', 'DNN')} (faces). A difference within about one sd of the per-seed difference "
        f"is not a finding.")
    b = rec[rec["table"] == "Table 1 baselines"].groupby(["data set", "model"])["accuracy"].mean()
    a = rec[rec["table"] == "Table 1"].groupby(["data set", "model"])["accuracy"].mean()
    parts = []
    for ds in a.index.get_level_values(0).unique():
        best_b = b[ds].idxmax() if ds in b.index.get_level_values(0) else None
        parts.append(f"{ds}: best AE row {a[ds].idxmax()} {a[ds].max():.4f}, best baseline "
                     + (f"{best_b} {b[ds].max():.4f}" if best_b else "not run")
                     + (" (the baseline wins)" if best_b and b[ds].max() > a[ds].max() else ""))
    ep = rec[rec["table"] == "autoencoder"].groupby(["data set", "model"])["accuracy"].mean()
    out["2 (faces AE training, baselines)"] = (
        "AEs now stop early on a validation part (mean epochs run: "
        + ", ".join(f"{d} {m.split()[0]} {v:.0f}" for (d, m), v in ep.items()) + "). " + "; ".join(parts) + ".")
    out["3 (denoising)"] = (
        f"Fresh noise per batch. faces DNN at 50 % noise: DAE 20 % {ms('Table 2', 'faces', 'DNN', 50)[0]}, "
        f"median filter + AE {ms('Table 2 controls', 'faces', 'median filter 3x3 + AE + DNN', 50)[0]}, "
        f"AE without denoising {ms('Table 2 controls', 'faces', 'AE (not denoising) + DNN', 50)[0]}, "
        f"DAE over 0-{P['range_noise_max']:.0%} (variant) "
        f"{ms('Table 2 controls', 'faces', 'DAE over 0-' + format(P['range_noise_max'], '.0%') + ' noise + DNN (variant)', 50)[0]}"
        f" (paper 0.9583); MNIST DNN at 30 %: {ms('Table 2', 'MNIST', 'DNN', 30)[0]} (paper 0.6443).")
    if perceptron is not None:
        col = perceptron["MNIST test accuracy"]
        close = (perceptron["|ours - paper|"]).idxmin()
        out["4 (perceptron)"] = (f"ours {col.iloc[0]:.4f}; the reading closest to the paper's 0.7977 is '{close}' "
                                 f"({col[close]:.4f}); all readings: " + ", ".join(f"{k}: {v:.3f}" for k, v in col.items()))
    else:
        out["4 (perceptron)"] = "not run (budget)"
    out["5 (do the codes cap the classifiers?)"] = "; ".join(
        f"{i}: " + ", ".join(f"{c} {v}" for c, v in r.items() if isinstance(v, str)) for i, r in ablation.iterrows())
    out["6 (tests that can fail)"] = (
        "tests/test_models.py::test_dbn_pretraining_is_what_makes_the_fine_tuned_dbn_work fails with the "
        "pretraining skipped and with the CD sign reversed; the notebook test asserts above-chance accuracy by a margin.")
    return out
