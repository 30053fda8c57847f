"""Image decoding, checked reading and the decoded-image cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .datasets import ImageSet


from .integrity import (
    DataFileMissingError,
    DataIntegrityError,
    sha256_bytes,
    sha256_file,
)


def read_images(images: ImageSet, size: int, verify: bool = True, progress: bool = False) -> np.ndarray:
    """Decode, convert to RGB and resize every image of ``images`` to ``size`` x ``size``.

    Returns uint8 ``(n, size, size, 3)``. Non-square images are resized without cropping
    (bilinear, as ``keras.utils.image_dataset_from_directory`` does). A missing file raises
    :class:`DataFileMissingError`; a file that cannot be decoded, or whose sha256 differs from the
    one the source lists, raises :class:`DataIntegrityError` naming it.
    """
    import io

    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, path in enumerate(images.paths):
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError as e:
            raise DataFileMissingError(f"image file {path} is missing") from e
        if verify and images.sha256 is not None and images.sha256[i] and sha256_bytes(raw) != images.sha256[i]:
            raise DataIntegrityError(f"image file {path}: sha256 {sha256_bytes(raw)}, expected {images.sha256[i]}")
        out[i] = read_image(io.BytesIO(raw), size, channels=3, name=path)
    return out




def read_image(path, size: int | None = None, channels: int = 1, name: str | os.PathLike | None = None) -> np.ndarray:
    """Decode one JPEG/PNG (any mode) to uint8 ``(size, size, channels)`` (or its own size).

    ``path`` is a file name or a binary file object (then ``name`` is what errors call it).
    ``channels`` 1 converts to grayscale, 3 to RGB. ``size`` resizes to a square (aspect ratio
    not kept; bilinear with antialiasing). A file that cannot be decoded (truncated, not an
    image) raises :class:`DataIntegrityError` naming it.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    try:
        with Image.open(path) as im:
            if size is not None and im.format == "JPEG":
                im.draft("L" if channels == 1 else "RGB", (size, size))  # fast DCT downscale
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None:
                im = im.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise DataIntegrityError(f"image {name or path} cannot be decoded ({type(e).__name__}: {e}); "
                                 "it is truncated or not an image: replace it from its source") from e
    return arr[..., None] if channels == 1 else arr


def load_images(files, size: int, channels: int = 1, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Decode ``files`` once to uint8 ``(n, size, size, channels)``.

    With ``cache_dir`` the array is kept in ``<cache_dir>/images_<size>_<channels>_<key>.npy``,
    the key being a hash of the file names, sizes and modification times, so later calls (and
    later epochs) never decode again, and a changed file invalidates the cache.
    """
    files = [str(f) for f in files]
    cache = None
    if cache_dir is not None:
        h = hashlib.sha256()
        for f in files:
            st = os.stat(f)
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        cache = Path(cache_dir) / f"images_{size}_{channels}_{h.hexdigest()[:16]}.npy"
        if cache.exists():
            try:
                arr = np.load(cache, allow_pickle=False)
                if arr.shape == (len(files), size, size, channels):
                    return arr
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt
    out = np.empty((len(files), size, size, channels), np.uint8)
    for i, f in enumerate(files):
        out[i] = read_image(f, size, channels)
    if cache is not None:
        from ..files import atomic_write

        atomic_write(cache, lambda f: np.save(f, out, allow_pickle=False))
    return out


def file_sha256s(files) -> np.ndarray:
    """sha256 hex digest of each file's bytes (object array)."""
    return np.array([sha256_file(f) for f in files], dtype=object)


