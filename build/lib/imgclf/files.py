"""Files written whole or not at all, and values JSON can hold.

Every file the project writes (results, tables, figures, run-unit records, weights) goes through
:func:`atomic_write`: a reader, or a run killed mid-write, sees the old file or the new one, never
half of one. :func:`jsonable` turns NumPy values, paths and dataclasses into plain JSON values
(non-finite floats become ``null``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through a temporary sibling file and a rename. The file gets the usual
    permissions (0666 less the umask), not the 0600 of ``mkstemp``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the bytes do
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """:func:`atomic_write` of ``jsonable(obj)`` as indented JSON."""
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=1) + "\n")


def jsonable(x: Any) -> Any:
    """``x`` with NumPy values, paths, tuples and dataclasses turned into plain JSON values."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if hasattr(x, "as_dict"):
            return jsonable(x.as_dict())
        return {f.name: jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x
