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
    (bilinear, as ``keras.utils.image_dataset_from_directory`` does); every mode and bit depth is
    scaled as :func:`read_image` says. A missing file raises :class:`DataFileMissingError`; files
    that cannot be decoded, or whose sha256 differs from the one the source lists, raise one
    :class:`DataIntegrityError` naming each of them and how many there are.
    """
    import io

    out = np.empty((len(images), size, size, 3), np.uint8)
    bad: list[str] = []
    notes = _Notes()
    for i, path in enumerate(images.paths):
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError as e:
            raise DataFileMissingError(f"image file {path} is missing") from e
        if verify and images.sha256 is not None and images.sha256[i] and sha256_bytes(raw) != images.sha256[i]:
            bad.append(f"image file {path}: sha256 {sha256_bytes(raw)}, expected {images.sha256[i]}")
            continue
        try:
            out[i] = read_image(io.BytesIO(raw), size, 3, name=path, _notes=notes)
        except DataIntegrityError as e:
            bad.append(str(e))
    _refuse(bad, len(images))
    notes.warn(len(images))
    return out


# Pillow modes whose samples are wider than 8 bits, and the largest value of each (0 = the image's
# own range decides, see _wide_to_float)
_WIDE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 0, "F": 0}


class _Notes:
    """What decoding a batch of images found worth one warning (not one per image)."""

    def __init__(self):
        self.dark16: list[str] = []

    def warn(self, total: int) -> None:
        if self.dark16:
            import warnings

            warnings.warn(
                f"{len(self.dark16)} of {total} 16-bit image(s) use only values up to 4095 (12-bit data stored "
                f"without scaling, e.g. {self.dark16[0]}): they are read on the 16-bit scale, as PNG defines it, and "
                "come out dark (at most 16 of 255). If they are 12-bit X-rays, export them scaled to the full 16-bit "
                "range (value x 16) or as 8-bit images", stacklevel=3)


def _wide_to_float(im, name, notes: _Notes | None) -> np.ndarray:
    """A grey image of more than 8 bits as float32 on the 0..255 scale, or a refusal naming it."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        a = a.astype(np.float32)
        if notes is not None and a.size and a.max() <= 4095 and a.max() > 255:
            notes.dark16.append(str(name))
        return a * (255.0 / 65535.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "I":  # 32-bit integers: Pillow's mode for 16-bit PNGs and TIFFs in some versions
        if lo < 0 or hi > 65535:
            raise DataIntegrityError(
                f"image {name} holds 32-bit integers from {lo:g} to {hi:g}: no standard scale maps them to 0..255; "
                "export it as an 8- or 16-bit image (PNG) and run again")
        return a.astype(np.float32) * (255.0 / 65535.0)
    # "F": 32-bit floats (TIFF). Only the 0..1 convention is unambiguous.
    if not np.isfinite(a).all() or lo < 0 or hi > 1:
        raise DataIntegrityError(
            f"image {name} holds 32-bit floats from {lo:g} to {hi:g}: only floats in 0..1 have a standard scale; "
            "export it as an 8- or 16-bit image (PNG) or scale it to 0..1 and run again")
    return a.astype(np.float32) * 255.0


def _decode(path, size, channels, name, notes: _Notes | None = None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in _WIDE:  # 16-bit grey (DICOM exports), 32-bit int or float: scale, never clip
                im.load()
                f = _wide_to_float(im, name, notes)
                img = Image.fromarray(f)  # float32: mode "F"
                if size is not None:
                    img = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
                g = np.clip(np.rint(np.asarray(img, np.float32)), 0, 255).astype(np.uint8)
                return g[..., None] if channels == 1 else np.repeat(g[..., None], 3, axis=-1)
            if size is not None and im.format == "JPEG":
                im.draft("L" if channels == 1 else "RGB", (size, size))  # fast DCT downscale
            if im.mode in ("P", "PA") or (im.mode == "L" and "transparency" in im.info):
                im = im.convert("RGBA")  # palette (and its transparency) applied; alpha dropped below
            if im.mode not in ("1", "L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "La", "RGBa"):
                raise DataIntegrityError(
                    f"image {name} has the Pillow mode {im.mode!r}, which is not read here (1-, 8- and 16-bit grey, "
                    "32-bit grey in 0..1, palette, RGB, RGBA, CMYK and YCbCr are); export it as PNG or JPEG")
            # alpha is dropped, not composited, as keras.utils.image_dataset_from_directory does
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None:
                im = im.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
            arr = np.asarray(im, dtype=np.uint8)
    except DataIntegrityError:
        raise
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise DataIntegrityError(f"image {name} cannot be decoded ({type(e).__name__}: {e}); "
                                 "it is truncated or not an image: replace it from its source") from e
    return arr[..., None] if channels == 1 else arr


def read_image(path, size: int | None = None, channels: int = 1, name: str | os.PathLike | None = None,
               _notes: _Notes | None = None) -> np.ndarray:
    """Decode one image file (PNG, JPEG, TIFF, BMP, GIF, WebP; any mode) to uint8
    ``(size, size, channels)`` (or its own size).

    ``path`` is a file name or a binary file object (then ``name`` is what errors call it).
    ``channels`` 1 converts to grayscale, 3 to RGB. ``size`` resizes to a square (aspect ratio
    not kept; bilinear with antialiasing). Every bit depth is scaled to 0..255, never clipped:
    16-bit grey (``I;16``, ``I;16B``: the usual PNG export of X-rays from DICOM) by 255/65535,
    32-bit integers in 0..65535 likewise, 32-bit floats in 0..1 by 255 (resized before rounding);
    1-bit images give 0 and 255; palette images go through their palette; alpha (``LA``, ``RGBA``,
    a palette's transparency) is dropped, as Keras' image loaders do; CMYK and YCbCr are converted
    by Pillow. Floats outside 0..1, integers outside 0..65535 and other modes are refused. A file
    that cannot be decoded (truncated, not an image) or is refused raises
    :class:`DataIntegrityError` naming it.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    notes = _notes if _notes is not None else _Notes()  # a batch warns once, at its end
    arr = _decode(path, size, channels, name or path, notes)
    if _notes is None:
        notes.warn(1)
    return arr


def _refuse(bad: list[str], total: int) -> None:
    """One error for every file of a batch that cannot be used (not one run per broken file)."""
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise DataIntegrityError(f"{len(bad)} of {total} image file(s) cannot be used: {shown}")


def load_images(files, size: int, channels: int = 1, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Decode ``files`` once to uint8 ``(n, size, size, channels)`` (each as :func:`read_image`
    says; the files that cannot be decoded are named together in one :class:`DataIntegrityError`).

    With ``cache_dir`` the array is kept in ``<cache_dir>/images_<size>_<channels>_<key>.npy``,
    the key being a hash of the file names, sizes and modification times, so later calls (and
    later epochs) never decode again, and a changed file invalidates the cache.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    files = [str(f) for f in files]
    cache = None
    if cache_dir is not None:
        h = hashlib.sha256()
        h.update(b"decode v2\n")  # v2: 16-bit and float images scaled, not clipped (older caches are stale)
        for f in files:
            st = os.stat(f)
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        cache = Path(cache_dir) / f"images_{size}_{channels}_{h.hexdigest()[:16]}.npy"
        if cache.exists():
            try:
                arr = np.load(cache, allow_pickle=False)
                if arr.shape == (len(files), size, size, channels) and arr.dtype == np.uint8:
                    return arr
            except (OSError, ValueError, EOFError):
                pass  # a damaged cache is rebuilt
    out = np.empty((len(files), size, size, channels), np.uint8)
    bad: list[str] = []
    notes = _Notes()
    for i, f in enumerate(files):
        try:
            out[i] = read_image(f, size, channels, _notes=notes)
        except DataIntegrityError as e:
            bad.append(str(e))
    _refuse(bad, len(files))
    notes.warn(len(files))
    if cache is not None:
        from ..files import atomic_write

        atomic_write(cache, lambda f: np.save(f, out, allow_pickle=False))
    return out


def file_sha256s(files) -> np.ndarray:
    """sha256 hex digest of each file's bytes (object array)."""
    return np.array([sha256_file(f) for f in files], dtype=object)


