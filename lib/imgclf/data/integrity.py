"""Checksums, downloads and the two errors every loader raises.

A missing file raises :class:`DataFileMissingError` naming the file, its checksum and the directory
where it belongs; a truncated, corrupted or swapped file raises :class:`DataIntegrityError`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class DataFileMissingError(FileNotFoundError):
    """A data file is not on disk and could not be downloaded."""


class DataIntegrityError(ValueError):
    """A data file is on disk but truncated, corrupted or not what it claims to be."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _missing(name: str, directory: Path, checksum: str, how: str, cause: str = "") -> DataFileMissingError:
    msg = (
        f"data file {name!r} is missing: expected it at {directory / name} "
        f"(sha256 {checksum}). {how} Set the data directory with the `data_dir` notebook "
        f"parameter or the IMGCLF_DATA environment variable (now: {directory.parent})."
    )
    if cause:
        msg += f" Download attempt failed: {cause}"
    return DataFileMissingError(msg)


