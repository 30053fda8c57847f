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
from .data.integrity import h5_damage  # noqa: F401  (checkpoint checks; re-exported)


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
            try:
                self.seconds = [float(v) for v in Path(path).read_bytes().decode().split()]
            except ValueError as e:  # cut or overwritten by a kill: the earlier epochs' seconds are lost
                _warn(f"training-time log {path} is damaged ({e}); the seconds of the epochs before this restart "
                      "are not known: it is started afresh")

    def on_epoch_begin(self, epoch, logs=None):
        self.t0, self.done, self.epoch = time.perf_counter(), False, epoch

    def on_test_begin(self, logs=None):
        if not self.done:
            self.done = True
            self.seconds = self.seconds[: self.epoch] + [time.perf_counter() - self.t0]
            if self.path is not None:
                from .files import atomic_write_text

                atomic_write_text(self.path, "\n".join(map(str, self.seconds)) + "\n")

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
        with open(self.path, "ab") as f:
            cut = f.tell() > 0 and _last_byte(self.path) != b"\n"  # a line cut by a kill: start a new one
            f.write((("\n" if cut else "") + json.dumps(rec) + "\n").encode())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def read_epoch_log(path: Path, damaged: list | None = None) -> list[dict]:
    """The last record of each epoch in an :class:`EpochLog` file. Lines that are not whole records
    (cut by a kill, overwritten) are skipped; their line numbers are appended to ``damaged``."""
    recs: dict[int, dict] = {}
    if Path(path).is_file():
        for i, line in enumerate(Path(path).read_bytes().decode("utf-8", "replace").splitlines(), 1):
            try:
                r = json.loads(line)
                epoch = r["epoch"]
                if not isinstance(epoch, int) or epoch < 0:
                    raise ValueError(f"epoch {epoch!r}")
            except (ValueError, TypeError, KeyError):
                if line.strip() and damaged is not None:
                    damaged.append(i)
                continue
            recs[epoch] = r
    return [recs[e] for e in sorted(recs)]


class BestWeights(keras.callbacks.Callback):
    """Restore, at the end of training, the weights of the epoch with the best ``monitor`` value
    (like ``EarlyStopping(restore_best_weights=True)`` without stopping), and survive a restart:
    the best weights and value are kept in ``directory`` when one is given."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min", directory: Path | None = None):
        super().__init__()
        self.monitor, self.mode, self.dir = monitor, mode, None if directory is None else Path(directory)
        self.best, self.best_epoch, self.weights = None, None, None
        if self.dir is not None and (self.dir / "best.json").is_file() and best_state_damage(self.dir) is None:
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

            sha = _save_weights_atomic(self.model, self.dir / "best.weights.h5")
            atomic_write_text(self.dir / "best.json", json.dumps({"best": self.best, "epoch": self.best_epoch,
                                                                  "sha256": sha}))

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)
        elif self.dir is not None and (self.dir / "best.weights.h5").is_file():
            self.model.load_weights(self.dir / "best.weights.h5")


# ----------------------------------------------------------------------------------------------
# Checkpoints that a kill, a full disk or a stray copy cannot make block a unit for good
# ----------------------------------------------------------------------------------------------
class DamagedCheckpoint(UserWarning):
    """A checkpoint file that cannot be used (truncated, not HDF5, not its weights, foreign): it is
    named, set aside and training goes on from the last good state or from epoch 0."""


def _warn(msg: str) -> None:
    import warnings

    warnings.warn(msg, DamagedCheckpoint, stacklevel=3)


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _save_weights_atomic(model, path: Path) -> str:
    """``model.save_weights(path)`` through a temporary sibling and a rename (a kill leaves the old
    file or the new one). Returns the new file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # Keras wants the name to end in .weights.h5
    try:
        model.save_weights(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        sha = _sha256(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return sha


def _meta(path: Path) -> dict:
    """A checkpoint's JSON metadata as a dict, or ``ValueError`` saying what is wrong with it."""
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"is not whole JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"holds {type(meta).__name__}, not a record")
    return meta


def best_state_damage(directory: Path) -> str | None:
    """Why the best-epoch state of :class:`BestWeights` in ``directory`` cannot be used, or ``None``
    (also when there is none yet)."""
    meta_path, weights = directory / "best.json", directory / "best.weights.h5"
    if not meta_path.exists() and not weights.exists():
        return None
    try:
        meta = _meta(meta_path)
        if not isinstance(meta.get("best"), (int, float)) or not isinstance(meta.get("epoch"), int):
            raise ValueError(f"lacks a best value and epoch: {str(meta)[:100]}")
    except (OSError, ValueError) as e:
        return f"{meta_path} {e}"
    if not weights.is_file():
        return f"{weights} is missing (its record {meta_path} is there)"
    if meta.get("sha256"):
        if _sha256(weights) != meta["sha256"]:
            return f"{weights} is not the file its record {meta_path} was written for (sha256 differs)"
    elif (why := h5_damage(weights)) is not None:
        return f"{weights} {why}"
    return None


class EpochBackup(keras.callbacks.Callback):
    """The training state (weights with optimizer state, epoch) after each epoch, for :func:`resume`.

    Each backup is ``epoch-<n>.weights.h5`` (written to a temporary file, then renamed) and then
    ``epoch-<n>.json`` with its epoch and the weights' sha256 (atomic): a kill at any moment leaves
    the previous state whole, and a weights file that is not the one its record describes is never
    loaded. The last two states are kept (a damaged newest one falls back to the one before it).
    """

    KEEP = 2

    def __init__(self, directory: str | os.PathLike):
        super().__init__()
        self.dir = Path(directory)

    def on_epoch_end(self, epoch, logs=None):
        from .files import atomic_write_json

        n = int(epoch) + 1  # epochs done: training resumes at this epoch index
        weights = self.dir / f"epoch-{n:05d}.weights.h5"
        sha = _save_weights_atomic(self.model, weights)
        atomic_write_json(self.dir / f"epoch-{n:05d}.json", {"epoch": n, "weights": weights.name, "sha256": sha})
        for old, _ in _states(self.dir)[self.KEEP:]:
            old.unlink(missing_ok=True)  # the record first: a weights file without one is never used
            (self.dir / f"{old.stem}.weights.h5").unlink(missing_ok=True)
        for legacy in ("latest.weights.h5", "training_metadata.json", "latest.weights.h5.bkp",
                       "training_metadata.json.bkp"):  # Keras BackupAndRestore's files (older runs)
            (self.dir / legacy).unlink(missing_ok=True)


def _states(directory: Path) -> list[tuple[Path, int]]:
    """The ``epoch-<n>.json`` records in ``directory``, newest first."""
    out = []
    for p in directory.glob("epoch-*.json"):
        m = re.fullmatch(r"epoch-(\d+)\.json", p.name)
        if m:
            out.append((p, int(m.group(1))))
    return sorted(out, key=lambda t: -t[1])


def _candidates(directory: Path, epochs: int):
    """``(epoch, weights file, why it cannot be used or None)`` of each stored state, newest first:
    :class:`EpochBackup`'s, then those of Keras' ``BackupAndRestore`` (checkpoints of older runs)."""
    for meta_path, n in _states(directory):
        try:
            meta = _meta(meta_path)
            if meta.get("epoch") != n or not meta.get("sha256"):
                raise ValueError(f"does not describe epoch {n}: {str(meta)[:100]}")
        except (OSError, ValueError) as e:
            yield n, None, f"{meta_path} {e}"
            continue
        weights = directory / f"epoch-{n:05d}.weights.h5"
        if not weights.is_file():
            yield n, None, f"{weights} is missing (its record {meta_path} is there)"
        elif n > epochs:
            yield n, None, f"{meta_path} is of epoch {n}, past this run's {epochs} epochs (another run's state)"
        elif _sha256(weights) != meta["sha256"]:
            yield n, None, (f"{weights} is not the file its record {meta_path} was written for (sha256 differs: "
                            "cut short or replaced)")
        else:
            yield n, weights, None
    for suffix in ("", ".bkp"):  # Keras' BackupAndRestore layout (double_checkpoint keeps a .bkp pair)
        weights, meta_path = directory / f"latest.weights.h5{suffix}", directory / f"training_metadata.json{suffix}"
        if not weights.exists() and not meta_path.exists():
            continue
        try:
            n = _meta(meta_path).get("epoch")
            if not isinstance(n, int) or not 0 <= n <= epochs:
                raise ValueError(f"holds epoch {n!r}, not one of 0..{epochs}")
        except (OSError, ValueError) as e:
            yield 0, None, f"{meta_path} {e}"
            continue
        why = h5_damage(weights)
        yield (n, None, f"{weights} {why}") if why else (n, weights, None)


def _optimizer_state(model) -> list | None:
    opt = getattr(model, "optimizer", None)
    return None if opt is None else [np.array(v.numpy()) for v in opt.variables]


def resume(model, checkpoint_dir: str | os.PathLike, epochs: int, restore_best: str | None = None) -> int:
    """Load the newest usable training state under ``checkpoint_dir`` into ``model`` (compiled and
    built) and return its epoch (``0``: start afresh).

    A state that cannot be used (a weights file cut short by a kill, not HDF5, not the one its
    record describes, a record that is not whole JSON or is of another run) is named in a
    :class:`DamagedCheckpoint` warning and the one before it is tried. A state is used only when the
    epoch log holds every earlier epoch (the history is part of the result) and, with
    ``restore_best``, the best-epoch weights are usable; else the unit restarts at epoch 0 and the
    damaged files are removed, so that no later run trips over them again.
    """
    ckpt = Path(checkpoint_dir)
    backup, log_path = ckpt / "backup", ckpt / "epochs.jsonl"
    if not backup.is_dir():
        return 0
    for stale in backup.glob(".tmp-*"):  # a write a kill cut short (one process per unit: runs' lock)
        stale.unlink(missing_ok=True)
    first, found, saved = 0, False, None
    for n, weights, why in _candidates(backup, epochs):
        found = True
        if why is not None:
            _warn(f"checkpoint {why}; it is not used")
            continue
        opt = getattr(model, "optimizer", None)
        if opt is not None and not opt.built:
            opt.build(model.trainable_variables)
        if saved is None:
            saved = (model.get_weights(), _optimizer_state(model))
        try:
            model.load_weights(weights)
        except Exception as e:  # e.g. another model's weights: shapes or layer names differ
            model.set_weights(saved[0])
            _warn(f"checkpoint {weights} does not load into this model ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:200] if str(e) else ''}); it is not used")
            continue
        first = n
        break
    restart = None
    if first:
        bad_lines: list[int] = []
        have = {r["epoch"] for r in read_epoch_log(log_path, bad_lines)}
        if bad_lines:
            _warn(f"epoch log {log_path}: line(s) {bad_lines[:10]} are not whole records (cut by a kill?); skipped")
        missing = sorted(set(range(first)) - have)
        if missing:
            restart = f"the epoch log {log_path} lacks epoch(s) {missing[:10]} before epoch {first} (their history is lost)"
        elif restore_best and (why := best_state_damage(ckpt / "best")) is not None:
            restart = f"the best-epoch state {why}"
    if restart:
        _warn(f"checkpoint of {ckpt.parent.name}: {restart}; this unit restarts at epoch 0")
        model.set_weights(saved[0])
        if saved[1] is not None:
            for v, value in zip(model.optimizer.variables, saved[1]):
                v.assign(value)
        first = 0
    elif found and not first:
        _warn(f"no usable training state in {backup}: {ckpt.parent.name} restarts at epoch 0")
        if saved is not None and saved[1] is not None:
            for v, value in zip(model.optimizer.variables, saved[1]):
                v.assign(value)
    if found and not first:  # start clean: no damaged file, no history or best epoch of the old attempt
        import shutil

        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(ckpt / "best", ignore_errors=True)
        log_path.unlink(missing_ok=True)
    return first


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
    (:class:`EpochBackup`: weights and optimizer state of the last two epochs, written whole or not
    at all; a damaged one is named in a :class:`DamagedCheckpoint` warning and the one before it,
    or epoch 0, is used: :func:`resume`) and gives the same
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
        ckpt = Path(checkpoint_dir)
        first = resume(model, ckpt, epochs, restore_best)  # the last good state, or 0 (damaged ones named)
    # TensorBoard before the caller's callbacks: an epoch that is backed up is also logged
    tb_dir = tensorboard_run_dir(desc or model.name, resumed=first > 0)
    cbs = [] if tb_dir is None else [keras.callbacks.TensorBoard(str(tb_dir), write_graph=False)]
    cbs += list(callbacks)
    if checkpoint_dir is not None:
        budget = _StopWhenBudgetSpent()
        cbs = [EpochBackup(ckpt / "backup"), EpochSeed(seed), EpochLog(ckpt / "epochs.jsonl"), *cbs, budget]
    if restore_best:
        mode = "max" if "acc" in restore_best or "auc" in restore_best.lower() else "min"
        cbs.append(BestWeights(restore_best, mode, None if checkpoint_dir is None else Path(checkpoint_dir) / "best"))
    progress = Progress(epochs, desc, initial=first)
    t0 = time.perf_counter()
    if checkpoint_dir is not None and first >= epochs:  # every epoch ran before a kill: its final weights
        hist_dict = {}  # resume() loaded them
        for cb in cbs:
            if isinstance(cb, BestWeights):
                cb.set_model(model)
                cb.on_train_end()
    elif checkpoint_dir is not None:
        steps = -(-len(tf_nest_flatten(x)[0]) // batch_size)
        ds = epoch_pure_dataset(x, y, batch_size, seed, first, epochs) if shuffle else None
        if ds is None:
            raise ValueError("fit(checkpoint_dir=...) shuffles by itself; shuffle=False is not supported")
        hist_dict = model.fit(ds, steps_per_epoch=None if isinstance(ds, EpochBatches) else steps, epochs=epochs,
                              initial_epoch=first, validation_data=validation_data, callbacks=[progress, *cbs],
                              verbose=0, shuffle=False).history
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
