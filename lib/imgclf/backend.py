"""What differs between Keras backends, in one place: seeding and determinism, devices, mixed
precision, the multi-device set-up, and the record of which backend ran.

Keras 3 runs the same models on TensorFlow (the default here), JAX and PyTorch; the backend is
chosen by ``KERAS_BACKEND`` before Keras is first imported. The library never imports
TensorFlow unless it is the backend (or a TensorFlow-only extra, such as TensorBoard logs, is
asked for and TensorFlow is installed), so a machine with JAX and no TensorFlow runs it.

Reproducibility: the same seed on the same backend, library versions, thread settings and kind
of CPU gives the same numbers; across backends the kernels differ, so only the statistics agree
(README, "Reproducibility").
"""

from __future__ import annotations

import importlib.util
import os

import keras


def name() -> str:
    """``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def is_tensorflow() -> bool:
    return name() == "tensorflow"


def has_tensorflow() -> bool:
    """TensorFlow is installed (it may still not be the backend)."""
    return importlib.util.find_spec("tensorflow") is not None


def version() -> str:
    """The version of the backend's own library (``jax.__version__``, ...)."""
    mod = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(name())
    try:
        return importlib.import_module(mod).__version__ if mod else "?"
    except ImportError:  # pragma: no cover
        return "?"


def accelerators() -> list[str]:
    """The GPUs (or TPUs) the backend sees, as readable names; ``[]`` on a CPU."""
    b = name()
    if b == "tensorflow":
        import tensorflow as tf

        out = []
        for d in tf.config.list_physical_devices("GPU"):
            try:
                out.append(tf.config.experimental.get_device_details(d).get("device_name", d.name))
            except Exception:  # noqa: BLE001  (details are best-effort)
                out.append(d.name)
        return out
    if b == "jax":
        import jax

        return [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices() if d.platform != "cpu"]
    if b == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def describe() -> dict:
    """``{"name", "version", "keras", "accelerators"}`` for ``results.json``."""
    return {"name": name(), "version": version(), "keras": keras.__version__, "accelerators": accelerators()}


def set_seed(seed: int, deterministic: bool | None = True) -> None:
    """Seed Python, NumPy and the backend (``keras.utils.set_random_seed``).

    ``deterministic=True`` also asks the backend for deterministic kernels: TensorFlow's op
    determinism; on JAX, XLA's deterministic GPU reductions (``XLA_FLAGS``, effective for
    computations compiled afterwards; a CPU is deterministic already); on PyTorch,
    ``use_deterministic_algorithms``. ``None`` leaves determinism as it is.
    """
    keras.utils.set_random_seed(seed)
    b = name()
    if b == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notices are noise in a report
        if deterministic:
            tf.config.experimental.enable_op_determinism()
    elif b == "jax" and deterministic:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()
    elif b == "torch" and deterministic:
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def use_mixed_precision(enable: bool | None = None) -> bool:
    """``mixed_float16`` when asked, or (``None``) when an accelerator is present. Returns the state."""
    if enable is None:
        enable = bool(accelerators())
    keras.mixed_precision.set_global_policy("mixed_float16" if enable else "float32")
    return enable


class _NoScope:
    """The scope of one device: nothing to set up."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


class _JaxDataParallel:
    """``keras.distribution.DataParallel`` over every JAX device, with a ``scope()`` like a
    TensorFlow strategy's (the distribution is set inside it and restored after)."""

    def __init__(self, devices):
        self.devices = devices
        self.num_replicas_in_sync = len(devices)

    def scope(self):
        import contextlib

        @contextlib.contextmanager
        def _scope():
            dist = keras.distribution.DataParallel(devices=self.devices)
            before = keras.distribution.distribution()
            keras.distribution.set_distribution(dist)
            try:
                yield dist
            finally:
                keras.distribution.set_distribution(before)

        return _scope()


def strategy(device_type: str = "GPU"):
    """The data-parallel set-up for training over every device of ``device_type``; build and compile
    the model inside ``strategy().scope()`` and keep the global batch size.

    TensorFlow: ``MirroredStrategy`` when there are several devices (one replica each, gradients
    all-reduced), else the default strategy. JAX: ``keras.distribution.DataParallel`` over the
    devices when there are several. One device, or PyTorch: a scope that does nothing.
    ``device_type="CPU"`` exists for tests (two logical CPUs stand in for two GPUs).
    """
    b = name()
    if b == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices(device_type)
        if len(devices) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in devices])
        return tf.distribute.get_strategy()
    if b == "jax":
        devices = keras.distribution.list_devices(device_type.lower())
        if len(devices) > 1:
            return _JaxDataParallel(devices)
    return _NoScope()
