"""Paper 3's pipeline, in the paper's order: the device, the data, the three networks, the twelve
runs of Table I (model x optimiser x learning rate), their labels, tables and closing note.

One *run* is one cell of Table I: an architecture, an optimiser and a learning rate, trained for
``cfg.epochs`` epochs at batch ``cfg.batch_size`` on MNIST resized (inside the model) to
``cfg.image_size`` pixels, validated on the test set after every epoch and then scored on it.

Device set-up (:func:`setup`): on a GPU the models run in ``mixed_float16`` with XLA and several
steps per compiled call, fed by a cached, shuffled, prefetched ``tf.data`` pipeline of the 28x28
images (the resize to 224 px happens on the device); on a CPU they run in float32 with
TensorFlow's op determinism, so the same seed gives the same numbers.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ... import data, train
from ...runs import Runs, current
from ...models import param_counts
from ...models.cnns import (
    ARCH_NAMES,
    GOOGLENET_LOSS_WEIGHTS,
    build_mnist_classifier,
    build_mnist_preprocessing,
    inference_model,
)
from . import published
from .config import Config

OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}
CHANCE_MARGIN = 0.10  # a run must end 10 points above chance to count as learning (see label_run)
PLATEAU = 0.005       # converged: the last epoch moved validation accuracy by less than 0.5 points ...
PLATEAU_LOSS = 0.10   # ... and the training loss by less than 10 % (relative)


# ------------------------------------------------------------------------------------------
# 1. The device
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Device:
    """How this machine trains: part of every run's key (mixed precision, XLA and op determinism
    change the numbers; ``steps_per_execution`` only the speed)."""

    gpu: bool
    mixed_precision: bool
    jit_compile: bool
    deterministic: bool
    steps_per_execution: int = field(default=1, metadata={"key": False})


def setup(cfg: Config) -> Device:
    """Seed, precision policy, XLA and determinism for this machine ("auto": on a GPU only)."""
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    pick = lambda v: gpu if v == "auto" else v == "on"  # noqa: E731
    mixed = train.use_mixed_precision(pick(cfg.mixed_precision))
    dev = Device(gpu=gpu, mixed_precision=mixed, jit_compile=pick(cfg.jit_compile), deterministic=not gpu,
                 steps_per_execution=cfg.steps_per_execution)
    train.set_seed(cfg.seed, deterministic=dev.deterministic)
    return dev


def device_info(dev: Device) -> dict:
    return asdict(dev)


# ------------------------------------------------------------------------------------------
# 2. The data
# ------------------------------------------------------------------------------------------
def load_data(cfg: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's ``(x_train, y_train, x_test, y_test)``: ``(n, 28, 28)`` uint8 images and int labels,
    stratified subsets of ``cfg.mnist_train`` / ``cfg.mnist_test`` images (seeded by ``cfg.seed``)."""
    (x_train, y_train), (x_test, y_test) = data.load_mnist(cfg.data_dir)
    x_train, y_train = data.stratified_subset(x_train, y_train, cfg.mnist_train, cfg.seed)
    x_test, y_test = data.stratified_subset(x_test, y_test, cfg.mnist_test, cfg.seed)
    return x_train, y_train, x_test, y_test


def model_view(x: np.ndarray, image_size: int) -> np.ndarray:
    """What the networks see: the models' own input stage applied to ``(n, 28, 28)`` images,
    ``(n, image_size, image_size)`` (channel 0 of 3 identical ones)."""
    x = np.asarray(x, np.float32).reshape(len(x), 28, 28, 1)
    return np.asarray(build_mnist_preprocessing(image_size)(x))[..., 0]


def dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0, outputs: int = 1):
    """``tf.data`` over 28x28 uint8 images: cached, shuffled each epoch, batched, prefetched.

    Yields ``(batch, 28, 28, 1)`` float32 pixels in 0..255 and int32 labels (repeated ``outputs``
    times for a model with auxiliary heads). The images stay 28x28 until the model resizes them.
    """
    import tensorflow as tf

    x = np.asarray(x, np.uint8).reshape(len(x), 28, 28, 1) if np.asarray(x).ndim == 3 else np.asarray(x, np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y, np.int32))).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

    def cast(images, labels):
        images = tf.cast(images, tf.float32)
        return (images, labels) if outputs == 1 else (images, (labels,) * outputs)

    return ds.batch(batch_size).map(cast, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------
# 3. The three networks
# ------------------------------------------------------------------------------------------
def parameter_table(archs, image_size: int, count_at_224: bool = True) -> pd.DataFrame:
    """Weights per model: published (ImageNet, 224 px, 1000 classes), the paper's text, and ours.

    Ours are counted on the MNIST models (10 classes) at 224 px (the paper's input; built, not
    compiled: VGG-16 takes some seconds) when ``count_at_224``, and at ``image_size`` (this
    run's input). "with aux heads" is GoogLeNet's training model.
    """
    sizes = sorted({224, image_size}) if count_at_224 else [image_size]
    rows = {}
    for arch in archs:
        name = ARCH_NAMES[arch]
        row = {"published (224 px, 1000 classes)": published.PARAMS_PUBLISHED[arch],
               "paper text": published.PARAMS_TEXT[name]}
        for size in sizes:
            keras.backend.clear_session(free_memory=False)
            m = build_mnist_classifier(arch, size, 10, **({"aux_logits": True} if arch == "googlenet" else {}))
            row[f"ours {size} px"] = inference_model(m).count_params()
            row[f"ours {size} px, with aux heads"] = m.count_params()
            del m
        rows[name] = row
    keras.backend.clear_session(free_memory=True)
    return pd.DataFrame(rows).T


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.0) -> keras.optimizers.Optimizer:
    """``sgd`` (plain, or with ``momentum``) or ``adam`` (Keras defaults = PyTorch's betas, eps 1e-7)."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; known: {sorted(OPTIMIZER_NAMES)}")


def build(arch: str, image_size: int, optimizer: str, learning_rate: float, momentum: float = 0.0,
          aux_logits: bool = True, googlenet_batch_norm: bool = True, jit_compile: bool = False,
          steps_per_execution: int = 1, **options) -> keras.Model:
    """A compiled MNIST training model, ``(batch, 28, 28, 1)`` -> ``(batch, 10)`` (GoogLeNet: with
    its auxiliary heads, three outputs, losses weighted 1/0.3/0.3).

    ``options`` go to the architecture (e.g. ``dropout=0.0``).
    """
    if arch == "googlenet":
        options = dict(aux_logits=aux_logits, batch_norm=googlenet_batch_norm, **options)
    model = build_mnist_classifier(arch, image_size, 10, **options)
    if len(model.outputs) > 1:
        loss = {k: "sparse_categorical_crossentropy" for k in GOOGLENET_LOSS_WEIGHTS}
        kw = dict(loss_weights=GOOGLENET_LOSS_WEIGHTS, metrics={"predictions": ["accuracy"]})
    else:
        loss, kw = "sparse_categorical_crossentropy", dict(metrics=["accuracy"])
    model.compile(make_optimizer(optimizer, learning_rate, momentum), loss, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution, **kw)
    return model


def main_head_history(history: dict) -> dict:
    """Keras history with the main head's numbers under ``loss``/``accuracy`` (and ``val_``).

    For a model with auxiliary heads the weighted sum of the three losses is kept as
    ``total_loss``; for the others the history is returned as is.
    """
    if "predictions_accuracy" not in history:
        return dict(history)
    out = {}
    for prefix in ("", "val_"):
        if f"{prefix}loss" in history:
            out[f"{prefix}total_loss"] = history[f"{prefix}loss"]
        for m in ("loss", "accuracy"):
            if f"{prefix}predictions_{m}" in history:
                out[f"{prefix}{m}"] = history[f"{prefix}predictions_{m}"]
    return out


class _Progress(train.Progress):
    """The epoch bar, showing the main head's accuracy and loss of a model with auxiliary heads."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, main_head_history(logs or {}))


# ------------------------------------------------------------------------------------------
# 4. Table I: one run = one cell
# ------------------------------------------------------------------------------------------
_POOL: dict = {}  # the last compiled training model, kept for the next learning rate


def release() -> None:
    """Drop the compiled model :func:`run` keeps for reuse (and Keras' global state)."""
    _POOL.clear()
    keras.backend.clear_session(free_memory=True)


def _compiled(key: tuple, make, device: Device, seed: int) -> dict:
    """A compiled training model for ``key``, in the state it had right after it was built.

    Runs that differ only in the learning rate reuse one model: its weights, batch-norm
    statistics, dropout seeds and optimiser state (slots, step count, loss scale) are restored
    and the learning rate is set, which gives the numbers a freshly built model would give
    without tracing (and on a GPU compiling) the training, validation and prediction functions
    again.
    """
    entry = _POOL.get("entry")
    if entry is not None and entry["key"] == key:
        for v, value in entry["state"]:
            v.assign(value)
        train.set_seed(seed, deterministic=device.deterministic)
        return entry
    release()  # also resets the dtype policy: set it again
    train.use_mixed_precision(device.mixed_precision)
    train.set_seed(seed, deterministic=device.deterministic)
    with train.strategy().scope():  # MirroredStrategy when several GPUs are visible
        model = make()
        model.optimizer.build(model.trainable_variables)
        predictor = inference_model(model)
    state = [(v, np.array(v.numpy())) for v in [*model.variables, *model.optimizer.variables]]
    entry = dict(key=key, model=model, predictor=predictor, state=state)
    _POOL["entry"] = entry
    return entry


def run(arch: str, optimizer: str, learning_rate: float, x_train, y_train, x_test, y_test, *, epochs: int,
        image_size: int, batch_size: int = 32, momentum: float = 0.0, aux_logits: bool = True,
        googlenet_batch_norm: bool = True, device: Device | None = None, seed: int = 0, reuse: bool = True,
        checkpoint_dir=None) -> dict:
    """Train one model from its seeded initial weights and score it on the test set.

    With ``reuse``, consecutive runs that differ only in ``learning_rate`` share one compiled
    model, reset to its initial state (see :func:`_compiled`); without it every run builds anew.

    ``checkpoint_dir`` (a run unit's ``checkpoint``): training goes through
    :func:`imgclf.train.fit`, which backs up weights, optimizer state and epoch after every epoch
    (``BackupAndRestore``), shuffles each epoch by a pure function of ``(seed, epoch)``
    (:func:`imgclf.train.epoch_pure_dataset`) and reseeds dropout per epoch (``EpochSeed``): a run
    stopped and started again resumes from its last finished epoch with the numbers an
    uninterrupted run gives. Inside a run unit whose budget is spent, ``train.fit`` stops at the
    next epoch end and raises ``imgclf.runs.BudgetSpent`` (the unit resumes there on the next run);
    without a checkpoint the images are shuffled by ``tf.data`` as before.

    Returns a dict: ``arch``, ``optimizer``, ``learning_rate``, ``history`` (main head per epoch:
    loss, accuracy, val_loss, val_accuracy; GoogLeNet also total_loss), ``accuracy`` (test),
    ``y_pred``, ``report`` (scikit-learn's classification report as a dict), ``confusion``,
    ``params`` (weights of the model used for prediction), ``trainable``, ``train_params``
    (with auxiliary heads), ``seconds`` (fit wall time, validation included), ``train_seconds``,
    ``images_per_s`` (training images per second after the first epoch, which includes tracing),
    ``epochs_run`` and ``finite_predictions`` (false when the network outputs NaN; the run's label
    is given by :func:`label_run`).
    """
    device = device or Device(False, False, False, True, 1)
    key = (arch, optimizer, image_size, momentum, aux_logits, googlenet_batch_norm, device, seed)
    if not reuse:
        release()
    entry = _compiled(key, lambda: build(arch, image_size, optimizer, learning_rate, momentum, aux_logits,
                                         googlenet_batch_norm, device.jit_compile, device.steps_per_execution),
                      device, seed)
    model, predictor = entry["model"], entry["predictor"]
    model.optimizer.learning_rate = learning_rate
    outputs = len(model.outputs)
    ds_train = dataset(x_train, y_train, batch_size, shuffle=True, seed=seed, outputs=outputs)
    ds_val = dataset(x_test, y_test, max(batch_size, 256), outputs=outputs)
    desc = name_of(arch, optimizer, learning_rate)
    meter = train.TrainingClock()
    t0 = time.perf_counter()
    if checkpoint_dir is None:
        progress = _Progress(epochs, desc)
        hist = model.fit(ds_train, epochs=epochs, validation_data=ds_val, verbose=0, shuffle=False,  # ds_train shuffles
                         callbacks=[progress, meter, keras.callbacks.TerminateOnNaN()])
        seconds = time.perf_counter() - t0
        raw = hist.history
    else:
        x = np.asarray(x_train, np.float32).reshape(len(x_train), 28, 28, 1)
        y = np.asarray(y_train, np.int32)
        h = train.fit(model, x, y if outputs == 1 else (y,) * outputs, epochs=epochs, batch_size=batch_size,
                      validation_data=ds_val, callbacks=[meter, keras.callbacks.TerminateOnNaN()], desc=desc,
                      checkpoint_dir=checkpoint_dir, seed=seed)
        raw = {k: v for k, v in h.items() if isinstance(v, list) and k not in ("epoch_time", "wall")}
        seconds = float(sum(h["epoch_time"]))  # every epoch of the run, across restarts
    history = main_head_history({k: [float(v) for v in vals] for k, vals in raw.items()})

    proba = predictor.predict(dataset(x_test, y_test, max(batch_size, 256)), verbose=0)
    finite = np.all(np.isfinite(proba))
    y_pred = np.argmax(np.nan_to_num(proba, nan=0.0), axis=1)
    acc = float(np.mean(y_pred == np.asarray(y_test)))
    steady = meter.seconds[1:] or meter.seconds
    out = dict(
        arch=arch, optimizer=optimizer, learning_rate=learning_rate, history=history, accuracy=acc, y_pred=y_pred,
        report=skm.classification_report(y_test, y_pred, digits=4, output_dict=True, zero_division=0),
        confusion=skm.confusion_matrix(y_test, y_pred, labels=np.arange(10)),
        params=predictor.count_params(), trainable=param_counts(predictor)[0], train_params=model.count_params(),
        seconds=seconds, train_seconds=float(sum(meter.seconds)),
        images_per_s=float(len(y_train) / np.median(steady)) if steady else float("nan"),
        epochs_run=len(history.get("loss", [])), finite_predictions=bool(finite),
    )
    gc.collect()
    return out


def train_run(cfg: Config, device: Device, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray) -> dict:
    """The work of one Table I run unit: ``cfg`` is narrowed to one cell (:meth:`Config.one_run`).

    Inside a unit, training resumes from the unit's checkpoint (see :func:`run`)."""
    (arch,), (optimizer,), (learning_rate,) = cfg.models, cfg.optimizers, cfg.learning_rates
    unit = current()
    return run(arch, optimizer, learning_rate, x_train, y_train, x_test, y_test, epochs=cfg.epochs,
               image_size=cfg.image_size, batch_size=cfg.batch_size, momentum=cfg.momentum,
               aux_logits=cfg.aux_logits, googlenet_batch_norm=cfg.googlenet_batch_norm, device=device,
               seed=cfg.seed, checkpoint_dir=unit.checkpoint if unit is not None else None)


def table1_run(units: Runs, cfg: Config, arch: str, optimizer: str, learning_rate: float, device: Device,
               x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict | None:
    """One cell of Table I as a run unit of ``units`` (``report.runs``), labelled (:func:`label_run`).

    A finished unit is reused (its stored result); an unfinished one resumes from its last
    finished epoch; when the budget is spent before it starts, or it is stopped by the budget at an
    epoch end, ``None`` is returned (the unit counts as not done; its checkpoint stays for the next
    run). The result has :func:`run`'s keys, with ``y_pred`` and ``confusion`` as arrays again,
    plus ``status`` (:func:`label_run`) and ``chance`` (:func:`chance_accuracy`).
    """
    res = units.cached(train_run, name=name_of(arch, optimizer, learning_rate),
                       cfg=cfg.one_run(arch, optimizer, learning_rate), device=device,
                       x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    if res is None:
        return None
    res = dict(res)
    res["y_pred"], res["confusion"] = np.asarray(res["y_pred"]), np.asarray(res["confusion"])
    res["history"] = {k: [np.nan if v is None else v for v in vals] for k, vals in res["history"].items()}
    for k in ("accuracy", "images_per_s", "seconds", "train_seconds"):
        res[k] = np.nan if res.get(k) is None else res[k]
    res["status"] = label_run(res, y_test)  # from the stored history: relabelling retrains nothing
    res["chance"] = chance_accuracy(y_test)
    return res


def chance_accuracy(y_test: np.ndarray) -> float:
    """The accuracy of a network that has learned nothing: the larger of 1/10 (guessing) and the
    share of the test set's most frequent class (always answering it)."""
    y = np.asarray(y_test).ravel()
    return max(1 / 10, float(np.bincount(y).max() / len(y))) if len(y) else 1 / 10


def chance_margin(y_test: np.ndarray) -> float:
    """How far above chance a run must end to count as learning: 10 points, or 3 binomial standard
    deviations of the chance accuracy on this many test images when that is larger (small sets)."""
    c, n = chance_accuracy(y_test), max(len(np.asarray(y_test).ravel()), 1)
    return max(CHANCE_MARGIN, 3 * math.sqrt(c * (1 - c) / n))


def label_run(r: dict, y_test: np.ndarray) -> str:
    """What a run measured, from its per-epoch history and its test accuracy (one definition, used
    for Table I, the headlines and the tests):

    - ``"diverged (NaN loss)"``: a training loss or a prediction is not finite;
    - ``"at chance"``: test accuracy within :func:`chance_margin` of :func:`chance_accuracy`
      (10 points above 1/10 or the majority class; more on a small test set);
    - ``"converged"``: above chance, at least two epochs, and the last epoch changed the validation
      accuracy by less than ``PLATEAU`` (0.5 points) and the training loss by less than ``PLATEAU_LOSS``
      (10 %, relative): the curves have flattened;
    - ``"learning"``: above chance, but still moving (or a single epoch, which shows no trend).
    """
    loss = [float(v) for v in r["history"].get("loss", [])]
    if any(not math.isfinite(v) for v in loss) or not r["finite_predictions"]:
        return "diverged (NaN loss)"
    if not r["accuracy"] > chance_accuracy(y_test) + chance_margin(y_test):
        return "at chance"
    val = [float(v) for v in r["history"].get("val_accuracy", [])]
    if len(val) >= 2 and len(loss) >= 2 and abs(val[-1] - val[-2]) < PLATEAU \
            and abs(loss[-2] - loss[-1]) < PLATEAU_LOSS * loss[-2]:
        return "converged"
    return "learning"


LEARNED = ("learning", "converged")
"""The labels of a run that ended above chance."""


def name_of(arch: str, optimizer: str, learning_rate: float) -> str:
    return f"{ARCH_NAMES[arch]} {OPTIMIZER_NAMES[optimizer]} lr={learning_rate:g}"


def run_label(r: dict) -> str:
    """``"ResNet-18 SGD lr=0.001"``: the readable name of a run's cell of Table I."""
    return name_of(r["arch"], r["optimizer"], r["learning_rate"])


# ------------------------------------------------------------------------------------------
# 5. Tables, headlines and the closing note
# ------------------------------------------------------------------------------------------
def summary(runs: list[dict]) -> pd.DataFrame:
    """One row per run: test accuracy, label (:func:`label_run`), sizes, times and throughput."""
    rows = []
    for r in runs:
        h = r["history"]
        rows.append({
            "model": ARCH_NAMES[r["arch"]], "optimizer": OPTIMIZER_NAMES[r["optimizer"]],
            "learning rate": r["learning_rate"], "test accuracy (%)": 100 * r["accuracy"], "status": r["status"],
            "final train loss": h.get("loss", [np.nan])[-1], "final val loss": h.get("val_loss", [np.nan])[-1],
            "parameters": r["params"], "trainable": r["trainable"], "with aux heads": r["train_params"],
            "epochs": r["epochs_run"], "wall time (s)": r["seconds"], "train images/s": r["images_per_s"],
        })
    cols = ["model", "optimizer", "learning rate", "test accuracy (%)", "status", "final train loss", "final val loss",
            "parameters", "trainable", "with aux heads", "epochs", "wall time (s)", "train images/s"]
    return pd.DataFrame(rows, columns=cols).set_index(["model", "optimizer", "learning rate"])


def classification_reports(runs: list[dict]) -> pd.DataFrame:
    """scikit-learn's classification report of every run, stacked: (run, class) -> precision ..."""
    frames = []
    for r in runs:
        df = pd.DataFrame(r["report"]).T
        df.index.name = "class"
        df.insert(0, "run", run_label(r))
        frames.append(df.reset_index())
    return pd.concat(frames, ignore_index=True).set_index(["run", "class"])


def table1(runs: list[dict]) -> pd.DataFrame:
    """Our Table I in the form :func:`table1_vs_ours` takes (optimizer keys, %)."""
    return pd.DataFrame([{"model": ARCH_NAMES[r["arch"]], "optimizer": r["optimizer"], "learning rate": r["learning_rate"],
                          "accuracy (%)": 100 * r["accuracy"], "status": r["status"]} for r in runs],
                        columns=["model", "optimizer", "learning rate", "accuracy (%)", "status"])


def table1_vs_ours(ours: pd.DataFrame) -> pd.DataFrame:
    """Every row of the paper's Table I beside the run it maps to, then our runs it has no row for.

    ``ours`` has columns model, optimizer (``sgd``/``adam``), learning rate, accuracy (%) and
    status. Returns columns model, paper row, optimizer, learning rate, paper, ours,
    ours - paper, status (accuracies in %).
    """
    key = ["model", "optimizer", "learning rate"]
    ours = ours.assign(**{"learning rate": ours["learning rate"].astype(float).round(6)})
    table = published.TABLE1.rename(columns={"accuracy (%)": "paper"})
    table = table.assign(**{"learning rate": table["learning rate"].round(6)})
    merged = table.merge(ours.rename(columns={"accuracy (%)": "ours"}), on=key, how="left")
    extra = ours.merge(table[key].drop_duplicates(), on=key, how="left", indicator=True)
    extra = extra[extra["_merge"] == "left_only"].drop(columns="_merge").rename(columns={"accuracy (%)": "ours"})
    extra.insert(1, "paper row", "(no row in the paper)")
    out = pd.concat([merged, extra], ignore_index=True)
    order = {**{m: i for i, m in enumerate(published.TABLE1["model"].unique())}, "sgd": 0, "adam": 1}
    out = out.sort_values(key, key=lambda c: c.map(order) if c.name != "learning rate" else c, kind="stable")
    out["ours - paper"] = out["ours"] - out["paper"]
    cols = ["model", "paper row", "optimizer", "learning rate", "paper", "ours", "ours - paper", "status"]
    return out[cols].reset_index(drop=True)


def wall_time_per_model(runs: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{"model": ARCH_NAMES[r["arch"]], "runs": 1, "wall time (s)": r["seconds"],
                        "train images/s": r["images_per_s"]} for r in runs],
                      columns=["model", "runs", "wall time (s)", "train images/s"])
    return df.groupby("model", sort=False).agg({"runs": "sum", "wall time (s)": "sum", "train images/s": "median"})


def run_record(r: dict) -> dict:
    """The JSON part of a run (for results.json): numbers, label, per-epoch history."""
    keys = ("arch", "optimizer", "learning_rate", "accuracy", "status", "chance", "params", "trainable", "train_params",
            "seconds", "train_seconds", "images_per_s", "epochs_run", "history", "report")
    return {k: r[k] for k in keys}


def _md_table(df: pd.DataFrame) -> str:
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:g}" if math.isfinite(v) else "–"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def closing_note(runs: list[dict], t1: pd.DataFrame, walls: pd.DataFrame, cfg: Config, hardware: dict,
                 device: Device) -> str:
    """Markdown: Table I as measured in this run, the wall times, and what they are (not) comparable with."""
    hw = ", ".join(hardware.get("gpus") or []) or f"{hardware.get('cpu')} ({hardware.get('cpu_count')} cores, no GPU)"
    t = t1.copy()
    t["paper"], t["ours"] = t["paper"].round(1), t["ours"].round(2)
    t = t[["model", "paper row", "optimizer", "learning rate", "paper", "ours", "status"]]
    if not runs:
        return f"**Table I: no run finished yet** ({cfg.profile} profile, on {hw}); run the notebook again to go on."
    best = max(runs, key=lambda r: r["accuracy"])
    bad = [run_label(r) + f" ({r['status']}, {100 * r['accuracy']:.1f} %)" for r in runs if r["status"] not in LEARNED]
    w = walls.reset_index()[["model", "runs", "wall time (s)", "train images/s"]].round(1)
    total = sum(r["seconds"] for r in runs)
    text = [
        f"**Table I as measured** — {cfg.profile} profile: {cfg.mnist_train} training / {cfg.mnist_test} test "
        f"images at {cfg.image_size} px, {cfg.epochs} epochs"
        + (f" (VGG-16: {cfg.vgg16_epochs})" if cfg.vgg16_epochs is not None else "")
        + f", batch {cfg.batch_size}, on {hw} "
        f"(mixed precision {'on' if device.mixed_precision else 'off'}, XLA {'on' if device.jit_compile else 'off'}). "
        "Accuracies in %; the paper's vanilla rows are mapped to plain SGD.",
        "",
        _md_table(t),
        "",
        f"Best run: **{run_label(best)}, {100 * best['accuracy']:.2f} %** "
        "(paper's best: ResNet-18 with SGD, lr 0.001, 99.4 %). "
        + (f"Runs that did not learn: {'; '.join(bad)}." if bad else "Every run ended above chance.")
        + f" Labels (`label_run`): *at chance* within {100 * CHANCE_MARGIN:.0f} points (3 sd on a small test set) of chance "
        f"({100 * runs[0]['chance']:.0f} %), *converged* when the last epoch moved validation accuracy by under "
        f"{100 * PLATEAU:.1f} points and the training loss by under {100 * PLATEAU_LOSS:.0f} %, else *learning*.",
        "",
        f"**Wall times** (training plus per-epoch validation), {total / 60:.1f} min for all {len(runs)} runs:",
        "",
        _md_table(w),
        "",
    ]
    paper_scale = cfg.image_size == 224 and cfg.mnist_train == 60000 and cfg.epochs == 10
    if not paper_scale and cfg.mnist_train == 60000 and cfg.mnist_test == 10000:
        text.append(f"All of MNIST, but at **{cfg.image_size} px** and {cfg.epochs} epochs, not the paper's 224 px and "
                    "10 epochs: compare how the runs rank and which ones learn, not the accuracies one by one.")
    elif not paper_scale:
        text.append("These numbers show the pipeline working on a small problem; they are **not comparable** with "
                    "the paper's accuracies or its hours of training.")
    if not device.gpu:
        text.append(" The paper profile (224 px, 60k/10k images, 10 epochs) **still needs a GPU**: run "
                    "`./run_all.sh --profile paper 03` on one (mixed precision, XLA and the tf.data pipeline switch "
                    "on by themselves).")
    return "\n".join(text)




def record_headlines(report, cfg: Config, runs: list[dict]) -> list[dict]:
    """The paper's headline numbers beside ours (``report.headline``): each model's SGD run at
    lr 0.001, the best run, and how many runs diverged or stayed at chance. Returns those runs."""
    by = {(r["arch"], r["optimizer"], r["learning_rate"]): r for r in runs}
    for arch in cfg.models:
        name, r = ARCH_NAMES[arch], by.get((arch, "sgd", 0.001))
        if r is not None:
            paper = published.TABLE1.loc[published.TABLE1["paper row"] == f"{name} with SGD", "accuracy (%)"].item()
            report.headline(f"{name} with SGD, lr 0.001: test accuracy (%)", paper, round(100 * r["accuracy"], 2),
                            r["status"])
    if runs:
        best = max(runs, key=lambda r: r["accuracy"])
        report.headline("best run (test accuracy %)", published.BEST[1], round(100 * best["accuracy"], 2),
                        f"ours: {run_label(best)}; paper: {published.BEST[0]}")
    bad = [r for r in runs if r["status"] not in LEARNED]
    report.headline("runs that diverged or stayed at chance", 0, len(bad),
                    f"of {len(runs)} runs; the paper reports none (its lowest: {published.LOWEST[0]}, "
                    f"{published.LOWEST[1]} %)", better="lower")
    return bad


def not_comparable_because(cfg: Config) -> list[str]:
    """How this run's set-up differs from the paper's (empty at the paper's scale)."""
    differs = [f"{k} {getattr(cfg, k)} (paper: {v})" for k, v in published.PAPER_SCALE.items() if getattr(cfg, k) != v]
    if cfg.vgg16_epochs is not None and cfg.vgg16_epochs != published.PAPER_SCALE["epochs"]:
        differs.append(f"VGG-16 epochs {cfg.vgg16_epochs} (paper: {published.PAPER_SCALE['epochs']})")
    return differs
