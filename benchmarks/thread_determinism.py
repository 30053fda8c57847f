"""Same seed, same numbers? Bit-for-bit comparison of a small CNN trained in fresh processes.

Trains the same small CNN (paper 2's plain CNN, 2 epochs on 1,024 noisy 28x28 images, class 1 with a brighter top half, seeded
with ``imgclf.train.set_seed``, op determinism on) in separate Python processes with different
TensorFlow thread settings, and prints the sha256 of the trained weights of each, so it shows what
the README's "Reproducibility" paragraph states:

* the same thread settings twice give identical weights (bit for bit);
* 1 vs 2 intra-op threads give different weights (float sums in another order).

The environment variable ``TF_NUM_INTRAOP_THREADS=<n>`` (recorded in results.json) pins the pool
the same way: with it set to 1 and 2 instead of the API call, the weights' sha256 equal the 1- and
2-thread ones here (measured on the 2-core CPU, TensorFlow 2.21).

    PYTHONPATH=lib python benchmarks/thread_determinism.py [--threads 1 1 2 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import hashlib, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
intra = int(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(intra)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras, numpy as np
from imgclf import train
from imgclf.models.cnns import build_plain_cnn
train.set_seed(0)
rng = np.random.default_rng(0)
x = rng.random((1024, 28, 28, 1), dtype=np.float32)
y = rng.integers(0, 2, 1024)
x[y == 1, :14] += 0.25  # class 1: brighter top half (learnable in 2 epochs)
x *= 200.0  # pixel values 0..255, as the CNN's Rescaling(1/255) expects
m = build_plain_cnn((28, 28, 1), 2, (16, 32), 64, 0.2)
m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
m.fit(x, y, epochs=2, batch_size=64, verbose=0)
h = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in m.get_weights())).hexdigest()
print(intra, h, float(m.evaluate(x, y, verbose=0)))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 1, 2, 2])
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "lib"))
    seen: dict[int, set[str]] = {}
    print("intra-op threads | sha256 of the trained weights | training loss")
    for t in a.threads:
        out = subprocess.run([sys.executable, "-c", CHILD, str(t)], env=env, capture_output=True, text=True, check=True)
        t_, h, loss = out.stdout.split()[-3:]
        seen.setdefault(t, set()).add(h)
        print(f"{t_:>16} | {h[:16]}... | {loss}")
    for t, hs in seen.items():
        print(f"{t} thread(s): {'identical' if len(hs) == 1 else 'DIFFERENT'} across {a.threads.count(t)} runs")
    all_h = set().union(*seen.values())
    print(f"distinct weight sets over all runs: {len(all_h)} (thread counts tried: {sorted(seen)})")


if __name__ == "__main__":
    main()
