"""Paper 5's steps in the paper's order: data; weights; the two models and their parameter counts
(Tables 2 and 5); MobileNet's stratified k-fold CV over the learning rate and its final models
(Tables 7-10); ResNet50's CV over heads and its final model (Tables 11-13); step times and the two
models side by side (Table 14).

One code path serves two kinds of input:

* a pretrained base (ImageNet, or any weights file) is frozen: its output is computed once per
  image (:func:`inputs`, cached features) and a fresh copy of the trainable head is trained per fold;
* without pretrained weights (``"random"``) the whole network is trained from random
  initialisation on preprocessed images at a small input size (a frozen random base would be
  meaningless).

Every CV fold (:func:`cv_fold`) and every final retraining (:func:`final_fit`) is a run unit,
called through ``runs.cached`` with the config passed whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold

from ... import data, metrics, runs, train
from ...models import param_counts, transfer
from ...models.transfer import TransferModel
from .config import Config

ARCHS = {"mobilenet": "MobileNet", "resnet50": "ResNet50"}
NUM_CLASSES = 5


# ------------------------------------------------------------------------------------------
# 1. Data
# ------------------------------------------------------------------------------------------
def subset_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a stratified subset of ``n`` images (all of them when ``n`` >= their number)."""
    return np.sort(data.stratified_subset(np.arange(len(labels)), labels, n, seed)[0])


def load_data(cfg: Config):
    """``(train, test)`` :class:`~imgclf.data.ImageSet` of Linnaeus 5 (from its folder layout) or of
    the flowers stand-in (checksummed manifest), each a stratified subset of ``cfg.n_train`` /
    ``cfg.n_test`` images, and the full training split (for what the subset leaves out)."""
    if cfg.dataset == "linnaeus5":
        train_all, test_all = data.load_linnaeus5(cfg.data_dir, cfg.linnaeus_resolution)
    else:
        train_all, test_all = data.load_flowers(cfg.data_dir)
    train_set = train_all.subset(subset_indices(train_all.labels, cfg.n_train, cfg.seed))
    test_set = test_all.subset(subset_indices(test_all.labels, cfg.n_test, cfg.seed))
    return train_set, test_set, train_all


_IMAGES: dict = {}


def images(ds, size: int) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 RGB images of ``ds``, read once per set and size."""
    key = (tuple(map(str, ds.paths)), size)
    if key not in _IMAGES:
        _IMAGES[key] = data.read_images(ds, size)
    return _IMAGES[key]


# ------------------------------------------------------------------------------------------
# 2. Weights
# ------------------------------------------------------------------------------------------
def resolve_weights(cfg: Config) -> dict[str, tuple[str, str]]:
    """``arch -> (weights, why)`` from ``cfg.mobilenet_weights`` / ``cfg.resnet_weights``.

    ``weights`` is ``"imagenet"``, a weights file, or ``"random"`` when the ImageNet weights are
    neither in the Keras cache nor downloadable (the caller must then say loudly that the whole
    network trains from random initialisation)."""
    out = {}
    for arch, want in (("mobilenet", cfg.mobilenet_weights), ("resnet50", cfg.resnet_weights)):
        w, why = transfer.resolve_weights(arch, None if want == "random" else want)
        out[arch] = ("random" if w is None else str(w), why)
    return out


def input_size(cfg: Config, arch: str, weights: str) -> int:
    """The paper's input size for a pretrained base; the profile's small size for a network
    trained from random initialisation."""
    if weights == "random":
        return cfg.scratch_mobilenet_size if arch == "mobilenet" else cfg.scratch_resnet_size
    return cfg.mobilenet_size if arch == "mobilenet" else cfg.resnet_size


def held_out(cfg: Config, train_all, train_set):
    """The training-split images the subset leaves out (a stratified subset of at most
    ``cfg.pretrain_images``): neither a CV image nor a test image."""
    used = set(map(str, train_set.paths))
    rest = np.array([i for i, p in enumerate(train_all.paths) if str(p) not in used], dtype=np.int64)
    if len(rest) < 50:
        from ...config import ParameterError

        raise ParameterError(f"parameter 'pretrain_base': a base of our own needs training images outside the "
                             f"subset, and n_train={cfg.n_train} leaves {len(rest)} of {len(train_all)}: lower "
                             f"n_train or set pretrain_base='none'")
    pool = train_all.subset(rest)
    return pool.subset(subset_indices(pool.labels, cfg.pretrain_images, cfg.seed))


def _application_of(tm: TransferModel) -> keras.Model:
    """The no-top ``keras.applications`` model inside ``tm.model`` (what a weights file holds)."""
    return next(layer for layer in tm.model.layers if isinstance(layer, keras.Model))


def pretrain_base(cfg: Config, arch: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Run unit: the whole ``arch`` network (GAP + Dense 5 on top) trained from random weights,
    supervised, on ``x`` (uint8 ``(n, s, s, 3)`` held-out training images) with random horizontal
    flips, Adam at ``cfg.pretrain_lr`` decayed to 0 (cosine) over ``cfg.pretrain_epochs``; 10 % of
    ``x`` is held back to measure it. Keeps the no-top base as ``<arch>_base.weights.h5``: the file
    format of Keras' ImageNet no-top weights."""
    from sklearn.model_selection import train_test_split

    size = x.shape[1]
    tr, va = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y, random_state=cfg.seed)
    train.set_seed(cfg.seed)
    tm = build(arch, size, "random", head="linear", dropout=0.0)
    inp = keras.Input((size, size, 3), name="image")
    model = keras.Model(inp, tm.model(keras.layers.RandomFlip("horizontal", seed=cfg.seed)(inp)))
    steps = int(np.ceil(len(tr) / cfg.batch_size)) * cfg.pretrain_epochs
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(cfg.pretrain_lr, steps)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    xp = tm.preprocess(x.astype(np.float32))
    unit = runs.current()
    h = train.fit(model, xp[tr], y[tr], epochs=cfg.pretrain_epochs, batch_size=cfg.batch_size,
                  validation_data=(xp[va], y[va]), desc=f"{ARCHS[arch]} base pretraining",
                  checkpoint_dir=None if unit is None else unit.checkpoint, seed=cfg.seed)
    recalibrate_batchnorm(_application_of(tm), xp[tr])
    if unit is not None:
        _application_of(tm).save_weights(unit.path(f"{arch}_base.weights.h5"))
    # measured after the recalibration, as the frozen base is used: the history's last val_accuracy
    # ran on the lagging moving averages and sits at one class's share after a short training
    held_back = float(np.mean(np.argmax(model.predict(xp[va], verbose=0), axis=1) == y[va]))
    return {"history": h, "images": len(tr), "held back": len(va), "size": size,
            "held-back accuracy": held_back, "held-back accuracy before BN recalibration": float(h["val_accuracy"][-1]),
            "held-back majority": majority_accuracy(y[tr], y[va])}


def recalibrate_batchnorm(app: keras.Model, x: np.ndarray, batch_size: int = 512) -> None:
    """Set every BatchNormalization layer's moving mean and variance to the population statistics
    of ``x`` (preprocessed images), averaged over batches ("precise BN", Wu & Johnson 2021). A
    frozen base runs its BN layers in inference mode on these statistics; after a short training
    from scratch the moving averages still lag the weights, and the frozen base then maps every
    image to nearly the same features (measured: feature sd 2e-7 across images before, 0.54 after)."""
    bns = [layer for layer in app.layers if isinstance(layer, keras.layers.BatchNormalization)]
    trainable, momenta = app.trainable, [layer.momentum for layer in bns]
    app.trainable = True  # a non-trainable BN layer never updates its statistics
    sums = [[np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in bns]
    batches = range(0, len(x), batch_size)
    for start in batches:
        for layer in bns:
            layer.momentum = 0.0  # moving statistics := this batch's statistics
        app(x[start:start + batch_size], training=True)
        for acc, layer in zip(sums, bns):
            acc[0] += np.asarray(layer.moving_mean) / len(batches)
            acc[1] += np.asarray(layer.moving_variance) / len(batches)
    for layer, m, (mean, var) in zip(bns, momenta, sums):
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(var.astype("float32"))
        layer.momentum = m
    app.trainable = trainable


def own_bases(run_units, cfg: Config, weights: dict, train_all, train_set) -> dict:
    """Where ImageNet weights were asked for but cannot be had and ``cfg.pretrain_base`` is
    ``"supervised"``: pretrain the base (:func:`pretrain_base`, a run unit) on :func:`held_out`
    images and resolve its weights file exactly as a user's file is resolved. Updates ``weights``
    (``arch -> (weights, why)``) in place; returns ``arch -> pretraining record`` of those bases."""
    wanted = {"mobilenet": cfg.mobilenet_weights, "resnet50": cfg.resnet_weights}
    out = {}
    if cfg.pretrain_base == "none":
        return out
    pool = None
    for arch, (w, _) in list(weights.items()):
        if not (w == "random" and wanted[arch] == "imagenet"):
            continue
        pool = pool or held_out(cfg, train_all, train_set)
        kw = dict(name=f"{ARCHS[arch]} base pretraining", cfg=cfg, arch=arch,
                  x=images(pool, cfg.mobilenet_size if arch == "mobilenet" else cfg.resnet_size), y=pool.labels)
        rec = run_units.cached(pretrain_base, **kw)
        if rec is None:  # budget spent: stays without a base this run
            continue
        path = run_units.find(pretrain_base, **kw).path(f"{arch}_base.weights.h5")
        w, why = transfer.resolve_weights(arch, str(path))  # the path a user's weights file takes
        weights[arch] = (w, f"base pretrained by us (supervised, {rec['images']} held-out flowers training images, "
                            f"{cfg.pretrain_epochs} epochs at {rec['size']} px; held-back accuracy "
                            f"{rec['held-back accuracy']:.3f}): {why}")
        out[arch] = rec
    return out


# ------------------------------------------------------------------------------------------
# 3. The models (Tables 2 and 5)
# ------------------------------------------------------------------------------------------
def build(arch: str, size: int, weights: str, head: str | None = None, dropout: float = 0.05) -> TransferModel:
    """The paper's MobileNet (frozen base + Dense 5) or ResNet50 (last 4 layers trainable + dense
    ``head``); with ``weights="random"`` the whole network is trainable."""
    scratch = weights == "random"
    w = None if scratch else weights
    if arch == "mobilenet":
        return transfer.build_mobilenet(size, NUM_CLASSES, weights=w, train_base=scratch)
    return transfer.build_resnet50(size, NUM_CLASSES, weights=w, head=head or "1024-1024", dropout=dropout,
                                   train_base=scratch)


def parameter_counts(show_summaries: bool = True) -> pd.DataFrame:
    """Trainable and non-trainable parameters of the two models at the paper's input sizes and
    split (the counts do not depend on the weights), as Table 14 lists them."""
    counts = {}
    for name, tm in (("MobileNet", transfer.build_mobilenet(224, weights=None)),
                     ("ResNet50", transfer.build_resnet50(256, weights=None, head="1024-1024"))):
        counts[name] = param_counts(tm.model)
        if show_summaries:
            tm.model.summary(line_length=110, show_trainable=True)
    return pd.DataFrame(counts, index=["trainable params", "non-trainable params"]).T


def fresh_head(tm: TransferModel, seed: int) -> keras.Model:
    """A new copy of ``tm.head``: Dense layers freshly initialised (seeded), any trainable
    application layers (ResNet50's tail) starting from ``tm``'s (pre-trained) weights."""
    train.set_seed(seed, deterministic=None)
    head = keras.models.clone_model(tm.head)
    for layer, src in zip(head.layers, tm.head.layers):
        if layer.name.startswith("conv") and src.weights:
            layer.set_weights(src.get_weights())
        layer.trainable = src.trainable
    return head


def end_to_end(tm: TransferModel, head: keras.Model) -> keras.Model:
    """Images -> ``tm.features`` (frozen, run every step) -> ``head``: the uncached equivalent."""
    inp = keras.Input(tm.features.input.shape[1:], name="image")
    return keras.Model(inp, head(tm.features(inp)), name=f"{head.name}_end_to_end")


_BUILT: dict = {}


def _transfer_model(cfg: Config, arch: str, weights: str, head: str | None) -> TransferModel:
    """:func:`build` seeded with ``cfg.seed``, once per process for each set of arguments."""
    key = (arch, input_size(cfg, arch, weights), weights, head, cfg.resnet_dropout if arch == "resnet50" else None,
           cfg.seed)
    if key not in _BUILT:
        train.set_seed(cfg.seed, deterministic=None)
        with train.strategy().scope():  # MirroredStrategy when several GPUs are visible
            _BUILT[key] = build(arch, key[1], weights, head, cfg.resnet_dropout)
    return _BUILT[key]


_INITIAL: dict = {}


def initial_model(cfg: Config, arch: str, weights: str, head: str | None) -> Callable[[int], keras.Model]:
    """``make_model`` of one candidate: the whole network (``weights="random"``) or a fresh trainable
    head on cached features, always handed back in the same initial state (:func:`reusable`)."""
    key = (arch, input_size(cfg, arch, weights), weights, head, cfg.resnet_dropout, cfg.seed)
    if key not in _INITIAL:
        tm = _transfer_model(cfg, arch, weights, head)
        if weights == "random":
            model = tm.model
        else:
            with train.strategy().scope():
                model = fresh_head(tm, cfg.seed)
        _INITIAL[key] = reusable(model)
    return _INITIAL[key]


def forget_models() -> None:
    """Drop the models built so far (memory)."""
    _BUILT.clear()
    _INITIAL.clear()
    keras.backend.clear_session(free_memory=True)


def inputs(cfg: Config, arch: str, weights: str, train_set, test_set) -> tuple:
    """``(x_train, x_test)`` for one architecture: preprocessed images for a network trained from
    random initialisation, else the frozen part's output computed once per image
    (:func:`imgclf.models.transfer.extract_features`; for ResNet50 the two inputs of its tail)."""
    size = input_size(cfg, arch, weights)
    if weights == "random":
        pre = (keras.applications.mobilenet.preprocess_input if arch == "mobilenet"
               else keras.applications.resnet50.preprocess_input)
        return tuple(pre(images(s, size).astype(np.float32)) for s in (train_set, test_set))
    tm = _transfer_model(cfg, arch, weights, cfg.resnet_heads[0] if arch == "resnet50" else None)
    return tuple(transfer.extract_features(tm, images(s, size)) for s in (train_set, test_set))


# ------------------------------------------------------------------------------------------
# 4. Training: Adam, (staged) learning rates, models reset between folds
# ------------------------------------------------------------------------------------------
def take(x, idx):
    """Rows ``idx`` of an array or of every array in a list (multi-input features)."""
    return [a[idx] for a in x] if isinstance(x, (list, tuple)) else x[idx]


def n_rows(x) -> int:
    return len(x[0]) if isinstance(x, (list, tuple)) else len(x)


def lr_schedule(lrs: Sequence[float], epochs: int) -> keras.callbacks.Callback:
    """Piecewise-constant learning rate: ``lrs[i]`` for the i-th equal share of ``epochs``."""
    per = max(1, epochs // len(lrs))
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: float(lrs[min(epoch // per, len(lrs) - 1)]))


def compile_model(model: keras.Model, lr: float, sparse: bool) -> keras.Model:
    """Adam(lr) + (sparse) categorical cross-entropy. A model handed out by :func:`reusable` keeps
    its compiled (traced) training function: only its optimizer state is zeroed and lr set."""
    if getattr(model, "_imgclf_reusable", False) and getattr(model, "optimizer", None) is not None:
        opt = model.optimizer
        for v in opt.variables:
            if v is not getattr(opt, "_learning_rate", None):
                v.assign(np.zeros(v.shape, v.dtype))
        opt.learning_rate = lr
        return model
    loss = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    return model


def reusable(model: keras.Model) -> Callable[[int], keras.Model]:
    """``make_model`` that hands back ``model`` itself, every time reset to the state it has now
    (weights and dropout seeds: every fold starts from the same initial model; a test checks it
    gives what a fresh model gives) with a zeroed optimizer. Avoids rebuilding and re-tracing a
    model per fold and learning rate: for a small head on cached features that overhead, not the
    arithmetic, is most of the time."""
    # model.variables, not model.weights: the dropout layers' seed-generator states are variables
    # too, and a reused model must draw the dropout masks a fresh one draws.
    init = [(v, np.array(v)) for v in model.variables]
    model._imgclf_reusable = True

    def make(seed: int) -> keras.Model:
        for v, w in init:
            v.assign(w)
        return model

    return make


def _targets(y, sparse: bool, num_classes: int):
    return np.asarray(y) if sparse else keras.utils.to_categorical(y, num_classes)


def _fit(model, x, y, *, epochs, batch_size, validation_data, callbacks, desc, checkpoint_dir, seed) -> dict:
    clock = train.TrainingClock(None if checkpoint_dir is None else Path(checkpoint_dir) / "train_seconds.txt")
    h = train.fit(model, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                  callbacks=[*callbacks, clock], desc=desc, checkpoint_dir=checkpoint_dir, seed=seed)
    h["train_seconds"] = clock.seconds[: len(h["epoch_time"])]
    return h


def schedule(cfg: Config, arch: str) -> dict:
    """Epochs, loss and learning-rate stages of an architecture: MobileNet one lr per candidate and
    categorical cross-entropy; ResNet50 the lr stages and sparse categorical cross-entropy."""
    if arch == "mobilenet":
        return {"epochs": cfg.epochs, "sparse": False, "lr_stages": None}
    return {"epochs": cfg.resnet_epochs, "sparse": True, "lr_stages": tuple(cfg.resnet_lrs)}


# ------------------------------------------------------------------------------------------
# 5. Stratified k-fold CV (Tables 7, 8 and 11)
# ------------------------------------------------------------------------------------------
def fold_indices(y: np.ndarray, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, validation)`` index pairs of stratified ``folds``-fold CV (shuffled by ``seed``)."""
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), y))


def best_epoch_row(h: dict, batch_size: int, n_train: int) -> dict:
    """The fold's row of Tables 7/11: the numbers of the epoch with the highest validation accuracy
    (the first such epoch on a tie), its 1-based number, the fold's seconds and step times.

    ``step ms``: median training-phase time per step (validation excluded); ``epoch step ms``:
    median whole-epoch time (validation included) per training step, as Keras' progress bar
    prints it."""
    b = int(np.argmax(h["val_accuracy"]))
    steps = int(np.ceil(n_train / batch_size))
    train_s = h.get("train_seconds") or h["epoch_time"]
    return {"train accuracy": h["accuracy"][b], "val accuracy": h["val_accuracy"][b],
            "train loss": h["loss"][b], "val loss": h["val_loss"][b], "best epoch": b + 1,
            "seconds": float(sum(h["epoch_time"])), "step ms": 1000 * float(np.median(train_s)) / steps,
            "epoch step ms": 1000 * float(np.median(h["epoch_time"])) / steps}


def train_fold(make_model, x, y, tr, va, *, epochs: int, lr: float, sparse: bool = False, lr_stages=None,
               batch_size: int = 32, fold_seed: int = 0, num_classes: int = NUM_CLASSES, desc: str = "",
               callbacks: Sequence = (), checkpoint_dir=None) -> dict:
    """Train ``make_model(fold_seed)`` (compiled afresh, Adam state zeroed) on rows ``tr``,
    validate on ``va``; ``{"row": best_epoch_row, "history": per-epoch lists}``."""
    train.set_seed(fold_seed)
    with train.strategy().scope():
        model = compile_model(make_model(fold_seed), lr_stages[0] if lr_stages else lr, sparse)
    cbs = [lr_schedule(lr_stages, epochs)] if lr_stages else []
    h = _fit(model, take(x, tr), _targets(y[tr], sparse, num_classes), epochs=epochs, batch_size=batch_size,
             validation_data=(take(x, va), _targets(y[va], sparse, num_classes)),
             callbacks=[*cbs, *callbacks], desc=desc, checkpoint_dir=checkpoint_dir, seed=fold_seed)
    if not getattr(model, "_imgclf_reusable", False):
        del model
        keras.backend.clear_session(free_memory=True)
    return {"row": best_epoch_row(h, batch_size, len(tr)), "history": h}


FOLD_COLUMNS = ["train accuracy", "val accuracy", "train loss", "val loss", "best epoch", "seconds", "step ms",
                "epoch step ms"]


def fold_table(results: Sequence[dict | None], folds: int) -> pd.DataFrame:
    """One row per finished fold ``k`` (1-based; a fold the budget left out is missing) and an
    ``AVG`` row over them: the paper's Tables 7 and 11. ``attrs["complete"]``: every fold finished."""
    rows = [{"k": str(k), **r["row"]} for k, r in enumerate(results, start=1) if r is not None]
    df = pd.DataFrame(rows, columns=["k", *FOLD_COLUMNS]).set_index("k")
    if len(df):
        df.loc["AVG"] = df.mean(numeric_only=True)
    df.attrs["complete"] = len(rows) == folds
    return df


def cross_validate(make_model: Callable[[int], keras.Model], x, y: np.ndarray, *, folds: int, epochs: int,
                   lr: float, sparse: bool = False, lr_stages: Sequence[float] | None = None, batch_size: int = 32,
                   seed: int = 0, num_classes: int = NUM_CLASSES, desc: str = "",
                   callbacks: Sequence[keras.callbacks.Callback] = ()) -> tuple[pd.DataFrame, list[dict]]:
    """Stratified ``folds``-fold CV (:func:`fold_indices`) of ``make_model``, in this process (no
    run units; :func:`cv_fold` is the run unit the notebook uses, on the same :func:`train_fold`).
    Every fold starts from ``make_model(seed * 1000 + k)``; its best epoch is kept.

    Returns :func:`fold_table` and the per-fold histories."""
    res = [train_fold(make_model, x, y, tr, va, epochs=epochs, lr=lr, sparse=sparse, lr_stages=lr_stages,
                      batch_size=batch_size, fold_seed=seed * 1000 + k, num_classes=num_classes,
                      desc=f"{desc} fold {k}/{folds}", callbacks=callbacks)
           for k, (tr, va) in enumerate(fold_indices(y, folds, seed), start=1)]
    return fold_table(res, folds), [r["history"] for r in res]


def label(arch: str, head: str | None, lr: float | None) -> str:
    """``MobileNet lr=0.0001`` / ``ResNet50 1024-1024``: a candidate's readable name."""
    return f"{ARCHS[arch]} lr={lr:g}" if head is None else f"{ARCHS[arch]} {head}"


def cv_fold(cfg: Config, arch: str, weights: str, head: str | None, lr: float | None, x, y: np.ndarray,
            fold: int) -> dict:
    """Run unit: fold ``fold`` (1-based) of the CV of one candidate (MobileNet at learning rate
    ``lr``, or ResNet50 with ``head`` and the lr stages), from the candidate's initial model;
    an interrupted fold resumes from its last finished epoch."""
    tr, va = fold_indices(y, cfg.folds, cfg.seed)[fold - 1]
    make = initial_model(cfg, arch, weights, head)
    unit = runs.current()
    return train_fold(make, x, y, tr, va, lr=lr, batch_size=cfg.batch_size, fold_seed=cfg.seed * 1000 + fold,
                      desc=f"{label(arch, head, lr)} fold {fold}/{cfg.folds}",
                      checkpoint_dir=None if unit is None else unit.checkpoint, **schedule(cfg, arch))


def cross_validate_units(run_units, cfg: Config, arch: str, weights: str, head: str | None, lr: float | None,
                         x, y: np.ndarray) -> tuple[pd.DataFrame, list[dict]]:
    """Every fold of one candidate as a run unit (:func:`cv_fold`): reused when finished, left out
    (and missing from the table) when the budget is spent. Returns :func:`fold_table` and the
    histories of the finished folds."""
    res = [run_units.cached(cv_fold, name=f"{label(arch, head, lr)} fold {k}/{cfg.folds}", cfg=cfg, arch=arch,
                            weights=weights, head=head, lr=lr, x=x, y=y, fold=k)
           for k in range(1, cfg.folds + 1)]
    return fold_table(res, cfg.folds), [r["history"] for r in res if r is not None]


def select(run_units, cfg: Config, arch: str, weights: str, x, y: np.ndarray,
           candidates: dict) -> tuple[pd.DataFrame, dict, dict]:
    """CV of every candidate ``name -> (head, lr)``; returns the summary (one row per candidate:
    mean train/val accuracy and loss, step times, finished folds), the fold tables and histories.
    The best candidate is :func:`best_candidate`."""
    rows, tables, hists = {}, {}, {}
    cols = ["train accuracy", "val accuracy", "train loss", "val loss", "step ms", "epoch step ms"]
    for name, (head, lr) in candidates.items():
        tables[name], hists[name] = cross_validate_units(run_units, cfg, arch, weights, head, lr, x, y)
        t = tables[name]
        rows[name] = {**(t.loc["AVG", cols] if "AVG" in t.index else pd.Series(np.nan, index=cols)),
                      "folds done": len(t) - ("AVG" in t.index)}
    summary = pd.DataFrame(rows).T
    summary.index.name = "candidate"
    return summary, tables, hists


def best_candidate(summary: pd.DataFrame, folds: int):
    """The candidate with the highest mean validation accuracy among the fully cross-validated
    ones (``None`` when none is: a budget left folds out)."""
    done = summary[summary["folds done"] == folds]
    return None if done.empty else done["val accuracy"].astype(float).idxmax()


# ------------------------------------------------------------------------------------------
# 6. Final models: retrained on all training data, then the test split (Tables 8-10, 12, 13)
# ------------------------------------------------------------------------------------------
def fit_final(make_model: Callable[[int], keras.Model], x, y: np.ndarray, *, epochs: int, lr: float,
              sparse: bool = False, lr_stages: Sequence[float] | None = None, batch_size: int = 32, seed: int = 0,
              num_classes: int = NUM_CLASSES, validation_data=None, desc: str = "final",
              checkpoint_dir=None) -> tuple[keras.Model, dict]:
    """Train on all training data for ``epochs`` (the last epoch's model is kept).

    ``validation_data`` ``(x, y)`` is only monitored for the curves, never used for selection.
    The history gains ``step ms`` (median training-phase time per step, validation excluded) and
    ``epoch step ms`` (median epoch time, validation included, per training step).
    ``checkpoint_dir``: resume from the last finished epoch (see :func:`imgclf.train.fit`).
    """
    train.set_seed(seed)
    with train.strategy().scope():
        model = compile_model(make_model(seed), lr_stages[0] if lr_stages else lr, sparse)
    cbs = [lr_schedule(lr_stages, epochs)] if lr_stages else []
    val = None if validation_data is None else (validation_data[0], _targets(validation_data[1], sparse, num_classes))
    h = _fit(model, x, _targets(y, sparse, num_classes), epochs=epochs, batch_size=batch_size,
             validation_data=val, callbacks=cbs, desc=desc, checkpoint_dir=checkpoint_dir, seed=seed)
    steps = int(np.ceil(n_rows(x) / batch_size))
    h["step ms"] = 1000 * float(np.median(h["train_seconds"] or h["epoch_time"])) / steps
    h["epoch step ms"] = 1000 * float(np.median(h["epoch_time"])) / steps
    return model, h


def final_fit(cfg: Config, arch: str, weights: str, head: str | None, lr: float | None, x, y: np.ndarray,
              x_test, y_test: np.ndarray) -> dict:
    """Run unit: one candidate retrained on all training data (:func:`fit_final`), the test split
    monitored only; keeps ``model.weights.h5`` in the unit. Returns the history."""
    unit = runs.current()
    model, h = fit_final(initial_model(cfg, arch, weights, head), x, y, lr=lr, batch_size=cfg.batch_size,
                         seed=cfg.seed, validation_data=(x_test, y_test), desc=f"{label(arch, head, lr)} final",
                         checkpoint_dir=None if unit is None else unit.checkpoint, **schedule(cfg, arch))
    if unit is not None:
        model.save_weights(unit.path("model.weights.h5"))
    return h


def evaluate(model: keras.Model, x, y: np.ndarray, names: Sequence[str], sparse: bool = False,
             batch_size: int = 64) -> dict:
    """Loss, accuracy, probabilities, predictions, confusion matrix, per-class table, ROC/AUC."""
    proba = model.predict(x, batch_size=batch_size, verbose=0)
    pred = proba.argmax(1)
    k = len(names)
    onehot = keras.utils.to_categorical(y, k)
    loss = float(keras.losses.categorical_crossentropy(onehot, np.clip(proba, 1e-7, 1.0)).numpy().mean())
    return {
        "loss": loss,
        "accuracy": metrics.accuracy(y, pred),
        "proba": proba,
        "pred": pred,
        "confusion": confusion_matrix(y, pred, labels=np.arange(k)),
        "per_class": metrics.per_class_report(y, pred, labels=np.arange(k), names=names),
        "roc": metrics.roc_per_class(y, proba, names=names),
    }


def final(run_units, cfg: Config, arch: str, weights: str, head: str | None, lr: float | None, x, y: np.ndarray,
          x_test, y_test: np.ndarray, names: Sequence[str]) -> dict | None:
    """:func:`final_fit` as a run unit, its stored weights loaded (``runs.find``) and evaluated on
    the training and test splits; ``None`` when the budget is spent."""
    kw = dict(name=f"{label(arch, head, lr)} final", cfg=cfg, arch=arch, weights=weights, head=head, lr=lr,
              x=x, y=y, x_test=x_test, y_test=y_test)
    hist = run_units.cached(final_fit, **kw)
    if hist is None:
        return None
    model = initial_model(cfg, arch, weights, head)(cfg.seed)
    model.load_weights(run_units.find(final_fit, **kw).path("model.weights.h5"))
    return {"model": model, "history": hist, "train": evaluate(model, x, y, names),
            "test": evaluate(model, x_test, y_test, names)}


def report_final(report, tag: str, res: dict, paper_counts: pd.DataFrame, paper_metrics: pd.DataFrame,
                 fig_numbers: dict) -> pd.DataFrame:
    """Figures (curves, confusion train/test, ROC) and tables (TP/TN/FP/FN, per-class metrics,
    both beside the paper's) of one final model. Returns the per-class test table."""
    from ... import plots
    from ...reports import side_by_side

    n = fig_numbers
    report.figure(plots.history(res["history"], title=f"{tag} final (validation = test, monitor only)"),
                  f"fig{n['curves']}_{tag}_final_curves")
    names = list(res["test"]["per_class"].index[:-1])
    for split in ("train", "test"):
        report.figure(plots.confusion(res[split]["confusion"], names, title=f"{tag}: confusion matrix ({split})"),
                      f"fig{n[split]}_{tag}_confusion_{split}")
    report.figure(plots.roc(res["test"]["roc"], title=f"{tag}: ROC one vs rest (test)"), f"fig{n['roc']}_{tag}_roc")
    pc = res["test"]["per_class"]
    report.table(pc, f"{tag}_per_class_test")
    ours_counts = pc.loc[names, ["TP", "TN", "FP", "FN"]].reset_index(drop=True)
    ours_metrics = pc.loc[names, ["precision", "recall", "specificity", "accuracy", "F1"]].reset_index(drop=True)
    pos = pd.Index([f"{i}: paper {p} / ours {o}" for i, (p, o) in enumerate(zip(paper_counts.index, names))],
                   name="class")
    for ours, pap, name in ((ours_counts, paper_counts, "counts"), (ours_metrics, paper_metrics, "metrics")):
        p = pap.reset_index(drop=True).set_axis(pos)
        o = ours.astype(float).set_axis(pos)
        report.comparison(side_by_side(p, o), f"{tag}_{name}_paper_vs_ours")
    report.table(pd.DataFrame({k: {"AUC": v[2]} for k, v in res["test"]["roc"].items()}).T, f"{tag}_auc_test")
    return pc


def table8(summary: pd.DataFrame, finals: dict) -> pd.DataFrame:
    """Table 8: CV means per learning rate beside the test accuracy and loss of that learning rate
    retrained on all training data (NaN where the budget left it out)."""
    t8 = summary[["train accuracy", "val accuracy", "train loss", "val loss"]].astype(float).copy()
    for lr, res in finals.items():
        t8.loc[lr, ["test accuracy", "test loss"]] = ([res["test"]["accuracy"], res["test"]["loss"]] if res
                                                      else [np.nan] * 2)
    t8.index.name = "lr"
    return t8


# ------------------------------------------------------------------------------------------
# The cheapest baseline: always the most frequent class
# ------------------------------------------------------------------------------------------
def majority_accuracy(y_train, y_eval) -> float:
    """Accuracy on ``y_eval`` of always answering the most frequent class of ``y_train`` (the
    lowest label on a tie): what a model that learned nothing but the class shares scores."""
    return float(np.mean(np.asarray(y_eval) == np.bincount(np.asarray(y_train)).argmax()))


def majority_folds(cfg: Config, y: np.ndarray) -> pd.DataFrame:
    """The majority-class baseline on the CV's own folds: per fold ``k`` its train and validation
    accuracy (the class learned on the fold's training part)."""
    rows = {str(k): {"train accuracy": majority_accuracy(y[tr], y[tr]), "val accuracy": majority_accuracy(y[tr], y[va])}
            for k, (tr, va) in enumerate(fold_indices(y, cfg.folds, cfg.seed), start=1)}
    return pd.DataFrame(rows).T.rename_axis("k")


def versus_majority(folds: pd.DataFrame, majority: pd.DataFrame, name: str):
    """:func:`imgclf.stats.paired` validation accuracy of ``name`` minus the majority class's, over
    the same folds (``None`` when a fold is missing)."""
    from ... import stats

    ks = [k for k in majority.index if k in folds.index]
    if len(ks) < len(majority):
        return None
    return stats.paired(folds.loc[ks, "val accuracy"].astype(float).to_numpy(),
                        majority.loc[ks, "val accuracy"].to_numpy(), names=(name, "majority class"))


MAJORITY = "majority class"


def with_majority(table: pd.DataFrame, majority: pd.DataFrame, test_accuracy: float) -> pd.DataFrame:
    """``table`` (Table 8 or 14) with a ``majority class`` row: its CV means where the table has
    CV columns and its test accuracy; losses and the rest are left empty."""
    row = {c: np.nan for c in table.columns}
    for c in ("train accuracy", "val accuracy"):
        if c in table.columns:
            row[c] = float(majority[c].mean())
    row["test accuracy"] = test_accuracy
    out = table.copy()
    out.loc[MAJORITY] = row
    return out


def margin_table(models: dict, majority: pd.DataFrame, majority_test: float) -> pd.DataFrame:
    """Per model ``name -> (CV fold table or None, final result or None)``: its CV validation
    accuracy, the paired difference to the majority class over the same folds (mean, 95 %
    interval, verdict) and its test accuracy minus the majority class's."""
    rows = {}
    for name, (folds, fin) in models.items():
        d = None if folds is None else versus_majority(folds, majority, name)
        test = np.nan if fin is None else float(fin["test"]["accuracy"])
        rows[name] = {
            "CV val accuracy": np.nan if d is None else float(folds.loc[majority.index, "val accuracy"].mean()),
            "majority CV val accuracy": float(majority["val accuracy"].mean()),
            "CV difference": np.nan if d is None else d.diff.mean,
            "CV difference 95% low": np.nan if d is None else d.diff.lo,
            "CV difference 95% high": np.nan if d is None else d.diff.hi,
            "folds": np.nan if d is None else d.diff.n,
            "verdict": "missing folds" if d is None else d.verdict(),
            "test accuracy": test, "majority test accuracy": majority_test, "test margin": test - majority_test}
    return pd.DataFrame(rows).T.rename_axis("model")


def scratch_lr_note(cfg: Config, arch: str, weights: str) -> str | None:
    """Which learning rates cannot train ``arch`` from random initialisation in this run's epochs:
    the paper's rates and stages are for a pretrained base. ``None`` with a pretrained base."""
    if weights != "random":
        return None
    if arch == "mobilenet":
        low = [f"{lr:g}" for lr in cfg.learning_rates if lr <= 1e-5]
        return (f"MobileNet from random initialisation: learning rates {', '.join(low)} cannot train a whole network "
                f"from scratch in {cfg.epochs} epochs (they are rates for a head on a pretrained base); their rows "
                "measure an untrained network") if low else None
    per = max(1, cfg.resnet_epochs // len(cfg.resnet_lrs))
    return (f"ResNet50 from random initialisation with the paper's fine-tuning stages "
            f"{', '.join(f'{lr:g}' for lr in cfg.resnet_lrs)} ({per} epoch(s) each): after the first stage the rates "
            "are too small for a network trained from scratch to learn; these rows are not a measure of ResNet50")


# ------------------------------------------------------------------------------------------
# 7. Step times and the two models side by side (Table 14)
# ------------------------------------------------------------------------------------------
def step_time(model: keras.Model, input_shape: Sequence[int], batch_size: int, steps: int, lr: float = 1e-4,
              sparse: bool = False, num_classes: int = NUM_CLASSES, seed: int = 0) -> float:
    """Median seconds per training step of ``model`` on random images (after one warm-up step)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch_size, *input_shape)).astype(np.float32)
    y = _targets(rng.integers(0, num_classes, batch_size), sparse, num_classes)
    compile_model(model, lr, sparse)
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def paper_step_times(cfg: Config) -> dict[str, float]:
    """Seconds per training step of the paper's configuration on this machine: the whole network
    (frozen base run every step, no cache) at 224 / 256 px, batch ``cfg.step_time_batch``."""
    out = {}
    for name, tm in (("MobileNet", transfer.build_mobilenet(224, weights=None)),
                     ("ResNet50", transfer.build_resnet50(256, weights=None, head="1024-1024"))):
        out[name] = step_time(tm.model, (tm.input_size,) * 2 + (3,), cfg.step_time_batch, cfg.step_time_steps,
                              sparse=name == "ResNet50", seed=cfg.seed)
    return out


def step_table(cfg: Config, paper_steps: dict, finals: dict, scratch: bool) -> pd.DataFrame:
    """The four step times of each model (ms): the paper's configuration here, the paper's, ours as
    trained (training phase only), ours per epoch with validation; and what validation adds."""
    def get(f, k):
        return np.nan if f is None else f["history"][k]

    steps = pd.DataFrame({
        f"paper's configuration here: full network, training step (ms, batch {cfg.step_time_batch})":
            [1000 * paper_steps[m] for m in finals],
        "paper: full network, Keras ms/step (ms, batch 32)": [176, 2000],
        f"ours as trained ({'whole network, small input' if scratch else 'cached features'}), training only "
        f"(ms, batch {cfg.batch_size})": [get(f, "step ms") for f in finals.values()],
        "ours as trained, epoch incl. validation / steps (ms)": [get(f, "epoch step ms") for f in finals.values()],
    }, index=list(finals))
    steps["validation adds (x)"] = steps.iloc[:, 3] / steps.iloc[:, 2]
    return steps


def table14(finals: dict, paper_steps: dict, counts: pd.DataFrame) -> pd.DataFrame:
    """Table 14: test accuracy and loss of the two final models, the paper-configuration step time
    (s) and the parameter counts."""
    def acc(f, k):
        return np.nan if f is None else f["test"][k]

    return pd.DataFrame({
        "test accuracy": [acc(finals[m], "accuracy") for m in ARCHS.values()],
        "test loss": [acc(finals[m], "loss") for m in ARCHS.values()],
        "step time (s)": [paper_steps[m] for m in ARCHS.values()],  # full network, like the paper's
        "trainable params": [counts.loc[m, "trainable params"] for m in ARCHS.values()],
        "non-trainable params": [counts.loc[m, "non-trainable params"] for m in ARCHS.values()]},
        index=pd.Index(list(ARCHS.values()), name="model"))
