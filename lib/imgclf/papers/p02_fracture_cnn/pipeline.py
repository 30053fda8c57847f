"""Paper 2's steps in the paper's order: prepare the X-rays (and find their copies), split them
(the data set's own split, and grouped folds that test every duplicate group once), train the plain
CNN (best epoch by validation loss), score it per image and per group beside a model with no CNN,
and look where it looks (Fig. 11).

The data layer (folder loader, duplicate groups, group-aware splits) lives in :mod:`imgclf.data`;
the models in :mod:`imgclf.models.cnns`. Each training run is a run unit::

    res = report.runs.cached(pipeline.fit_model, cfg=cfg, x=x, y=y, tr=tr, va=va, te=te, model="plain", seed=0)
    unit = report.runs.find(pipeline.fit_model, cfg=cfg, x=x, y=y, tr=tr, va=va, te=te, model="plain", seed=0)
    model = pipeline.load_model(unit, cfg, "plain", seed=0)      # for Grad-CAM
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from ... import data, train
from ...models.cnns import build_plain_cnn, build_small_resnet
from ...runs import Unit, current
from ...stats import summarize
from .config import Config

CLASSES = ["not fractured", "fractured"]  # label 1 = fractured = the positive class
MODELS = ("plain", "resnet")               # the paper's plain CNN; our small residual CNN (extra row)


# ------------------------------------------------------------------------------------------
# 1. Data: index and check every file, decode once, group the copies
# ------------------------------------------------------------------------------------------
def prepare(root: str | Path, cfg: Config, cache_dir: str | Path | None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Index ``root/<split>/<class>/<image>``, decode every image once, group the duplicates.

    Every file is checked first (:func:`imgclf.data.fracture_index`: class folders present and not
    empty; with the staged ``labels.csv``, each file's sha256). Returns ``(df, x, seconds)``: ``df``
    one row per file (``split``, ``class``, ``label``, ``path``, ``file``, ``sha256``, ``group`` =
    duplicate-group id from content only), ``x`` uint8 ``(n, input_size, input_size, 1)``
    grayscale, and the seconds each step took. Decoded arrays are cached in ``cache_dir``.
    """
    seconds = {}
    t = time.perf_counter()
    df = data.fracture_index(root, classes=CLASSES)  # every file checked against labels.csv when present
    seconds["index + sha256"] = time.perf_counter() - t
    t = time.perf_counter()
    x = data.load_images(df["file"], cfg.input_size, channels=1, cache_dir=cache_dir)
    x32 = thumbnails(df, x, cfg, cache_dir)
    seconds["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    angles = search_angles(cfg.dup_max_angle, cfg.dup_angle_step)
    df["group"] = data.duplicate_groups(x32, df["sha256"].to_numpy(), threshold=cfg.dup_threshold, angles=angles,
                                        crop=0.7, side=12)
    seconds["duplicate groups"] = time.perf_counter() - t
    return df, x, seconds


def thumbnails(df: pd.DataFrame, x: np.ndarray, cfg: Config, cache_dir: str | Path | None) -> np.ndarray:
    """The 32x32 grayscale images the duplicate searches compare (``x`` itself at 32 px)."""
    return x if cfg.input_size == 32 else data.load_images(df["file"], 32, channels=1, cache_dir=cache_dir)


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


# ------------------------------------------------------------------------------------------
# 2. Splits: the data set's own (leaky) split A, and group-disjoint splits B
# ------------------------------------------------------------------------------------------
def own_split(df: pd.DataFrame, cfg: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split A: ``train/`` less a stratified ``val_size`` for validation, and ``test/``.
    Returns ``(train, validation, test)`` row indices of ``df``."""
    y = df["label"].to_numpy()
    tr_all, te = np.flatnonzero(df["split"] == "train"), np.flatnonzero(df["split"] == "test")
    tr, va = train_test_split(tr_all, test_size=cfg.val_size, stratify=y[tr_all], random_state=cfg.seed)
    return tr, va, te


def group_folds(df: pd.DataFrame, cfg: Config) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Evaluation B, grouped cross-validation: ``train/`` and ``test/`` pooled, one file kept of
    each byte-identical set, then ``cfg.folds`` stratified group folds
    (:func:`imgclf.data.group_kfold`, seeded by ``cfg.seed``): every duplicate group is in the test
    part of exactly one fold; each fold's validation part (``cfg.val_size``) is group-disjoint
    too. Returns ``{fold: (train, validation, test)}`` row indices of ``df``; raises
    ``AssertionError`` if a group lands on two sides of a fold."""
    y, groups = df["label"].to_numpy(), df["group"].to_numpy()
    uniq = np.flatnonzero(~df["sha256"].duplicated().to_numpy())
    out = {}
    for k, parts in enumerate(data.group_kfold(y[uniq], groups[uniq], cfg.folds, cfg.val_size, cfg.seed)):
        tr, va, te = (uniq[i] for i in parts)
        sides = [set(groups[i]) for i in (tr, va, te)]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]), f"fold {k}: a group on two sides"
        out[k] = (tr, va, te)
    return out


def split_sizes(y: np.ndarray, groups: np.ndarray, split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> pd.DataFrame:
    """Images, fractured images and duplicate groups of each part of one split."""
    return pd.DataFrame({name: {"images": len(ix), "fractured": int(y[ix].sum()), "groups": len(set(groups[ix]))}
                         for name, ix in zip(("train", "validation", "test"), split)}).T


def independent_check(x32: np.ndarray, splits: Mapping[int, tuple], cfg: Config) -> tuple[pd.DataFrame, dict]:
    """Copies that still cross each fold (test part against training and validation parts), found
    by a method other than the grouping (:func:`imgclf.data.cross_split_copies`: rotation-invariant
    signature, then an exhaustive rotation search). Returns a table per fold and
    ``{fold: [(test i, train j, corr, angle), ...]}``."""
    rows, pairs = {}, {}
    for s, (tr, va, te) in splits.items():
        pairs[s] = data.cross_split_copies(x32, np.concatenate([tr, va]), te, threshold=cfg.dup_threshold,
                                           candidates=cfg.check_candidates)
        rows[s] = {"test images": len(te), "cross-split pairs found": len(pairs[s]),
                   "test images with a copy in train/validation": len({i for i, *_ in pairs[s]})}
    return pd.DataFrame(rows).T.rename_axis("fold"), pairs


# ------------------------------------------------------------------------------------------
# 3. Training: the plain CNN (and the small ResNet), best epoch by validation loss
# ------------------------------------------------------------------------------------------
def make_model(cfg: Config, model: str, seed: int) -> keras.Model:
    """``"plain"``: the paper's CNN (:func:`build_plain_cnn`); ``"resnet"``: :func:`build_small_resnet`."""
    shape = (cfg.input_size, cfg.input_size, 1)
    if model == "plain":
        return build_plain_cnn(shape, 2, tuple(cfg.filters), cfg.dense, cfg.dropout)
    if model == "resnet":
        return build_small_resnet(shape, 2, seed=seed)
    raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")


def fit_model(cfg: Config, x: np.ndarray, y: np.ndarray, tr, va, te, model: str, seed: int) -> dict:
    """Train ``model`` on ``x[tr]`` (a run unit: call it through ``runs.cached``): Adam,
    cross-entropy, early stop after ``cfg.patience`` epochs without a lower validation loss (on
    ``x[va]``), the best epoch's weights restored; resumable after a kill. Scores it on ``x[te]``.

    Returns the test metrics (:data:`SCALARS`), ``best_epoch`` (1-based), the majority-class
    accuracy of the same test part, the test probabilities of *fractured* and the history. The
    weights are kept in the unit (``model.weights.h5``, see :func:`load_model`).
    """
    epochs = cfg.epochs if model == "plain" else cfg.resnet_epochs
    unit = current()
    train.set_seed(seed, deterministic=None)
    m = make_model(cfg, model, seed)
    m.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping("val_loss", patience=cfg.patience)
    hist = train.fit(m, x[tr], y[tr], epochs=epochs, batch_size=cfg.batch_size, validation_data=(x[va], y[va]),
                     callbacks=[stop], desc=f"{model} seed {seed}", checkpoint_dir=unit.checkpoint if unit else None,
                     seed=seed, restore_best="val_loss")
    if unit is not None:
        m.save_weights(unit.path("model.weights.h5"))
    r = evaluate(m, x[te], y[te])
    return {**{k: r[k] for k in SCALARS}, "best_epoch": int(np.argmin(hist["val_loss"])) + 1,
            "majority accuracy": majority_accuracy(y[tr], y[te]), "proba": r["proba"], "hist": hist}


def load_model(unit: Unit | None, cfg: Config, model: str, seed: int) -> keras.Model | None:
    """The trained model of a finished :func:`fit_model` unit (``runs.find(fit_model, **same kwargs)``),
    or ``None`` when there is none."""
    if unit is None or not (unit.dir / "model.weights.h5").is_file():
        return None
    m = make_model(cfg, model, seed)
    m.load_weights(unit.dir / "model.weights.h5")
    return m


def epoch_log(hist: dict) -> pd.DataFrame:
    """The paper's per-epoch log (Fig. 7): seconds, loss, acc, val_loss, val_acc."""
    df = pd.DataFrame({"seconds": hist["epoch_time"], "loss": hist["loss"], "acc": hist["accuracy"],
                       "val_loss": hist["val_loss"], "val_acc": hist["val_accuracy"]})
    df.index = pd.RangeIndex(1, len(df) + 1, name="epoch")
    return df


# ------------------------------------------------------------------------------------------
# 4. Test metrics
# ------------------------------------------------------------------------------------------
SCALARS = ("accuracy", "sensitivity", "specificity", "AUC", "kappa", "n")


def evaluate(model, x, y) -> dict:
    """Binary test metrics of ``model`` on ``(x, y)``: :func:`evaluate_proba` of its predictions."""
    return evaluate_proba(y, model.predict(x, batch_size=256, verbose=0)[:, 1])


def evaluate_proba(y, proba, weights=None) -> dict:
    """Binary test metrics (fractured = 1 = positive) from the probabilities of *fractured*:
    accuracy, sensitivity, specificity, ROC AUC, Cohen's kappa (scikit-learn), plus the confusion
    matrix, the ROC curve, probabilities and predictions. ``weights`` (one per image, e.g.
    :func:`group_weights`) weight every metric; ``None``: each image counts once."""
    y, proba = np.asarray(y), np.asarray(proba, np.float64)
    pred = (proba >= 0.5).astype(int)
    both = len(np.unique(y)) == 2
    w = None if weights is None else np.asarray(weights, np.float64)
    fpr, tpr, _ = (skm.roc_curve(y, proba, sample_weight=w) if both
                   else (np.array([0.0, 1.0]), np.array([0.0, 1.0]), None))
    return {
        "accuracy": float(skm.accuracy_score(y, pred, sample_weight=w)),
        "sensitivity": float(skm.recall_score(y, pred, pos_label=1, zero_division=0, sample_weight=w)),
        "specificity": float(skm.recall_score(y, pred, pos_label=0, zero_division=0, sample_weight=w)),
        "AUC": float(skm.roc_auc_score(y, proba, sample_weight=w)) if both else float("nan"),
        "kappa": float(skm.cohen_kappa_score(y, pred, sample_weight=w)),
        "n": int(len(y)),
        "confusion": skm.confusion_matrix(y, pred, labels=[0, 1], sample_weight=w),
        "roc": (fpr, tpr),
        "proba": proba,
        "pred": pred,
    }


def majority_accuracy(y_train, y_test, w_train=None, w_test=None) -> float:
    """Accuracy of always predicting the training part's majority class on the test part; with
    weights (e.g. :func:`group_weights` of each part) the majority and the accuracy are weighted."""
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    majority = np.bincount(y_train, weights=w_train, minlength=2).argmax()
    return float(np.average(y_test == majority, weights=w_test))


def fold_summary(scores: Mapping[tuple[str, int], dict]) -> pd.DataFrame:
    """``{(model, fold): score(...)}`` -> one row per model, each metric a
    :class:`imgclf.stats.Summary` over the folds (mean, sd, n, 95 % interval; shown "mean ± sd")."""
    models = list(dict.fromkeys(m for m, _ in scores))
    rows = {}
    for model in models:
        done = [r for (m, _), r in scores.items() if m == model]
        rows[model] = {c: summarize([r[c] for r in done]) for c in done[0] if c not in ("n", "groups")}
    return pd.DataFrame(rows).T.rename_axis("model")


# ------------------------------------------------------------------------------------------
# 4b. Each group counts once; the cheapest explanation: a model with no CNN
# ------------------------------------------------------------------------------------------
def group_weights(groups) -> np.ndarray:
    """``1 / (members of the image's group among these images)``: weights under which every
    duplicate group counts once, however many copies it has."""
    _, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return 1.0 / counts[inv]


def score(y, groups, tr, te, proba) -> dict:
    """Test metrics of one fold from the probabilities of *fractured* on ``te``: image level (each
    image counts once) and group level (each duplicate group counts once, :func:`group_weights`),
    each beside its matching majority-class accuracy (majority of the training part, counted the
    same way)."""
    y, groups = np.asarray(y), np.asarray(groups)
    img = evaluate_proba(y[te], proba)
    grp = evaluate_proba(y[te], proba, weights=group_weights(groups[te]))
    out = {m: img[m] for m in SCALARS}
    out["majority accuracy"] = majority_accuracy(y[tr], y[te])
    out.update({f"{m} (groups)": grp[m] for m in ("accuracy", "sensitivity", "specificity", "AUC", "kappa")})
    out["groups"] = int(len(np.unique(groups[te])))
    out["majority accuracy (groups)"] = majority_accuracy(y[tr], y[te], group_weights(groups[tr]), group_weights(groups[te]))
    return out


NO_CNN_FEATURES = ("width", "height", "aspect", "log file bytes", "bytes per pixel", "PNG", ".jpeg extension", "RGB",
                   "mean", "sd", "5th percentile", "95th percentile")


def no_cnn_features(df: pd.DataFrame, x: np.ndarray) -> np.ndarray:
    """What a model could use without looking at bones: 8 file-metadata features (stored width,
    height, aspect, log file size, bytes per pixel, PNG or JPEG, ``.jpeg`` extension, RGB or gray)
    and 4 intensity statistics of the decoded grayscale image ``x`` (mean, sd, 5th and 95th
    percentile). Returns float64 ``(n, 12)`` (columns :data:`NO_CNN_FEATURES`); file names are not used."""
    from PIL import Image

    meta = []
    for f in df["file"]:
        with Image.open(f) as im:  # reads the header only
            w, h, fmt, mode = im.width, im.height, im.format, im.mode
        size = Path(f).stat().st_size
        meta.append([w, h, w / h, np.log(size), size / (w * h), fmt == "PNG", str(f).lower().endswith(".jpeg"),
                     mode not in ("L", "1", "I;16", "I", "F")])
    v = np.asarray(x, np.float64).reshape(len(x), -1)
    stats_ = np.stack([v.mean(1), v.std(1), np.percentile(v, 5, axis=1), np.percentile(v, 95, axis=1)], axis=1)
    return np.concatenate([np.asarray(meta, np.float64), stats_], axis=1)


def fit_no_cnn(features: np.ndarray, y, tr, va, te, seed: int) -> np.ndarray:
    """The no-CNN baseline of one fold: scikit-learn gradient boosting on :func:`no_cnn_features`,
    trained on the fold's training and validation parts (it needs no best epoch); returns the
    probabilities of *fractured* on ``te``."""
    from sklearn.ensemble import GradientBoostingClassifier

    fit = np.concatenate([tr, va])
    clf = GradientBoostingClassifier(random_state=seed).fit(features[fit], np.asarray(y)[fit])
    return clf.predict_proba(features[te])[:, list(clf.classes_).index(1)]


# ------------------------------------------------------------------------------------------
# 5. Fig. 11: Grad-CAM (HiResCAM for a Flatten-Dense head)
# ------------------------------------------------------------------------------------------
def grad_cam(model: keras.Model, images: np.ndarray, class_index: int | Sequence[int] | None = None,
             layer_name: str = "last_conv", method: str = "gradcam") -> np.ndarray:
    """Grad-CAM heat maps ``(n, h, w)`` in [0, 1] at the input's resolution.

    ``images`` ``(n, h, w, c)`` as the model takes them. For each image, the gradient of the
    chosen class score (``class_index``: one class for all, one per image, or ``None`` = the
    predicted class; the pre-softmax logit when the last layer is a softmax ``Dense``, as in the
    Grad-CAM paper, so a confident prediction does not make the gradient vanish) with respect to
    the feature maps of ``layer_name`` is averaged over space to weight the maps; the ReLU of the
    weighted sum, upsampled bilinearly and divided by its maximum, is the map (all zeros where no
    location supports the class).

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


def cam_where(cams: np.ndarray, images: np.ndarray, band: float = 0.1, bright: int = 230, dark: int = 10) -> dict:
    """Where the heat maps ``(n, h, w)`` put their mass: the share in the outer ``band`` of the
    image (its edges), on near-white pixels (``>= bright``: text markers, rulers, plates) and on
    near-black pixels (``<= dark``: background, the black corners of rotated copies), each beside
    the share of the area it covers (what a map spread evenly would give)."""
    cams = np.asarray(cams, np.float64)
    img = np.asarray(images, np.float64).reshape(cams.shape)
    h, w = cams.shape[1:]
    bh, bw = max(1, int(round(band * h))), max(1, int(round(band * w)))
    edge = np.ones((h, w), bool)
    edge[bh:h - bh, bw:w - bw] = False
    total = np.maximum(cams.sum(axis=(1, 2)), 1e-12)

    def share(mask):
        return float(np.mean((cams * mask).sum(axis=(1, 2)) / total))

    white, black = img >= bright, img <= dark
    return {"map on edges": share(edge), "edge area": float(edge.mean()),
            "map on near-white pixels": share(white), "near-white area": float(white.mean()),
            "map on near-black pixels": share(black), "near-black area": float(black.mean())}
