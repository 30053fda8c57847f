"""Paper 5's protocol: stratified k-fold CV of transfer-learning heads, retraining, evaluation.

Works on two kinds of input with one code path:

* cached features (:func:`imgclf.models.transfer.extract_features`) and a fresh copy of the
  trainable head per fold (:func:`fresh_head`), when the base is frozen;
* preprocessed images and a whole network built per fold, when the whole network is trained
  (no ImageNet weights: a frozen *random* base would be meaningless).

Both are driven by a ``make_model(fold_seed) -> keras.Model`` callable.
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

from .. import config, metrics, train
from ..models import param_counts
from ..models.transfer import TransferModel


def take(x, idx):
    """Rows ``idx`` of an array or of every array in a list (multi-input features)."""
    return [a[idx] for a in x] if isinstance(x, (list, tuple)) else x[idx]


def n_rows(x) -> int:
    return len(x[0]) if isinstance(x, (list, tuple)) else len(x)


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
    """``make_model`` for :func:`cross_validate` that hands back ``model`` itself, every time reset
    to the state it has now (weights and dropout seeds: every fold starts from the same initial
    head; ``tests/test_p05_cv.py`` checks it gives what a fresh model gives) with a zeroed
    optimizer. Avoids rebuilding and re-tracing a model per fold and learning rate: for a small
    head on cached features that overhead, not the arithmetic, is most of the time."""
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


def _fit(model, x, y, *, epochs, batch_size, validation_data, callbacks, desc, checkpoint_dir, seed) -> dict:
    clock = train.TrainingClock(None if checkpoint_dir is None else Path(checkpoint_dir) / "train_seconds.txt")
    h = train.fit(model, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                  callbacks=[*callbacks, clock], desc=desc, checkpoint_dir=checkpoint_dir, seed=seed)
    h["train_seconds"] = clock.seconds[: len(h["epoch_time"])]
    return h


def _run_or_call(runs, name, work, settings, data, seed):
    """``runs.run(...)`` when there are run units, else ``work(None)`` (no checkpoint)."""
    if runs is None:
        return work(None)
    return runs.run(name, work, settings=settings, data=data, seed=seed)


def cross_validate(
    make_model: Callable[[int], keras.Model],
    x,
    y: np.ndarray,
    *,
    folds: int,
    epochs: int,
    lr: float,
    sparse: bool = False,
    lr_stages: Sequence[float] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    num_classes: int = 5,
    desc: str = "",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    runs=None,
    settings: dict | None = None,
    data_key: str | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Stratified ``folds``-fold CV (:func:`fold_indices`); per fold the best epoch (highest
    validation accuracy, :func:`best_epoch_row`) is kept. Every fold starts from
    ``make_model(seed * 1000 + k)`` compiled afresh (Adam state zeroed).

    With ``runs`` (:class:`imgclf.runs.Runs`) every fold is a run unit keyed by ``settings``,
    the fold's data and seed: a finished fold is reused, an interrupted one resumes from its last
    finished epoch, and a fold the budget leaves out is missing from the table.

    Returns a table with one row per finished fold ``k`` (1-based) and an ``AVG`` row (over the
    finished folds), columns ``train accuracy, val accuracy, train loss, val loss, best epoch,
    seconds, step ms, epoch step ms`` (the paper's Tables 7 and 11), and the per-fold histories.
    """
    rows, hists = [], []
    if runs is not None and data_key is None:
        from ..runs import fingerprint

        data_key = fingerprint(x, y)
    for k, (tr, va) in enumerate(fold_indices(y, folds, seed), start=1):
        fold_seed = seed * 1000 + k

        def work(unit, tr=tr, va=va, k=k, fold_seed=fold_seed):
            train.set_seed(fold_seed)
            with train.strategy().scope():
                model = compile_model(make_model(fold_seed), lr_stages[0] if lr_stages else lr, sparse)
            cbs = [lr_schedule(lr_stages, epochs)] if lr_stages else []
            h = _fit(model, take(x, tr), _targets(y[tr], sparse, num_classes), epochs=epochs, batch_size=batch_size,
                     validation_data=(take(x, va), _targets(y[va], sparse, num_classes)),
                     callbacks=[*cbs, *callbacks], desc=f"{desc} fold {k}/{folds}",
                     checkpoint_dir=None if unit is None else unit.checkpoint, seed=fold_seed)
            if not getattr(model, "_imgclf_reusable", False):
                del model
                keras.backend.clear_session(free_memory=True)
            return {"row": best_epoch_row(h, batch_size, len(tr)), "history": h}

        st = dict(settings or {}, folds=folds, fold=k, epochs=epochs, lr=lr, lr_stages=lr_stages,
                  batch_size=batch_size, sparse=sparse)
        res = _run_or_call(runs, f"{desc} fold {k}/{folds}", work, st, (data_key, tr, va), fold_seed)
        if res is None:
            continue
        rows.append({"k": str(k), **res["row"]})
        hists.append(res["history"])
    cols = ["train accuracy", "val accuracy", "train loss", "val loss", "best epoch", "seconds", "step ms",
            "epoch step ms"]
    df = pd.DataFrame(rows, columns=["k", *cols]).set_index("k")
    if len(df):
        df.loc["AVG"] = df.mean(numeric_only=True)
    df.attrs["complete"] = len(rows) == folds
    return df, hists


def fit_final(
    make_model: Callable[[int], keras.Model],
    x,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    sparse: bool = False,
    lr_stages: Sequence[float] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    num_classes: int = 5,
    validation_data=None,
    desc: str = "final",
    checkpoint_dir=None,
) -> tuple[keras.Model, dict]:
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


def step_time(model: keras.Model, input_shape: Sequence[int], batch_size: int, steps: int, lr: float = 1e-4,
              sparse: bool = False, num_classes: int = 5, seed: int = 0) -> float:
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


# ------------------------------------------------------------------------------------------
# Notebook 05 drivers: inputs per architecture, CV over candidates, final model and its report
# ------------------------------------------------------------------------------------------
class Inputs:
    """Images read once per input size, frozen-base features computed once per (model, size)."""

    def __init__(self, train_set, test_set):
        self.sets = {"train": train_set, "test": test_set}
        self._images: dict = {}
        self._features: dict = {}

    def images(self, split: str, size: int) -> np.ndarray:
        from ..data import read_images

        if (split, size) not in self._images:
            self._images[split, size] = read_images(self.sets[split], size)
        return self._images[split, size]

    def prepare(self, arch: str, weights, size: int, seed: int = 0, head: str = "1024-1024",
                dropout: float = 0.05) -> dict:
        """``x_train``, ``x_test`` and a reusable ``make_model`` for one candidate.

        With ``weights`` (ImageNet or a file): frozen base, features cached, head trained. With
        ``weights=None``: the whole network from random initialisation on preprocessed images.
        """
        from ..models import transfer

        from ..runs import fingerprint

        scratch = weights is None
        kw = dict(head=head, dropout=dropout) if arch == "resnet50" else {}
        build = transfer.build_resnet50 if arch == "resnet50" else transfer.build_mobilenet
        train.set_seed(seed, deterministic=None)
        with train.strategy().scope():  # MirroredStrategy when several GPUs are visible
            tm = build(size, weights=weights, train_base=scratch, **kw)
        if scratch:
            x = {s: tm.preprocess(self.images(s, size).astype(np.float32)) for s in ("train", "test")}
            model = tm.model
        else:
            key = (arch, size, str(weights))
            if key not in self._features:
                t0 = time.perf_counter()
                self._features[key] = {s: transfer.extract_features(tm, self.images(s, size)) for s in ("train", "test")}
                self._features[key]["seconds"] = time.perf_counter() - t0
            x = self._features[key]
            with train.strategy().scope():
                model = fresh_head(tm, seed)
        return {"x_train": x["train"], "x_test": x["test"], "make_model": reusable(model), "tm": tm,
                "full_counts": param_counts(tm.model),
                "data_key": fingerprint(arch, size, str(weights), head, dropout, seed, x["train"], self.sets["train"].labels)}


def select(cands: dict, y: np.ndarray, *, folds: int, epochs: int, batch_size: int, seed: int,
           sparse: bool = False, lr_stages=None, runs=None, settings: dict | None = None
           ) -> tuple[pd.DataFrame, dict, dict]:
    """CV of every candidate ``name -> dict(prepared inputs, lr=...)``; returns the summary (one
    row per candidate: mean train/val accuracy and loss, step times, finished folds), per-candidate
    fold tables and histories. The best candidate has the highest mean validation accuracy among
    those whose folds all finished (:func:`best_candidate`). With ``runs`` each fold of each
    candidate is a run unit (``settings`` + the candidate's name and lr in its key)."""
    rows, tables, hists = {}, {}, {}
    cols = ["train accuracy", "val accuracy", "train loss", "val loss", "step ms", "epoch step ms"]
    for name, c in cands.items():
        st = dict(settings or {}, candidate=str(name), lr=c.get("lr", 1e-3))
        tables[name], hists[name] = cross_validate(
            c["make_model"], c["x_train"], y, folds=folds, epochs=epochs, lr=c.get("lr", 1e-3), sparse=sparse,
            lr_stages=lr_stages, batch_size=batch_size, seed=seed, desc=str(name), runs=runs, settings=st,
            data_key=c.get("data_key"))
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


def final_and_evaluate(c: dict, y_train, y_test, names, *, epochs: int, batch_size: int, seed: int,
                       sparse: bool = False, lr_stages=None, desc: str = "final", runs=None,
                       settings: dict | None = None) -> dict | None:
    """Retrain candidate ``c`` on all training data; evaluate on train and test.

    With ``runs`` the retraining is a run unit: its weights are stored in the unit
    (``model.weights.h5``) and loaded again when it is reused; ``None`` when the budget is spent.
    """
    if runs is None:
        model, hist = fit_final(c["make_model"], c["x_train"], y_train, epochs=epochs, lr=c.get("lr", 1e-3),
                                sparse=sparse, lr_stages=lr_stages, batch_size=batch_size, seed=seed,
                                validation_data=(c["x_test"], y_test), desc=desc)
    else:
        from ..runs import fingerprint

        def work(unit):
            m, h = fit_final(c["make_model"], c["x_train"], y_train, epochs=epochs, lr=c.get("lr", 1e-3),
                             sparse=sparse, lr_stages=lr_stages, batch_size=batch_size, seed=seed,
                             validation_data=(c["x_test"], y_test), desc=desc, checkpoint_dir=unit.checkpoint)
            m.save_weights(unit.path("model.weights.h5"))
            return h

        st = dict(settings or {}, final=True, epochs=epochs, lr=c.get("lr", 1e-3), lr_stages=lr_stages,
                  batch_size=batch_size, sparse=sparse)
        dk = c.get("data_key") or fingerprint(c["x_train"], y_train)
        hist = runs.run(desc, work, settings=st, data=(dk, fingerprint(c["x_test"], y_test)), seed=seed)
        if hist is None:
            return None
        model = c["make_model"](seed)
        model.load_weights(runs.unit(desc, st, (dk, fingerprint(c["x_test"], y_test)), seed).path("model.weights.h5"))
    return {"model": model, "history": hist, "train": evaluate(model, c["x_train"], y_train, names),
            "test": evaluate(model, c["x_test"], y_test, names)}


def report_final(report, tag: str, res: dict, paper_counts: pd.DataFrame, paper_metrics: pd.DataFrame,
                 fig_numbers: dict) -> pd.DataFrame:
    """Figures (curves, confusion train/test, ROC) and tables (TP/TN/FP/FN, per-class metrics,
    both beside the paper's) of one final model. Returns the per-class test table."""
    from .. import plots
    from ..reports import side_by_side

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


# ------------------------------------------------------------------------------------------
# Profiles: "smoke" runs the notebook on a 2-core CPU in minutes, "paper" at the paper's scale
# ------------------------------------------------------------------------------------------
NOTEBOOK = "05_linnaeus_transfer"

TITLE = "MobileNet and ResNet50 transfer learning (Linnaeus 5)"

RULES = {
    "learning_rates": config.POSITIVE, "resnet_lrs": config.POSITIVE, "resnet_dropout": config.DROPOUT,
    "folds": config.Range(2, None),
}


def _choice(options):
    def check(name, value):
        config.OneOf(tuple(options)).check(name, value)
        return value
    return check


def _weights(name, value):
    """\"imagenet\", None (random) or an existing weights file (a mistyped path stops the run)."""
    if value in ("imagenet", None):
        return value
    return config.existing_file_or_none(name, value)


EXTRA_PARAMETERS = {
    "dataset": ("flowers", _choice(("flowers", "linnaeus5"))),
    "linnaeus_resolution": (None, _choice((None, 256, 128, 64, 32))),
    "mobilenet_weights": ("imagenet", _weights),
    "resnet_weights": ("imagenet", _weights),
}

PROFILES: dict[str, dict] = {
    "smoke": dict(
        n_train=250,                 # stratified subset of the training split
        n_test=150,
        mobilenet_size=224,          # input size with ImageNet weights (frozen base, cached features)
        resnet_size=256,
        scratch_mobilenet_size=64,   # input size when there are no ImageNet weights (whole network trained)
        scratch_resnet_size=32,
        folds=2,
        epochs=2,
        learning_rates=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        batch_size=32,
        resnet_epochs=2,
        resnet_lrs=[1e-3, 1e-4, 1e-5, 1e-6],
        resnet_heads=["1024-1024", "256", "linear"],
        resnet_dropout=0.05,
        step_time_batch=32,          # the paper's batch (Keras default): like-for-like step times
        step_time_steps=2,
    ),
    "paper": dict(
        n_train=1_000_000,
        n_test=1_000_000,
        mobilenet_size=224,
        resnet_size=256,
        scratch_mobilenet_size=128,
        scratch_resnet_size=128,
        folds=5,
        epochs=20,
        learning_rates=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        batch_size=32,
        resnet_epochs=20,
        resnet_lrs=[1e-3, 1e-4, 1e-5, 1e-6],
        resnet_heads=["1024-1024", "256", "linear"],
        resnet_dropout=0.05,
        step_time_batch=32,
        step_time_steps=5,
    ),
}


# ------------------------------------------------------------------------------------------
# The paper's published numbers (typed in from shared/papers/)
# ------------------------------------------------------------------------------------------
CLASSES = ["berry", "bird", "dog", "flower", "other"]

TABLE7 = pd.DataFrame(
    {
        "train accuracy": [0.9806, 0.9829, 0.9796, 0.9804, 0.9760, 0.9799],
        "val accuracy": [0.9617, 0.9617, 0.9675, 0.9633, 0.9633, 0.9635],
        "train loss": [0.0762, 0.0675, 0.0809, 0.0714, 0.0865, 0.0765],
        "val loss": [0.1183, 0.1249, 0.1126, 0.1127, 0.1178, 0.1173],
    },
    index=pd.Index(["1", "2", "3", "4", "5", "AVG"], name="k"),
)
"""Table 7: MobileNet, lr 1e-4, best epoch of each CV fold."""

TABLE8 = pd.DataFrame(
    {
        "train accuracy": [0.9635, 0.9678, 0.9799, 0.9528, 0.9449],
        "val accuracy": [0.9502, 0.9528, 0.9635, 0.9599, 0.9460],
        "test accuracy": [0.9465, 0.9562, 0.9670, 0.9602, 0.9545],
        "train loss": [0.0903, 0.0817, 0.0765, 0.1397, 0.1488],
        "val loss": [0.1263, 0.1286, 0.1173, 0.1328, 0.1437],
        "test loss": [0.1335, 0.1275, 0.1150, 0.1294, 0.1349],
    },
    index=pd.Index([1e-2, 1e-3, 1e-4, 1e-5, 1e-6], name="lr"),
)
"""Table 8: MobileNet CV averages per learning rate, and test after retraining."""

TABLE9 = pd.DataFrame(
    {"TP": [383, 391, 395, 384, 381], "TN": [1577, 1596, 1596, 1586, 1579],
     "FP": [23, 4, 4, 14, 21], "FN": [17, 9, 5, 16, 19]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 9: MobileNet test-set TP/TN/FP/FN (2,000 test images)."""

TABLE10 = pd.DataFrame(
    {"precision": [0.94, 0.99, 0.99, 0.96, 0.95], "recall": [0.96, 0.98, 0.99, 0.96, 0.95],
     "specificity": [0.98, 0.99, 0.99, 0.99, 0.98], "accuracy": [0.98, 0.99, 0.99, 0.98, 0.98],
     "F1": [0.95, 0.98, 0.99, 0.96, 0.95]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 10 (= Table 15, MobileNet): per-class test metrics."""

TABLE11 = pd.DataFrame(
    {
        "train accuracy": [0.9925, 0.9925, 0.9946, 0.9954, 0.9925],
        "val accuracy": [0.9758, 0.9742, 0.9717, 0.9633, 0.9650],
        "train loss": [0.3579, 0.3576, 0.3488, 0.3591, 0.3749],
        "val loss": [0.3281, 0.3505, 0.3563, 0.3684, 0.3512],
    },
    index=pd.Index(["1", "2", "3", "4", "5"], name="k"),
)
"""Table 11: ResNet50 (best head), CV folds."""

TABLE12 = pd.DataFrame(
    {"precision": [0.96, 0.99, 1.00, 0.97, 0.96], "recall": [0.98, 0.99, 1.00, 0.97, 0.95],
     "specificity": [0.99, 1.00, 1.00, 0.99, 0.99], "accuracy": [0.99, 0.99, 1.00, 0.99, 0.98],
     "F1": [0.97, 0.99, 1.00, 0.97, 0.95]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 12 (= Table 15, ResNet50): per-class test metrics."""

TABLE13 = pd.DataFrame(
    {"TP": [390, 394, 398, 386, 379], "TN": [1582, 1594, 1598, 1589, 1584],
     "FP": [18, 6, 2, 11, 16], "FN": [10, 6, 2, 14, 21]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 13: ResNet50 test-set TP/TN/FP/FN."""

TABLE14 = pd.DataFrame(
    {
        "test accuracy": [0.9670, 0.9735],
        "test loss": [0.1150, 0.4271],
        "step time (s)": [0.176, 2.0],
        "trainable params": [5125, 4207621],
        "non-trainable params": [3228864, 22532992],
    },
    index=pd.Index(["MobileNet", "ResNet50"], name="model"),
)
"""Table 14: the two final models (step time: 176 ms and 2 s per training step)."""
