"""Resume overhead: one run unit killed halfway and resumed, against the same unit uninterrupted.

The unit is a real one of paper 4 (the classic Keras MNIST CNN, 128 dense units, Adam) trained by
``imgclf.train.fit(checkpoint_dir=...)`` on an MNIST subset, CPU, same seed. Three fresh processes:

1. ``full``: the unit uninterrupted;
2. ``cut``: the same unit, SIGKILLed by the operating system in the middle of epoch ``--kill-at``
   (a batch callback sends the signal: nothing gets to clean up, as with a pre-empted machine);
3. ``resume``: the unit run again from its checkpoint in a new process.

It prints whether the resumed weights and history equal the uninterrupted ones, the seconds of
each process (training only, and whole process with TensorFlow's start-up), and as its last line
``overhead: N.NNx`` = (training seconds of cut + resume) / (training seconds of full). The lost
half epoch, the per-epoch checkpoints and the second start of training are what the ratio counts.

    python benchmarks/resume_overhead.py                  # MNIST from $IMGCLF_DATA, else synthetic
    python benchmarks/resume_overhead.py --epochs 6 --n 6000 --kill-at 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(mode: str, work: Path, a) -> None:
    import keras
    import numpy as np

    from imgclf import train
    from imgclf.models.cnns import build_mnist_cnn

    try:
        from imgclf import data

        (x, y), _ = data.load_mnist(os.environ.get("IMGCLF_DATA"))
        x, y = data.stratified_subset(x, y, a.n, 0)
        x = (x.astype("float32") / 255.0)[..., None]
        source = "MNIST"
    except Exception:  # no data here: synthetic digits-shaped data keep the benchmark runnable
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, a.n)
        x = (rng.random((a.n, 28, 28, 1)) * 0.3 + (y[:, None, None, None] / 10.0)).astype("float32")
        source = "synthetic"

    class KillMidEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == a.kill_at and batch == (a.n // a.batch_size) // 2:
                os.kill(os.getpid(), signal.SIGKILL)

    train.set_seed(0)
    model = build_mnist_cnn(128)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ckpt = work / ("full" if mode == "full" else "cut")
    t0 = time.perf_counter()
    # the elapsed time so far is kept in a file, so the killed process still reports its share
    stamp = work / f"{mode}.seconds"

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamp.write_text(str(time.perf_counter() - t0))

    cbs = [Stamp()] + ([KillMidEpoch()] if mode == "cut" else [])
    hist = train.fit(model, x, y, epochs=a.epochs, batch_size=a.batch_size, checkpoint_dir=ckpt, seed=0,
                     callbacks=cbs, desc=f"{mode} ({source})")
    seconds = time.perf_counter() - t0
    stamp.write_text(str(seconds))
    np.savez(work / f"{mode}.npz", *model.get_weights())
    (work / f"{mode}.json").write_text(json.dumps({"loss": hist["loss"], "source": source,
                                                   "resumed_at_epoch": hist.get("resumed_at_epoch")}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n", type=int, default=6000, help="training images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--kill-at", type=int, default=3, help="epoch (0-based) killed in its middle")
    p.add_argument("--child", choices=["full", "cut", "resume"])
    p.add_argument("--work")
    a = p.parse_args()
    if a.child:
        return child(a.child, Path(a.work), a)

    import numpy as np

    work = Path(tempfile.mkdtemp(prefix="resume_overhead_"))
    args = [f"--epochs={a.epochs}", f"--n={a.n}", f"--batch-size={a.batch_size}", f"--kill-at={a.kill_at}",
            f"--work={work}"]
    wall = {}
    for mode in ("full", "cut", "resume"):
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, __file__, f"--child={mode}", *args]).returncode
        wall[mode] = time.perf_counter() - t0
        expect_kill = mode == "cut"
        if expect_kill != (rc == -signal.SIGKILL):
            raise SystemExit(f"{mode}: exit code {rc}, expected {'SIGKILL' if expect_kill else 0}")
    fit_s = {m: float((work / f"{m}.seconds").read_text()) for m in ("full", "cut", "resume")}
    full, res = np.load(work / "full.npz"), np.load(work / "resume.npz")
    same_w = all(np.array_equal(full[k], res[k]) for k in full.files)
    hf, hr = json.loads((work / "full.json").read_text()), json.loads((work / "resume.json").read_text())
    same = same_w and hf["loss"] == hr["loss"]
    print(f"unit: MNIST CNN 128, {a.n} {hf['source']} images, {a.epochs} epochs, batch {a.batch_size}; "
          f"killed (SIGKILL) in the middle of epoch {a.kill_at + 1}, resumed at epoch {hr['resumed_at_epoch'] + 1}")
    print(f"training seconds: uninterrupted {fit_s['full']:.1f}; killed part {fit_s['cut']:.1f} + resumed part "
          f"{fit_s['resume']:.1f} = {fit_s['cut'] + fit_s['resume']:.1f}")
    print(f"process seconds (with TensorFlow start-up): uninterrupted {wall['full']:.1f}; "
          f"killed {wall['cut']:.1f} + resumed {wall['resume']:.1f} = {wall['cut'] + wall['resume']:.1f} "
          f"({(wall['cut'] + wall['resume']) / wall['full']:.2f}x)")
    print(f"same results: {'yes' if same else 'no'} (weights {'equal' if same_w else 'differ'}, "
          f"loss history {'equal' if hf['loss'] == hr['loss'] else 'differs'})")
    shutil.rmtree(work, ignore_errors=True)
    print(f"overhead: {(fit_s['cut'] + fit_s['resume']) / fit_s['full']:.2f}x")


if __name__ == "__main__":
    main()
