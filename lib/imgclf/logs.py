"""Quiet TensorFlow, talkative imgclf: what ``import imgclf`` sets up for logging.

TensorFlow's C++ logging (``E0000 ... node_def_util.cc:682] NodeDef mentions attribute
use_unbounded_threadpool``, CUDA and oneDNN notices, absl's "All log messages before
absl::InitializeLog()") goes to the process's stderr, which Jupyter shows as red boxes. It is
silenced at the source:

- ``TF_CPP_MIN_LOG_LEVEL=3`` is set in the environment unless the user set a value (the ``imgclf``
  Jupyter kernel sets it too, in its kernelspec). An error that matters still reaches the notebook,
  as the Python exception TensorFlow raises.
- absl prints a few lines while TensorFlow loads, before any log level applies; while
  ``tensorflow`` is first imported, stderr (file descriptor 2) is captured, and what it caught goes to
  the ``imgclf.tensorflow`` logger at DEBUG (all of it to stderr if the import fails).

To see TensorFlow's logging again, set ``TF_CPP_MIN_LOG_LEVEL=0`` before the first import
(``%env TF_CPP_MIN_LOG_LEVEL=0`` in a notebook's first cell): then nothing is captured.

The library's own messages (``[runs] reused ...``) go through the ``imgclf`` loggers at INFO and are
shown on stdout by default, one line each, while no logging is configured (no handler on the root
logger); with ``logging.basicConfig`` or any root handler, they go there instead. Choose how much
to see with the usual call, e.g. ``logging.getLogger("imgclf").setLevel("WARNING")`` (or
``"DEBUG"`` to also see what TensorFlow printed while loading).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

TF_ENV_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "3"}
"""Environment defaults for TensorFlow, applied at ``import imgclf`` unless already set (and
written into the ``imgclf`` kernelspec by ``run_all.sh``)."""

log = logging.getLogger("imgclf")


class _DefaultHandler(logging.StreamHandler):
    """Prints ``imgclf`` records on stdout while logging is not configured (no root handler)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # the sys.stdout of the moment: Jupyter and pytest replace it
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass

    def emit(self, record):
        if not logging.getLogger().handlers:
            super().emit(record)


def setup_logging() -> None:
    """INFO for the ``imgclf`` loggers, shown on stdout until the user configures logging. Keeps a
    level the user set before importing imgclf."""
    if not any(isinstance(h, _DefaultHandler) for h in log.handlers):
        log.addHandler(_DefaultHandler())
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def setup_environment() -> None:
    """:data:`TF_ENV_DEFAULTS` where unset; capture absl's loading notices (see the module doc)."""
    for k, v in TF_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() not in ("", "0")
    if quiet and "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Wraps the first import of ``tensorflow`` in :func:`captured_stderr` (then steps aside)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _CapturingLoader(spec.loader)
        return spec


class _CapturingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with captured_stderr("tensorflow"):
            self.loader.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, is_package...
        return getattr(self.loader, name)


class captured_stderr:
    """``with captured_stderr("what"):`` file descriptor 2 goes to a temporary file; on exit its
    lines go to the ``imgclf.<what>`` logger at DEBUG, or, if the block raised, back to stderr."""

    def __init__(self, what: str):
        self.logger = logging.getLogger(f"imgclf.{what}")

    def __enter__(self):
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            self.saved = None  # no file descriptor 2 (an embedded interpreter): capture nothing
            return self
        self.tmp = tempfile.TemporaryFile()
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.saved is None:
            return False
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.tmp.seek(0)
        text = self.tmp.read().decode("utf-8", "replace")
        self.tmp.close()
        if exc_type is not None:
            sys.stderr.write(text)
        else:
            for line in text.splitlines():
                if line.strip():
                    self.logger.debug(line)
        return False
