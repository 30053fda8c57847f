"""Checksums, downloads, safe paths and the two errors every loader raises.

A missing file raises :class:`DataFileMissingError` naming the file, its checksum and the directory
where it belongs; a truncated, corrupted or swapped file raises :class:`DataIntegrityError`; a path
read from an index file (CSV, manifest) that leaves its root raises :class:`UnsafePathError`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath


class DataFileMissingError(FileNotFoundError):
    """A data file is not on disk and could not be downloaded."""


class DataIntegrityError(ValueError):
    """A data file is on disk but truncated, corrupted or not what it claims to be."""


class UnsafePathError(DataIntegrityError):
    """A path read from an index file is absolute, climbs with ``..`` or resolves outside its root."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def path_inside(root: str | os.PathLike, rel: str, source: str) -> Path:
    """``root / rel`` for a path read from an index file (``source`` names that file and row).

    Refuses, with :class:`UnsafePathError`, an empty or absolute path (also a Windows drive or
    UNC path), any ``..`` component (either separator), and a path that resolves outside ``root``
    once symbolic links are followed. Returns the joined (not resolved) path.
    """
    root = Path(root)
    text = str(rel).strip()
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
    fix = f"index paths must be relative to {root} and stay inside it; fix or replace {source.split(':')[0]}"
    if not parts or text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(f"{source}: path {text!r} is empty or absolute; {fix}")
    if ".." in parts:
        raise UnsafePathError(f"{source}: path {text!r} climbs out with '..'; {fix}")
    full = root.joinpath(*PurePosixPath(*parts).parts)
    real_root, real = root.resolve(), full.resolve()
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(f"{source}: path {text!r} resolves to {real}, outside {real_root} "
                              f"(a symbolic link leaving the data set?); {fix}")
    return full


def _missing(name: str, directory: Path, checksum: str, how: str, cause: str = "") -> DataFileMissingError:
    msg = (
        f"data file {name!r} is missing: expected it at {directory / name} "
        f"(sha256 {checksum}). {how} Set the data directory with the `data_dir` notebook "
        f"parameter or the IMGCLF_DATA environment variable (now: {directory.parent})."
    )
    if cause:
        msg += f" Download attempt failed: {cause}"
    return DataFileMissingError(msg)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def h5_damage(path: str | os.PathLike) -> str | None:
    """Why the HDF5 file ``path`` (Keras weights) cannot be used: missing, empty, no HDF5 signature
    (an HTML page or error message saved in its place), or cut short so that h5py cannot open it
    or read one of its datasets. ``None`` when every dataset in it reads."""
    import h5py

    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if size == 0:
        return "is empty"
    if head != HDF5_SIGNATURE:
        text = head.lstrip()[:1] in (b"<", b"{")
        return ("is not an HDF5 file" + (" (it is text: an HTML page or an error message)" if text else "")
                + f" (first bytes {head[:8]!r})")
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)
    except Exception as e:  # h5py raises OSError, KeyError, RuntimeError on cut files
        first = str(e).splitlines()[0][:150] if str(e) else "unreadable"
        return f"is damaged ({type(e).__name__}: {first}); {size:,} bytes, probably cut short by a kill"
    return None


def md5_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """md5 hex digest (only to compare with hashes published as md5, such as Keras' weights)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
