"""Paper 2 (Tarasenko, Yakimov & Soloviev): a plain CNN that tells fractured from intact bones.

The data handling lives in :mod:`imgclf.data` (folder loader, duplicate groups, group-aware
splits); this module holds what notebook 02 does with it: one call to prepare the X-rays, one to
train with the best epoch by validation loss restored, one to score a model on a test set.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .. import config, data, metrics, train
from ..models.cnns import build_plain_cnn

CLASSES = ["not fractured", "fractured"]  # label 1 = fractured = the positive class


def prepare(root: str | Path, input_size: int, cache_dir: str | Path | None, dup_threshold: float = 0.98,
            dup_max_angle: int = 30, dup_angle_step: int = 10, classes=CLASSES) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Index ``root/<split>/<class>/<image>``, decode every image once, group the duplicates.

    Every file is checked first (:func:`imgclf.data.fracture_index`: class folders present and not
    empty; with the staged ``labels.csv``, each file's sha256). Returns ``(df, x, seconds)``: ``df`` one row per file (``split``, ``class``, ``label``,
    ``path``, ``file``, ``sha256``, ``group`` = duplicate-group id from content only), ``x``
    uint8 ``(n, input_size, input_size, 1)`` grayscale, and the seconds each step took. Decoded
    arrays are cached in ``cache_dir`` (per size), so a re-run does not decode again.
    """
    seconds = {}
    t = time.perf_counter()
    df = data.fracture_index(root, classes=classes)  # every file checked against labels.csv when present
    seconds["index + sha256"] = time.perf_counter() - t
    t = time.perf_counter()
    x = data.load_images(df["file"], input_size, channels=1, cache_dir=cache_dir)
    x32 = x if input_size == 32 else data.load_images(df["file"], 32, channels=1, cache_dir=cache_dir)
    seconds["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    angles = search_angles(dup_max_angle, dup_angle_step)
    df["group"] = data.duplicate_groups(x32, df["sha256"].to_numpy(), threshold=dup_threshold, angles=angles,
                                        crop=0.7, side=12)
    seconds["duplicate groups"] = time.perf_counter() - t
    return df, x, seconds


def search_angles(max_angle: int, step: int) -> list[int]:
    """Small rotations searched around each of the 8 flip/rotation poses: 0, +-step, ..., +-max_angle.
    ``max_angle`` 45 covers every angle (the poses are 90 degrees apart)."""
    return [0] + [s * a for a in range(step, max_angle + 1, step) for s in (-1, 1)]


def duplicate_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per split: files, distinct contents, duplicate groups; and test files with a copy in train."""
    rows = {}
    for split, sub in df.groupby("split"):
        rows[split] = {"files": len(sub), "distinct contents (sha256)": sub["sha256"].nunique(),
                       "duplicate groups": sub["group"].nunique(), "largest group": sub["group"].value_counts().max()}
    tr, te = np.flatnonzero(df["split"] == "train"), np.flatnonzero(df["split"] == "test")
    if len(tr) and len(te):
        rows["test"]["with a byte-identical copy in train"] = int(data.copies_across(df["sha256"], tr, te).sum())
        rows["test"]["with a near/exact copy in train (same group)"] = int(data.copies_across(df["group"], tr, te).sum())
    return pd.DataFrame(rows).T


def fit_best(x_tr, y_tr, x_va, y_va, *, input_size: int, filters, dense: int, dropout: float, epochs: int,
             batch_size: int, learning_rate: float, seed: int, desc: str = ""):
    """Build the plain CNN, train it ``epochs`` epochs (Adam, cross-entropy), restore the best weights.

    The best epoch is the one with the lowest validation loss (the paper's overfitting point);
    its weights are restored at the end (``EarlyStopping`` with patience beyond the last epoch,
    so all epochs run and are logged). Returns ``(model, hist)``; ``hist`` is
    :func:`imgclf.train.fit`'s dict plus ``best_epoch`` (1-based).
    """
    train.set_seed(seed)
    model = build_plain_cnn((input_size, input_size, 1), 2, tuple(filters), dense, dropout)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs + 1, restore_best_weights=True)
    hist = train.fit(model, x_tr, y_tr, epochs=epochs, batch_size=batch_size, validation_data=(x_va, y_va),
                     callbacks=[best], desc=desc)
    hist["best_epoch"] = int(np.argmin(hist["val_loss"])) + 1
    return model, hist


def epoch_log(hist: dict) -> pd.DataFrame:
    """The paper's per-epoch log (Fig. 7): seconds, loss, acc, val_loss, val_acc."""
    df = pd.DataFrame({"seconds": hist["epoch_time"], "loss": hist["loss"], "acc": hist["accuracy"],
                       "val_loss": hist["val_loss"], "val_acc": hist["val_accuracy"]})
    df.index = pd.RangeIndex(1, len(df) + 1, name="epoch")
    return df


def evaluate(model, x, y) -> dict:
    """Binary test metrics of ``model`` on ``(x, y)``: :func:`evaluate_proba` of its predictions."""
    return evaluate_proba(y, model.predict(x, batch_size=256, verbose=0)[:, 1])


def evaluate_proba(y, proba) -> dict:
    """Binary test metrics (fractured = 1 = positive) from the probabilities of *fractured*:
    accuracy, sensitivity, specificity, ROC AUC, Cohen's kappa (scikit-learn; specificity from
    :mod:`imgclf.metrics`), plus the confusion matrix, the ROC curve, probabilities and predictions."""
    y, proba = np.asarray(y), np.asarray(proba, np.float64)
    pred = (proba >= 0.5).astype(int)
    fpr, tpr, _ = skm.roc_curve(y, proba) if len(np.unique(y)) == 2 else (np.array([0.0, 1.0]), np.array([0.0, 1.0]), None)
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "sensitivity": float(skm.recall_score(y, pred, pos_label=1, zero_division=0)),
        "specificity": metrics.specificity(y, pred, positive=1),
        "AUC": float(skm.roc_auc_score(y, proba)) if len(np.unique(y)) == 2 else float("nan"),
        "kappa": float(skm.cohen_kappa_score(y, pred)),
        "n": int(len(y)),
        "confusion": skm.confusion_matrix(y, pred, labels=[0, 1]),
        "roc": (fpr, tpr),
        "proba": proba,
        "pred": pred,
    }


SCALARS = ("accuracy", "sensitivity", "specificity", "AUC", "kappa", "n")


# ------------------------------------------------------------------------------------------
# Grad-CAM (HiResCAM for a Flatten-Dense head)
# ------------------------------------------------------------------------------------------
def grad_cam(model: keras.Model, images: np.ndarray, class_index: int | Sequence[int] | None = None,
             layer_name: str = "last_conv", method: str = "gradcam") -> np.ndarray:
    """Grad-CAM heat maps ``(n, h, w)`` in [0, 1] at the input's resolution.

    ``images`` ``(n, h, w, c)`` as the model takes them. For each image, the gradient of the
    chosen class score (the pre-softmax logit when the last layer is a softmax ``Dense``, as in
    the Grad-CAM paper, so a confident prediction does not make the gradient vanish) (``class_index``: one class for all, one per image, or ``None`` = the
    predicted class) with respect to the feature maps of ``layer_name`` is averaged over space
    to weight the maps; the ReLU of the weighted sum, upsampled bilinearly and divided by its
    maximum, is the map (all zeros where no location supports the class).

    ``method="hirescam"`` (Draelos & Carin 2020) multiplies gradients and feature maps element by
    element before summing over channels, without the spatial average. For a ``Flatten -> Dense``
    head (as in :func:`imgclf.models.cnns.build_plain_cnn`) the gradient differs per location, and
    Grad-CAM's average can cancel to an all-negative map; HiResCAM then still shows the locations
    that raise the class score.
    """
    if method not in ("gradcam", "hirescam"):
        raise ValueError(f"method must be 'gradcam' or 'hirescam', got {method!r}")
    import tensorflow as tf

    conv = model.get_layer(layer_name)
    last = model.layers[-1]
    softmax_dense = isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax
    probe = keras.Model(model.inputs, [conv.output, last.input if softmax_dense else model.output])
    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    with tf.GradientTape() as tape:
        fmap, head = probe(x, training=False)
        probs = tf.matmul(head, last.kernel) + last.bias if softmax_dense else head
        if class_index is None:
            cls = tf.argmax(probs, axis=1)
        else:
            cls = tf.broadcast_to(tf.constant(class_index, tf.int64), [x.shape[0]])
        score = tf.gather(probs, cls, axis=1, batch_dims=1)
    grads = tape.gradient(score, fmap)
    weights = grads if method == "hirescam" else tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1))[..., None]
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1)
    return np.where(peak[:, None, None] > 0, cam / np.maximum(peak, 1e-12)[:, None, None], 0.0).astype(np.float32)


def overlay_grid(images: np.ndarray, cams: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 4,
                 alpha: float = 0.45, size: float = 2.4, suptitle: str = "", label: str = "heat map"):
    """Each image in gray with its heat map (``jet``) over it; image and overlay side by side."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(size * 2 * ncols, size * nrows * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, ncols)
        img = np.asarray(images[i], np.float32).squeeze()
        axes[r, 2 * c].imshow(img, cmap="gray")
        axes[r, 2 * c + 1].imshow(img, cmap="gray")
        axes[r, 2 * c + 1].imshow(cams[i], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            axes[r, 2 * c].set_title(titles[i], fontsize=8)
            axes[r, 2 * c + 1].set_title(label, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------
# Profiles: "smoke" runs the notebook on a 2-core CPU in minutes, "paper" at the paper's scale
# ------------------------------------------------------------------------------------------
NOTEBOOK = "02_fracture_cnn"

TITLE = "Fracture X-ray CNN (Tarasenko, Yakimov & Soloviev)"

RULES = {
    "learning_rate": config.POSITIVE, "dropout": config.DROPOUT,
    "test_size": config.OPEN_FRACTION, "val_size": config.OPEN_FRACTION, "dup_threshold": config.FRACTION,
    "input_size": config.Range(8, None), "seeds": config.Range(1, None), "dup_max_angle": config.Range(0, 45),
    "dup_angle_step": config.Range(1, 45), "patience": config.Range(1, None), "check_candidates": config.Range(1, None),
}

PROFILES: dict[str, dict] = {
        "smoke": dict(
            input_size=28,
            epochs=8,
            batch_size=64,
            learning_rate=1e-3,
            filters=[16, 32, 64],
            dense=64,
            dropout=0.5,
            test_size=0.2,
            val_size=0.1,
            dup_threshold=0.98,
            dup_max_angle=45,
            dup_angle_step=5,
            seeds=2,
            resnet_epochs=8,
            patience=5,
            check_candidates=5,
            gradcam_images=6,
            misclassified_images=16,
        ),
        "paper": dict(
            input_size=64,
            epochs=25,
            batch_size=32,
            learning_rate=1e-3,
            filters=[32, 64, 128],
            dense=128,
            dropout=0.5,
            test_size=0.2,
            val_size=0.1,
            dup_threshold=0.98,
            dup_max_angle=45,
            dup_angle_step=5,
            seeds=3,
            resnet_epochs=30,
            patience=8,
            check_candidates=10,
            gradcam_images=8,
            misclassified_images=24,
        ),
    }


# ------------------------------------------------------------------------------------------
# The paper's published numbers (typed in from shared/papers/)
# ------------------------------------------------------------------------------------------
TEST_ACCURACY = 0.7313
"""Section 4: "an accuracy of 73.13% on the test data" (MURA, MedPix, OmniMedicalSearch X-rays)."""

BEST_EPOCH = 10
"""Figures 8-9: validation accuracy peaks and validation loss bottoms out at the tenth epoch."""

EPOCH_LOG = pd.DataFrame(
    {
        "seconds": [148, 139, 142, 143, 144, 146, 147, 144, 148, 146, 146, 146, 147, 146, 145],
        "loss": [1.6839, 1.3321, 1.1922, 1.1047, 1.0282, 0.9746, 0.9281, 0.8862, 0.8496, 0.8242, 0.7889, 0.7630,
                 0.7261, 0.7107, 0.6936],
        "acc": [0.3842, 0.5198, 0.5769, 0.6096, 0.6382, 0.6555, 0.6721, 0.6856, 0.7018, 0.7096, 0.7216, 0.7312,
                0.7437, 0.7496, 0.7576],
        "val_loss": [1.3082, 1.1408, 1.0420, 0.9681, 0.9166, 0.9387, 0.8726, 0.9464, 0.8446, 0.7807, 0.7913, 0.8651,
                     0.8043, 0.8587, 0.7686],
        "val_acc": [0.5328, 0.6042, 0.6432, 0.6670, 0.6896, 0.6826, 0.7032, 0.6610, 0.7118, 0.7326, 0.7246, 0.6990,
                    0.7278, 0.7158, 0.7368],
    },
    index=pd.RangeIndex(1, 16, name="epoch"),
)
"""Fig. 7: the printed training log, epochs 1-15 of 25 (the rest is not printed). Its loss starts
at 1.68, above ln 2, so the log may come from a task with more than two classes."""

MURA_DENSENET_AUROC = 0.929
"""Rajpurkar et al., "MURA: Large Dataset for Abnormality Detection in Musculoskeletal Radiographs"
(2017): AUROC of their 169-layer DenseNet on MURA's test studies (per study, not per image)."""

REPO_KAPPA_CNN_SCRATCH = 0.386
"""Cohen's kappa of a CNN trained from scratch on MURA v1.1, from the README of the public repository
ilias-ant/x-ray-abnormality-detection (not from the MURA paper)."""

REPO_KAPPA_DENSENET_PRETRAINED = 0.629
"""Cohen's kappa of a pretrained DenseNet-169 on MURA v1.1, from the README of the public repository
ilias-ant/x-ray-abnormality-detection (not from the MURA paper)."""

PAPER_LOG_START = {"loss": 1.6839, "acc": 0.3842}
"""The first epoch of the paper's printed log (Fig. 7): a loss above ln 2 = 0.693 and an accuracy
below 0.5, both worse than chance for two balanced classes: the log probably comes from a task with
more than two classes (or a different data set)."""


# ------------------------------------------------------------------------------------------
# Second pass (issue 13): seeds, each with its own group split; a stronger model; run units
# ------------------------------------------------------------------------------------------
def build_small_resnet(input_shape, num_classes: int = 2, widths=(16, 32, 64), augment: bool = True, seed: int = 0,
                       name: str = "small_resnet") -> keras.Model:
    """A small residual CNN trained from scratch (the extra row of objection 10).

    ``(batch, h, w, c)`` pixels 0..255 -> [training only: random flip, rotation +-10 %, zoom +-10 %,
    translation +-10 %] -> ``Rescaling(1/255)`` -> 5x5 stride-2 stem + max-pool -> one residual block
    (two 3x3 conv + batch norm, identity or 1x1 projection shortcut) per width, the later ones with
    stride 2 -> global average pooling -> dropout 0.3 -> softmax ``(batch, num_classes)``. The last
    block's output is named ``last_conv`` (Grad-CAM)."""
    from keras import layers

    inp = keras.Input(shape=input_shape, name="image")
    h = inp
    if augment:
        h = layers.RandomFlip("horizontal", seed=seed, name="aug_flip")(h)
        h = layers.RandomRotation(0.1, fill_mode="constant", seed=seed + 1, name="aug_rotate")(h)
        h = layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2, name="aug_zoom")(h)
        h = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 3, name="aug_shift")(h)
    h = layers.Rescaling(1.0 / 255, name="scale")(h)
    h = layers.Conv2D(widths[0], 5, strides=2, padding="same", use_bias=False, name="stem")(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.MaxPooling2D(2)(h)
    for i, w in enumerate(widths):
        stride = 1 if i == 0 else 2
        y = layers.Conv2D(w, 3, strides=stride, padding="same", use_bias=False)(h)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(w, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if stride != 1 or h.shape[-1] != w:
            h = layers.BatchNormalization()(layers.Conv2D(w, 1, strides=stride, use_bias=False)(h))
        h = layers.ReLU(name="last_conv" if i == len(widths) - 1 else None)(layers.Add()([h, y]))
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.3)(h)
    return keras.Model(inp, layers.Dense(num_classes, activation="softmax", name="out")(h), name=name)


def majority_accuracy(y_train, y_test) -> float:
    """Accuracy of always predicting the training part's majority class on the test part."""
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    return float(np.mean(y_test == np.bincount(y_train, minlength=2).argmax()))


def fit_unit(runs, name: str, x, y, tr, va, te, *, model: str, P: dict, seed: int, epochs: int | None = None):
    """Train one model (``"plain"``: the paper's CNN; ``"resnet"``: :func:`build_small_resnet` with
    augmentation) on ``x[tr]`` as a run unit: Adam, best epoch by validation loss restored (early
    stop after ``P['patience']`` epochs without a better validation loss), resumable. Returns the
    test metrics (:data:`SCALARS`), the history, ``best_epoch``, the majority-class accuracy and
    the test probabilities; the weights are kept in the unit (``model.weights.h5``), or ``None``
    when the budget is spent."""
    epochs = epochs or (P["epochs"] if model == "plain" else P["resnet_epochs"])
    settings = dict(model=model, input_size=P["input_size"], filters=P["filters"], dense=P["dense"],
                    dropout=P["dropout"], epochs=epochs, batch_size=P["batch_size"], lr=P["learning_rate"],
                    patience=P["patience"], v=2)

    def work(unit):
        train.set_seed(seed, deterministic=None)
        m = make_model(model, P, seed)
        m.compile(optimizer=keras.optimizers.Adam(P["learning_rate"]), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping("val_loss", patience=P["patience"])
        hist = train.fit(m, x[tr], y[tr], epochs=epochs, batch_size=P["batch_size"], validation_data=(x[va], y[va]),
                         callbacks=[stop], desc=name, checkpoint_dir=unit.checkpoint, seed=seed, restore_best="val_loss")
        m.save_weights(unit.path("model.weights.h5"))
        r = evaluate(m, x[te], y[te])
        return {**{k: r[k] for k in SCALARS}, "best_epoch": int(np.argmin(hist["val_loss"])) + 1,
                "majority accuracy": majority_accuracy(y[tr], y[te]), "proba": r["proba"], "hist": hist}

    return runs.run(name, work, settings=settings, data=(x[tr], y[tr], x[va], x[te]), seed=seed)


def make_model(model: str, P: dict, seed: int) -> keras.Model:
    shape = (P["input_size"], P["input_size"], 1)
    if model == "plain":
        return build_plain_cnn(shape, 2, tuple(P["filters"]), P["dense"], P["dropout"])
    if model == "resnet":
        return build_small_resnet(shape, 2, seed=seed)
    raise ValueError(f"model must be 'plain' or 'resnet', got {model!r}")


def load_unit_model(runs, name: str, x, y, tr, va, te, *, model: str, P: dict, seed: int, epochs: int | None = None):
    """The trained weights of a finished :func:`fit_unit` (for Grad-CAM), or ``None``."""
    epochs = epochs or (P["epochs"] if model == "plain" else P["resnet_epochs"])
    settings = dict(model=model, input_size=P["input_size"], filters=P["filters"], dense=P["dense"],
                    dropout=P["dropout"], epochs=epochs, batch_size=P["batch_size"], lr=P["learning_rate"],
                    patience=P["patience"], v=2)
    unit = runs.unit(name, settings, (x[tr], y[tr], x[va], x[te]), seed)
    if not (unit.dir / "model.weights.h5").is_file():
        return None
    m = make_model(model, P, seed)
    m.load_weights(unit.dir / "model.weights.h5")
    return m


def seed_table(results: dict) -> pd.DataFrame:
    """``{(model, seed): fit_unit result}`` -> one row per run and a ``mean ± sd`` row per model."""
    rows = {k: {m: r[m] for m in ("accuracy", "kappa", "AUC", "sensitivity", "specificity", "majority accuracy",
                                  "best_epoch", "n")} for k, r in results.items() if r is not None}
    df = pd.DataFrame(rows).T
    if df.empty:
        return df
    df.index.names = ["model", "seed"]
    out = []
    for model, sub in df.groupby(level=0, sort=False):
        out.append(sub)
        agg = {c: (f"{sub[c].astype(float).mean():.4f} ± {sub[c].astype(float).std(ddof=1):.4f}" if len(sub) > 1
                   else f"{float(sub[c].iloc[0]):.4f}") for c in sub.columns}
        out.append(pd.DataFrame([agg], index=pd.MultiIndex.from_tuples([(model, f"mean ± sd (n={len(sub)})")])))
    return pd.concat(out)
