"""Training helpers: seeding, timed fits with progress, device set-up, grid search."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from tqdm.std import tqdm

from . import backend


def set_seed(seed: int, deterministic: bool | None = True) -> None:
    """Seed Python, NumPy, the Keras backend (the one seeding call of the library); see
    :func:`imgclf.backend.set_seed` for what ``deterministic`` asks of each backend."""
    backend.set_seed(seed, deterministic)


def strategy(device_type: str = "GPU"):
    """The data-parallel set-up per backend (:func:`imgclf.backend.strategy`): TensorFlow's
    ``MirroredStrategy`` or JAX's ``keras.distribution.DataParallel`` over several devices. Build
    and compile the model inside ``strategy().scope()``; past one machine see the README."""
    return backend.strategy(device_type)


def use_mixed_precision(enable: bool | None = None) -> bool:
    """``mixed_float16`` when asked, or (``None``) when a GPU is present. Returns the state."""
    return backend.use_mixed_precision(enable)


class Progress(keras.callbacks.Callback):
    """Epoch progress bar (text, so it also renders in papermill output and HTML reports).

    Records the wall-clock time at the end of each epoch in ``times`` (with a leading 0).
    """

    def __init__(self, epochs: int, desc: str = "", initial: int = 0):
        super().__init__()
        self.epochs, self.desc, self.initial = epochs, desc, initial
        self.times: list[float] = [0.0]

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.epochs, initial=self.initial, desc=self.desc, file=sys.stdout, mininterval=2.0, ascii=True, ncols=100)
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in (logs or {}).items() if k in keys}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


_TENSORBOARD_ROOT: Path | None = None
_TENSORBOARD_USED: dict[Path, int] = {}  # fits outside a unit, by folder, in this process


def log_tensorboard_to(root: str | os.PathLike | None) -> None:
    """Every later :func:`fit` also writes TensorBoard logs under ``root`` (``None``: off).

    :func:`imgclf.papers.start` points this at ``reports/<notebook>/tensorboard/<profile>``, so that
    TensorBoard names each run ``<profile>/<unit key>`` (see :func:`tensorboard_run_dir`); view them
    with ``tensorboard --logdir reports``.
    """
    global _TENSORBOARD_ROOT
    _TENSORBOARD_ROOT = None if root is None else Path(root)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "run"


def tensorboard_run_dir(desc: str, resumed: bool = False) -> Path | None:
    """The folder of one training's TensorBoard logs under the root of :func:`log_tensorboard_to`
    (``None`` when logging is off), so that two trainings never share a folder:

    - inside a run unit (:func:`imgclf.runs.current`): ``<unit key>``, whose readable name comes
      first (``ae-mnist-seed-0-d9a4325b0c09``); the second, third... fit of one run of a unit gets
      ``<unit key>.fit2-<desc>``...;
    - outside a unit: ``<desc>``, then ``<desc>-2``... for later fits with that name in this process.

    A training that starts at epoch 0 (``resumed=False``) empties its folder first: a recomputed
    unit replaces the curves of the earlier run instead of drawing over them. A resumed one appends.
    """
    import shutil

    from . import runs

    if _TENSORBOARD_ROOT is None or not backend.has_tensorflow():  # Keras writes TensorBoard logs through tf.summary
        return None
    unit = runs.current()
    if unit is not None:
        n = unit.tensorboard_fits = getattr(unit, "tensorboard_fits", 0) + 1  # fits of this unit's run
        path = _TENSORBOARD_ROOT / (unit.key if n == 1 else f"{unit.key}.fit{n}-{_slug(desc)}")
    else:
        base = _TENSORBOARD_ROOT / _slug(desc)
        n = _TENSORBOARD_USED[base] = _TENSORBOARD_USED.get(base, 0) + 1
        path = base if n == 1 else _TENSORBOARD_ROOT / f"{_slug(desc)}-{n}"
    if not resumed and path.exists():
        shutil.rmtree(path)
    return path


class TrainingClock(keras.callbacks.Callback):
    """Seconds of the training phase of each epoch (up to validation), kept in a JSON-lines file
    beside the checkpoint when one is given, so that a resumed run still has every epoch's."""

    def __init__(self, path=None):
        super().__init__()
        self.path, self.seconds = path, []
        if path is not None and Path(path).is_file():
            self.seconds = [float(v) for v in Path(path).read_text().split()]

    def on_epoch_begin(self, epoch, logs=None):
        self.t0, self.done, self.epoch = time.perf_counter(), False, epoch

    def on_test_begin(self, logs=None):
        if not self.done:
            self.done = True
            self.seconds = self.seconds[: self.epoch] + [time.perf_counter() - self.t0]
            if self.path is not None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                Path(self.path).write_text("\n".join(map(str, self.seconds)) + "\n")

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()


class EpochSeed(keras.callbacks.Callback):
    """Reseed every random layer (dropout, noise) at the start of each epoch from ``(seed, epoch)``,
    so that an epoch's randomness does not depend on how many epochs ran before in this process
    (what makes a resumed run equal to an uninterrupted one)."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        gens = [g for layer in self.model._flatten_layers() for g in getattr(layer, "_seed_generators", [])]
        for i, g in enumerate(gens):
            g.state.assign(np.array([self.seed * 100_003 + epoch, i]).astype(g.state.dtype))


class EpochLog(keras.callbacks.Callback):
    """Append each finished epoch's logs and duration to a JSON-lines file (the history survives a
    restart; :func:`read_epoch_log` keeps the last record of each epoch)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        rec = {"epoch": int(epoch), "epoch_time": time.perf_counter() - self.t0,
               **{k: float(v) for k, v in (logs or {}).items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")


def read_epoch_log(path: Path) -> list[dict]:
    recs: dict[int, dict] = {}
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            recs[r["epoch"]] = r
    return [recs[e] for e in sorted(recs)]


class BestWeights(keras.callbacks.Callback):
    """Restore, at the end of training, the weights of the epoch with the best ``monitor`` value
    (like ``EarlyStopping(restore_best_weights=True)`` without stopping), and survive a restart:
    the best weights and value are kept in ``directory`` when one is given."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min", directory: Path | None = None):
        super().__init__()
        self.monitor, self.mode, self.dir = monitor, mode, None if directory is None else Path(directory)
        self.best, self.best_epoch, self.weights = None, None, None
        if self.dir is not None and (self.dir / "best.json").is_file():
            meta = json.loads((self.dir / "best.json").read_text())
            self.best, self.best_epoch = meta["best"], meta["epoch"]

    def _better(self, v: float) -> bool:
        return self.best is None or (v < self.best if self.mode == "min" else v > self.best)

    def on_epoch_end(self, epoch, logs=None):
        v = (logs or {}).get(self.monitor)
        if v is None or not self._better(float(v)):
            return
        self.best, self.best_epoch = float(v), int(epoch)
        self.weights = self.model.get_weights()
        if self.dir is not None:
            from .reports import atomic_write_text

            self.dir.mkdir(parents=True, exist_ok=True)
            self.model.save_weights(self.dir / "best.weights.h5")
            atomic_write_text(self.dir / "best.json", json.dumps({"best": self.best, "epoch": self.best_epoch}))

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)
        elif self.dir is not None and (self.dir / "best.weights.h5").is_file():
            self.model.load_weights(self.dir / "best.weights.h5")


class _StopWhenBudgetSpent(keras.callbacks.Callback):
    """Stop at the end of an epoch (after its backup is written) once the run unit's budget is spent."""

    def __init__(self):
        super().__init__()
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        from . import runs

        r = runs.active()
        if r is not None and r.budget_spent() and epoch + 1 < self.params.get("epochs", epoch + 1):
            self.stopped = True
            self.model.stop_training = True


def epoch_pure_dataset(x, y, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """The batches of epochs ``first_epoch .. epochs-1``, each epoch shuffled by a permutation that
    is a pure function of ``(seed, epoch)``: epoch 7 gets the same batches whether or not the run
    was interrupted before it. ``x`` and ``y`` may be arrays or lists of arrays.

    On TensorFlow a ``tf.data`` stream (stateless shuffle); on the other backends a
    :class:`EpochBatches` ``PyDataset`` over the NumPy arrays (NumPy's permutation of
    ``(seed, epoch)``): each backend is reproducible on its own, and the two orders differ.
    """
    if not backend.is_tensorflow():
        return EpochBatches(x, y, batch_size, seed, first_epoch)
    import tensorflow as tf

    xs = tf.nest.map_structure(tf.constant, x)
    ys = tf.nest.map_structure(tf.constant, y)
    n = len(tf.nest.flatten(x)[0])

    def one_epoch(e):
        idx = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), e]))
        return tf.data.Dataset.from_tensor_slices(idx).batch(batch_size)

    def take(i):
        return tf.nest.map_structure(lambda t: tf.gather(t, i), xs), tf.nest.map_structure(lambda t: tf.gather(t, i), ys)

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch).map(take)
    return ds.prefetch(tf.data.AUTOTUNE)


class EpochBatches(keras.utils.PyDataset):
    """Backend-neutral batches of NumPy arrays; the order of epoch ``e`` is
    ``np.random.default_rng([seed, e]).permutation(n)``, so it does not depend on earlier epochs.
    Keras calls :meth:`on_epoch_end` after each epoch, which moves to the next epoch's order."""

    def __init__(self, x, y, batch_size: int, seed: int, first_epoch: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x = [np.asarray(a) for a in tf_nest_flatten(x)]
        self.y = [np.asarray(a) for a in tf_nest_flatten(y)]
        self.x_is_list, self.y_is_list = isinstance(x, (list, tuple)), isinstance(y, (list, tuple))
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), int(first_epoch)
        self.n = len(self.x[0])
        self._order()

    def _order(self) -> None:
        self.idx = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, i: int):
        take = self.idx[i * self.batch_size : (i + 1) * self.batch_size]
        xb = [a[take] for a in self.x]
        yb = [a[take] for a in self.y]
        return (xb if self.x_is_list else xb[0]), (yb if self.y_is_list else yb[0])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order()


def fit(
    model,
    x,
    y=None,
    *,
    epochs: int,
    batch_size: int = 32,
    validation_data=None,
    callbacks: Sequence = (),
    desc: str = "",
    record_initial_loss: bool = False,
    shuffle: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int = 0,
    restore_best: str | None = None,
) -> dict:
    """``model.fit`` with a progress bar, wall-clock timing and, optionally, resume.

    Returns a dict: Keras' per-epoch history lists, ``epoch_time`` (seconds per epoch),
    ``wall`` (seconds since start at the end of each epoch, with a leading 0), ``seconds``
    (total), ``epochs_run`` and, with ``record_initial_loss``, ``loss0`` (the loss before the first
    step, so a loss-against-time curve can start at t = 0).

    ``checkpoint_dir`` (a run unit's ``checkpoint``): training resumes from the last finished epoch
    (``keras.callbacks.BackupAndRestore``: weights, optimizer state, epoch) and gives the same
    numbers as an uninterrupted run: each epoch's shuffle (:func:`epoch_pure_dataset`) and
    dropout masks (:class:`EpochSeed`) depend only on ``(seed, epoch)``; the history is kept in an
    epoch log beside the backup. ``restore_best`` (e.g. ``"val_loss"``; ``"val_accuracy"`` is
    maximised) restores the best epoch's weights at the end, also across a restart. Inside a run
    unit with a budget (:mod:`imgclf.runs`), a spent budget stops training after the next backed-up
    epoch (``BudgetSpent``): the unit resumes there on the next run.
    """
    loss0 = None
    if record_initial_loss:
        loss0 = float(np.atleast_1d(model.evaluate(x, y, batch_size=max(batch_size, 256), verbose=0))[0])
    first = 0
    if checkpoint_dir is not None:
        meta = Path(checkpoint_dir) / "backup" / "training_metadata.json"
        if meta.is_file():
            first = int(json.loads(meta.read_text()).get("epoch", 0))
    # TensorBoard before the caller's callbacks: an epoch that is backed up is also logged
    tb_dir = tensorboard_run_dir(desc or model.name, resumed=first > 0)
    cbs = [] if tb_dir is None else [keras.callbacks.TensorBoard(str(tb_dir), write_graph=False)]
    cbs += list(callbacks)
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir)
        budget = _StopWhenBudgetSpent()
        cbs = [keras.callbacks.BackupAndRestore(str(ckpt / "backup"), delete_checkpoint=False),
               EpochSeed(seed), EpochLog(ckpt / "epochs.jsonl"), *cbs, budget]
    if restore_best:
        mode = "max" if "acc" in restore_best or "auc" in restore_best.lower() else "min"
        cbs.append(BestWeights(restore_best, mode, None if checkpoint_dir is None else Path(checkpoint_dir) / "best"))
    progress = Progress(epochs, desc, initial=first)
    t0 = time.perf_counter()
    if checkpoint_dir is not None and first >= epochs:  # every epoch ran before a kill: its final weights
        hist_dict = {}
        model.load_weights(Path(checkpoint_dir) / "backup" / "latest.weights.h5")
        for cb in cbs:
            if isinstance(cb, BestWeights):
                cb.set_model(model)
                cb.on_train_end()
    elif checkpoint_dir is not None:
        steps = -(-len(tf_nest_flatten(x)[0]) // batch_size)
        ds = epoch_pure_dataset(x, y, batch_size, seed, first, epochs) if shuffle else None
        if ds is None:
            raise ValueError("fit(checkpoint_dir=...) shuffles by itself; shuffle=False is not supported")
        hist_dict = model.fit(ds, steps_per_epoch=None if isinstance(ds, EpochBatches) else steps, epochs=epochs, validation_data=validation_data,
                              callbacks=[progress, *cbs], verbose=0, shuffle=False).history
    else:
        hist_dict = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                              shuffle=shuffle, callbacks=[progress, *cbs], verbose=0).history
    seconds = time.perf_counter() - t0
    if checkpoint_dir is not None and budget.stopped:
        from .runs import BudgetSpent

        raise BudgetSpent("budget spent: training stopped after its last backed-up epoch")
    if checkpoint_dir is not None:
        recs = read_epoch_log(Path(checkpoint_dir) / "epochs.jsonl")
        keys = [k for k in recs[0] if k not in ("epoch", "epoch_time")] if recs else []
        out = {k: [float(r[k]) for r in recs] for k in keys}
        out["epoch_time"] = [float(r["epoch_time"]) for r in recs]
        out["wall"] = [0.0, *np.cumsum(out["epoch_time"]).tolist()]
        out["resumed_at_epoch"] = first
    else:
        out = {k: [float(v) for v in vals] for k, vals in hist_dict.items()}
        out["wall"] = progress.times
        out["epoch_time"] = list(np.diff(progress.times))
    out["seconds"] = seconds
    out["epochs_run"] = len(out["epoch_time"])
    if loss0 is not None:
        out["loss0"] = loss0
    return out


def tf_nest_flatten(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def grid_search(estimator, param_grid: dict, X, y, cv: int = 3, seed: int = 0, verbose: int = 3):
    """Stratified ``cv``-fold ``GridSearchCV`` (accuracy), as the papers' "grid search CV".

    ``verbose=3`` prints each fit's parameters, score and time as it finishes (the progress).
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    search = GridSearchCV(
        estimator, param_grid, cv=StratifiedKFold(cv, shuffle=True, random_state=seed), scoring="accuracy",
        refit=False, n_jobs=1, verbose=verbose,
    )
    return search.fit(X, y)


class Stopwatch:
    """``with Stopwatch() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False
