"""Training throughput of paper 3's networks: images per second per model and input size.

Times the notebook's own training step (``imgclf.papers.p03_mnist_deep_cnns.pipeline.build``: 28x28x1 digits in, resized to
the input size inside the model, SGD, GoogLeNet with its auxiliary heads) on random digits fed
through the notebook's ``tf.data`` pipeline, with the device set-up the notebook uses on this
machine (on a GPU: mixed precision, XLA, several steps per call; on a CPU: float32). Prints the
machine, then one line per model: images/s at each size, the time of one paper-scale epoch
(60,000 images) at the largest size, and the model's speed as a ratio to the fastest model.

    python benchmarks/train_throughput.py                       # sizes 32 64 on a CPU, 32 112 224 on a GPU
    python benchmarks/train_throughput.py --sizes 224 --steps 200 --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def measure(arch: str, size: int, batch_size: int, steps: int, warmup: int, dev) -> float:
    """Training images per second over ``steps`` steps after ``warmup`` steps (tracing, autotuning)."""
    import keras
    from imgclf import train
    from imgclf.papers.p03_mnist_deep_cnns import pipeline as deepcnn

    keras.backend.clear_session(free_memory=True)
    train.use_mixed_precision(dev.mixed_precision)
    model = deepcnn.build(arch, size, "sgd", 1e-3, jit_compile=dev.jit_compile,
                          steps_per_execution=min(dev.steps_per_execution, steps))
    rng = np.random.default_rng(0)
    n = batch_size * 8
    x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    ds = deepcnn.dataset(x, y, batch_size, shuffle=True, outputs=len(model.outputs)).repeat()
    model.fit(ds, epochs=1, steps_per_epoch=warmup, verbose=0)
    t0 = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - t0
    del model
    return steps * batch_size / seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vgg16", "googlenet", "resnet18"])
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="input sizes (default: 32 64 on a CPU, 32 112 224 on a GPU)")
    ap.add_argument("--batch-size", type=int, default=32, help="the paper's 32")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 on a CPU, 300 on a GPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 3 CPU, 100 GPU)")
    ap.add_argument("--mixed-precision", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--jit-compile", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--steps-per-execution", type=int, default=None, help="default: 1 on a CPU, 50 on a GPU")
    a = ap.parse_args(argv)

    import tensorflow as tf
    from imgclf.models.cnns import ARCH_NAMES
    from imgclf.papers.p03_mnist_deep_cnns import pipeline as deepcnn
    from imgclf.reports import hardware

    gpu = bool(tf.config.list_physical_devices("GPU"))
    sizes = a.sizes or ([32, 112, 224] if gpu else [32, 64])
    steps = a.steps or (300 if gpu else 10)
    warmup = a.warmup or (100 if gpu else 3)
    spe = a.steps_per_execution or (50 if gpu else 1)
    from imgclf.papers.p03_mnist_deep_cnns.config import Config

    dev = deepcnn.setup(Config(mixed_precision=a.mixed_precision, jit_compile=a.jit_compile, steps_per_execution=spe))
    hw = hardware()
    print(f"machine: {', '.join(hw['gpus']) or hw['cpu'] + ' (no GPU)'}; {hw['cpu_count']} CPU cores; "
          f"TensorFlow {hw['tensorflow']}, Keras {hw['keras']}")
    print(f"set-up: batch {a.batch_size}, {warmup} warm-up + {steps} timed steps, mixed precision "
          f"{'on' if dev.mixed_precision else 'off'}, XLA {'on' if dev.jit_compile else 'off'}, "
          f"{spe} steps per call; SGD; GoogLeNet with auxiliary heads")
    rates = {}
    for arch in a.models:
        rates[arch] = {s: measure(arch, s, a.batch_size, steps, warmup, dev) for s in sizes}
    top = max(sizes)
    fastest = max(r[top] for r in rates.values())
    for arch, r in rates.items():
        cells = "  ".join(f"{s:>3} px: {v:8.1f} img/s" for s, v in r.items())
        epoch = 60000 / r[top]
        print(f"{ARCH_NAMES[arch]:<10} {cells}  | 60k-image epoch at {top} px: {epoch / 60:7.1f} min"
              f"  | x{r[top] / fastest:.2f} of the fastest at {top} px", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
