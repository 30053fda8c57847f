"""Every Keras backend: the library trains under JAX with TensorFlow absent, resumes bit for bit
there too, and agrees with TensorFlow within a stated tolerance.

These tests are ``portable``: ``KERAS_BACKEND=jax pytest -m portable`` runs them (and the other
portable ones) under JAX, as CI does; ``./run_all.sh gpu-check`` runs the same subset on a GPU.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.portable
LIB = str(Path(__file__).resolve().parents[1] / "lib")

BLOCK_TF = """
import sys, importlib.abc
class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("TensorFlow is not installed here (blocked by the test)")
sys.meta_path.insert(0, _NoTensorFlow())
"""


def _run(code: str, backend: str, block_tf: bool = False, timeout: int = 300) -> dict:
    pytest.importorskip(backend if backend != "torch" else "torch")
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": LIB + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    src = (BLOCK_TF if block_tf else "") + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


RESUME = """
import json, sys, tempfile, numpy as np, keras
from imgclf import train, backend
assert "tensorflow" not in sys.modules or backend.is_tensorflow()

def model():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((20,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dropout(0.3), keras.layers.Dense(2, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return m

class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 3 and batch == 3:
            raise KeyboardInterrupt

x = np.random.default_rng(0).random((300, 20)).astype("float32")
y = (x[:, :10].sum(1) > 5).astype("int64")
kw = dict(epochs=5, batch_size=32, validation_data=(x[:50], y[:50]), seed=7, restore_best="val_loss")
d = tempfile.mkdtemp()
ref = model(); h_ref = train.fit(ref, x, y, checkpoint_dir=d + "/ref", **kw)
try:
    train.fit(model(), x, y, checkpoint_dir=d + "/cut", callbacks=[Kill()], **kw)
except KeyboardInterrupt:
    pass
res = model(); h = train.fit(res, x, y, checkpoint_dir=d + "/cut", **kw)
same = all(np.array_equal(a, b) for a, b in zip(ref.get_weights(), res.get_weights()))
print(json.dumps({"backend": backend.name(), "tf_loaded": "tensorflow" in sys.modules, "same": same,
                  "resumed_at": h["resumed_at_epoch"], "loss": h["loss"], "loss_ref": h_ref["loss"]}))
"""


def test_jax_trains_and_resumes_bit_for_bit_without_tensorflow():
    r = _run(RESUME, "jax", block_tf=True)
    assert r["backend"] == "jax" and r["tf_loaded"] is False
    assert r["resumed_at"] == 3 and r["same"] and r["loss"] == r["loss_ref"]
    assert r["loss"][-1] < r["loss"][0]  # it learned


def test_epoch_order_depends_only_on_seed_and_epoch():
    from imgclf.train import EpochBatches

    x, y = np.arange(50.0)[:, None], np.arange(50)
    run = EpochBatches(x, y, batch_size=8, seed=3, first_epoch=0)
    for _ in range(3):
        run.on_epoch_end()
    resumed = EpochBatches(x, y, batch_size=8, seed=3, first_epoch=3)
    assert [b[1].tolist() for b in (run[i] for i in range(len(run)))] == \
           [b[1].tolist() for b in (resumed[i] for i in range(len(resumed)))]
    assert sorted(np.concatenate([resumed[i][1] for i in range(len(resumed))]).tolist()) == list(range(50))
    assert EpochBatches(x, y, 8, seed=3, first_epoch=4)[0][1].tolist() != resumed[0][1].tolist()


AGREE = """
import json, numpy as np, keras
from imgclf import backend
rng = np.random.default_rng(0)
x = rng.random((256, 20)).astype("float32"); y = (x[:, :10].sum(1) > 5).astype("int64")
m = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(2, activation="softmax")])
w0 = [np.random.default_rng(i).normal(0, 0.3, w.shape).astype("float32") for i, w in enumerate(m.get_weights())]
m.set_weights(w0)
m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
h = m.fit(x, y, batch_size=256, epochs=30, shuffle=False, verbose=0).history["loss"]
print(json.dumps({"backend": backend.name(), "loss": h, "w": [w.ravel().tolist() for w in m.get_weights()]}))
"""

TOLERANCE = 1e-4
"""Largest weight difference allowed between backends after 30 full-batch SGD steps from the same
weights (float32; measured here: 6.0e-8, the order of floating-point sums; the loss agreed to every digit)."""


def test_jax_and_tensorflow_agree_within_the_stated_tolerance():
    pytest.importorskip("tensorflow")
    tf_run, jax_run = _run(AGREE, "tensorflow"), _run(AGREE, "jax")
    diff = max(np.abs(np.array(a) - np.array(b)).max() for a, b in zip(tf_run["w"], jax_run["w"]))
    assert diff < TOLERANCE, diff
    assert abs(tf_run["loss"][-1] - jax_run["loss"][-1]) < TOLERANCE
    assert tf_run["loss"][-1] < tf_run["loss"][0] - 0.05  # it trained: the agreement is not of two idle runs
