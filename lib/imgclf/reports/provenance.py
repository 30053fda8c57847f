"""What made a run: the commit, the hardware, the thread settings, the Keras backend and library
versions, and the one-line summary of them that every report page and the index show."""

from __future__ import annotations

import os
import platform
import sys


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC",
              "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED", "KERAS_BACKEND")
"""Environment variables that change threads or numerics (recorded, set or not)."""


def _tensorflow():
    """TensorFlow when installed (the JAX and PyTorch backends run without it), else None."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


def threads() -> dict:
    """The settings that decide whether a rerun gives the same numbers bit for bit.

    TensorFlow's intra-op and inter-op thread pools (``0`` = TensorFlow's default; ``None``
    without TensorFlow), the CPUs this process may use (affinity, which containers and
    ``taskset`` limit) beside ``os.cpu_count()``, whether op determinism is on, and
    :data:`THREAD_ENV` (None = not set).
    """
    tf = _tensorflow()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count()
    determinism = None
    if tf is not None:
        try:  # not in tf.config's public API (only enable_op_determinism is)
            from tensorflow.python.framework.config import is_op_determinism_enabled

            determinism = bool(is_op_determinism_enabled())
        except ImportError:  # pragma: no cover - older or newer TensorFlow
            pass
    return {
        "tf_intra_op_parallelism": tf.config.threading.get_intra_op_parallelism_threads() if tf else None,
        "tf_inter_op_parallelism": tf.config.threading.get_inter_op_parallelism_threads() if tf else None,
        "cpus_usable": usable,
        "cpu_count": os.cpu_count(),
        "op_determinism": determinism,
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
    }


def backend() -> dict:
    """The Keras backend this process runs (``tensorflow``, ``jax``, ``torch``...) and its version."""
    import importlib.metadata as md

    import keras

    name = keras.backend.backend()
    dist = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}.get(name, name)
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        version = None
    return {"name": name, "version": version}


def hardware() -> dict:
    """What ran this: CPU, core count, thread settings (:func:`threads`), GPUs, the Keras backend
    (:func:`backend`) and library versions."""
    import keras
    import numpy as np
    import sklearn

    tf = _tensorflow()
    gpus = []
    for g in (tf.config.list_physical_devices("GPU") if tf else []):
        try:
            gpus.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # pragma: no cover - details are best effort
            gpus.append(g.name)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads(),
        "gpus": gpus,
        "backend": backend(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__ if tf else None,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def git_provenance(repo: str | os.PathLike | None = None) -> dict:
    """The commit the run's code came from: ``{"commit": sha, "dirty": bool}`` (``dirty``: tracked
    files differ from the commit). From git in a source checkout; for an installed package, the
    commit pip recorded (:func:`imgclf.provenance_env.code_version`); ``None`` when unknown."""
    if repo is not None:
        from ..runs import git_commit

        return git_commit(repo)
    from ..provenance_env import code_version

    v = code_version()
    return {"commit": v.get("commit"), "dirty": v.get("dirty")}


def _d(x) -> dict:
    return x if isinstance(x, dict) else {}


def _s(x, default: str = "?") -> str:
    return str(x) if isinstance(x, (str, int, float)) and not isinstance(x, bool) else default


def commit_text(res: dict) -> str:
    git = _d(res.get("git"))
    c = git.get("commit")
    if not isinstance(c, str) or not c:
        return "commit unknown"
    return f"commit {c[:10]}" + (" + uncommitted changes" if git.get("dirty") is True else "")


def hardware_text(res: dict) -> str:
    hw = _d(res.get("hardware"))
    gpus = ", ".join(_s(g) for g in hw.get("gpus") or [] if isinstance(hw.get("gpus"), list))
    cpu = f"{_s(hw.get('cpu'))} ({_s(hw.get('cpu_count'))} cores)"
    return f"{gpus}; {cpu}" if gpus else cpu


def backend_text(res: dict) -> str:
    hw = _d(res.get("hardware"))
    b = _d(hw.get("backend"))
    if b.get("name"):
        return f"Keras {_s(hw.get('keras'))} on {_s(b.get('name'))} {_s(b.get('version'), '')}".strip()
    if hw.get("tensorflow"):  # runs recorded before the backend was: TensorFlow was the only one
        return f"Keras {_s(hw.get('keras'))} on tensorflow {_s(hw.get('tensorflow'))}"
    return "backend not recorded"


def date_text(res: dict) -> str:
    d = res.get("finished") or res.get("started")
    return _s(d).replace("T", " ").replace("+00:00", " UTC")


def summary(res: dict) -> list[tuple[str, str]]:
    """``[(label, text)]`` for a report's top bar: profile, date, commit, hardware, backend."""
    return [("profile", _s(res.get("profile"), "unknown")), ("date", date_text(res)), ("code", commit_text(res)),
            ("hardware", hardware_text(res)), ("backend", backend_text(res))]
