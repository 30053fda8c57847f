"""Every data set behind one call each: MNIST, the faces, densitograms, Linnaeus 5 / flowers, image
folders and the MURA layout. Shapes and dtypes are part of each loader's contract (see the docstrings).
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config
from .integrity import (
    DataFileMissingError,
    DataIntegrityError,
    _missing,
    path_inside,
    sha256_bytes,
    sha256_file,
)


# ------------------------------------------------------------------------------------------
# MNIST
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _IdxFile:
    name: str
    sha256_content: str  # of the *decompressed* IDX content (the .gz wrapper may differ)
    shape: tuple[int, ...]


MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MNIST_FILES = {
    "train_images": _IdxFile(
        "train-images-idx3-ubyte.gz",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    "train_labels": _IdxFile(
        "train-labels-idx1-ubyte.gz",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    "test_images": _IdxFile(
        "t10k-images-idx3-ubyte.gz",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    "test_labels": _IdxFile(
        "t10k-labels-idx1-ubyte.gz",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
}


def _download(name: str, origin: str, directory: Path, sha256: str | None = None) -> Path:
    """Fetch ``origin`` into ``directory/name`` with Keras' cached downloader.

    With ``sha256`` the file's bytes must have that digest: a download (or a file already there)
    that differs raises :class:`DataIntegrityError` and the bad file is deleted, never used.
    """
    import keras

    directory.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(fname=name, origin=origin, cache_dir=str(directory.parent),
                                    cache_subdir=directory.name, file_hash=sha256, hash_algorithm="sha256")
    except ValueError as e:  # Keras: "Incomplete or corrupted file detected"
        (directory / name).unlink(missing_ok=True)
        raise DataIntegrityError(f"download of {origin} into {directory / name} does not have the published "
                                 f"sha256 {sha256} ({e}); the bad file was deleted: try again later or fetch "
                                 "it by hand and compare its sha256") from e
    path = Path(path)
    if sha256 is not None and sha256_file(path) != sha256:  # belt and braces: never trust, always check
        path.unlink(missing_ok=True)
        raise DataIntegrityError(f"{path}: sha256 differs from the published {sha256}; deleted")
    return path


def read_idx(path: str | os.PathLike, spec: _IdxFile | None = None) -> np.ndarray:
    """Read a gzipped IDX file; check its content checksum and shape when ``spec`` is given."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise DataIntegrityError(
            f"{path} is truncated or not a gzip file ({type(e).__name__}: {e}); "
            "delete it and fetch it again"
        ) from e
    if spec is not None and sha256_bytes(raw) != spec.sha256_content:
        raise DataIntegrityError(
            f"{path}: decompressed content has sha256 {sha256_bytes(raw)}, expected "
            f"{spec.sha256_content}; the file is corrupted or a different file"
        )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataIntegrityError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DataIntegrityError(f"{path}: header says {dims} but holds {len(raw) - offset} bytes")
    arr = np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)
    if spec is not None and arr.shape != spec.shape:
        raise DataIntegrityError(f"{path}: shape {arr.shape}, expected {spec.shape}")
    return arr


def load_mnist(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST from the four IDX files in ``<data_dir>/mnist/``.

    Returns ``(x_train, y_train), (x_test, y_test)``: images uint8 ``(60000, 28, 28)`` and
    ``(10000, 28, 28)`` in 0..255, labels uint8 ``(60000,)`` and ``(10000,)`` in 0..9.
    The checksum is of the decompressed content, so a re-compressed file is accepted.
    """
    directory = config.data_dir(data_dir) / "mnist"
    arrays = {}
    for key, spec in MNIST_FILES.items():
        path = directory / spec.name
        if not path.exists():
            how = f"Download it from {MNIST_URL}{spec.name} (sha256 is of the decompressed content)."
            if not download:
                raise _missing(spec.name, directory, spec.sha256_content, how)
            try:
                path = _download(spec.name, MNIST_URL + spec.name, directory)
            except Exception as e:  # offline, proxy, HTTP error: one clear message
                raise _missing(spec.name, directory, spec.sha256_content, how, str(e)) from e
        arrays[key] = read_idx(path, spec)
    return (arrays["train_images"], arrays["train_labels"]), (
        arrays["test_images"],
        arrays["test_labels"],
    )


# ------------------------------------------------------------------------------------------
# Faces: AT&T / ORL (Olivetti) 40 people x 10 images, scikit-learn's 64x64 version
# ------------------------------------------------------------------------------------------
FACES_CACHE = "olivetti_py3.pkz"  # scikit-learn's cache file name in its data_home
FACES_CACHE_SHA256 = ("47398b319d88c78459514b30b87c562313aad345b5c6a387b678d7f8177be4ba",)  # known cache files
FACES_NPY = "olivetti_faces.npy"  # float32 (400, 64, 64), what fetch_olivetti_faces().images holds
FACES_TARGET_NPY = "olivetti_faces_target.npy"  # int64 (400,)
FACES_DATA_SHA256 = "e6b9b0fe62f642f64e4e6e584295133cd9aff7e5820c052fd52eb9ffea205c09"  # float32 (400, 4096)
FACES_TARGET_SHA256 = "193039d78919527e457c8fd7b865e06d33d6446a17b42ca3eef6cb12e6e0513e"  # int64 (400,), i // 10
# the original file scikit-learn downloads (sklearn.datasets._olivetti_faces.FACES): S. Roweis' .mat
FACES_MAT_URL = "https://ndownloader.figshare.com/files/5976027"
FACES_MAT = "olivettifaces.mat"
FACES_MAT_SHA256 = "b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794"


def _faces_arrays(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The two ``.npy`` files, read with ``allow_pickle=False`` (plain arrays only: no code can run)."""
    out = []
    for name, dtype, shape in ((FACES_NPY, np.float32, (400, 64, 64)), (FACES_TARGET_NPY, np.int64, (400,))):
        path = directory / name
        if not path.exists():
            raise _missing(name, directory, "(array) " + (FACES_DATA_SHA256 if name == FACES_NPY else FACES_TARGET_SHA256),
                           f"{FACES_NPY} and {FACES_TARGET_NPY} belong together; copy both, or delete both to "
                           "download the faces again.")
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:  # truncated, not .npy, or an object (pickle) array
            raise DataIntegrityError(f"{path} cannot be read as a plain array ({type(e).__name__}: {e}); "
                                     "delete it and run again (it is rebuilt from the checked download)") from e
        if arr.dtype != dtype or arr.shape != shape:
            raise DataIntegrityError(f"{path}: {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} {shape}")
        out.append(np.ascontiguousarray(arr))
    return out[0], out[1]


def _faces_from_uint8(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's conversion of the (400, 4096) uint8 faces: float32 in [0, 1], images transposed."""
    faces = np.float32(raw)
    faces = faces - faces.min()
    faces /= faces.max()
    faces = np.ascontiguousarray(faces.reshape((400, 64, 64)).transpose(0, 2, 1))
    return faces, np.arange(400, dtype=np.int64) // 10


def _check_faces(images: np.ndarray, target: np.ndarray, source: Path) -> tuple[np.ndarray, np.ndarray]:
    for what, arr, want in (("pixel array", images, FACES_DATA_SHA256), ("target array", target, FACES_TARGET_SHA256)):
        digest = sha256_bytes(np.ascontiguousarray(arr).tobytes())
        if digest != want:
            raise DataIntegrityError(f"{source}: {what} has sha256 {digest}, expected {want}; the file is corrupted "
                                     "or a different data set: delete it and run again")
    return images, target


def load_faces(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The 40x10 faces set (scikit-learn's 64x64 version) from ``<data_dir>/faces/``.

    Returns ``images`` float32 ``(400, 64, 64)`` in [0, 1] and ``target`` int64 ``(400,)`` in
    0..39, person ``i`` holding images ``10 i .. 10 i + 9``.

    Nothing from the data directory is unpickled unchecked. In this order:

    1. ``olivetti_faces.npy`` + ``olivetti_faces_target.npy``, read with ``allow_pickle=False``;
    2. scikit-learn's cache ``olivetti_py3.pkz`` (a joblib pickle), loaded by
       ``fetch_olivetti_faces(data_home=...)`` only when its bytes have a known sha256
       (:data:`FACES_CACHE_SHA256`); any other ``.pkz`` is refused, not opened;
    3. with ``download``, the original ``olivettifaces.mat`` from scikit-learn's source, checked
       against its published sha256, read with ``scipy.io.loadmat`` (no pickle), converted as
       scikit-learn does and saved as the two ``.npy`` files for next time.

    Whatever the source, the arrays' own sha256 (:data:`FACES_DATA_SHA256`,
    :data:`FACES_TARGET_SHA256`) must match before they are returned.
    """
    directory = config.data_dir(data_dir) / "faces"
    how = ("Copy olivetti_faces.npy and olivetti_faces_target.npy (or scikit-learn's olivetti_py3.pkz) there, "
           f"or run online: the original {FACES_MAT} is downloaded from {FACES_MAT_URL}.")
    if (directory / FACES_NPY).exists() or (directory / FACES_TARGET_NPY).exists():
        return _check_faces(*_faces_arrays(directory), directory / FACES_NPY)
    cache = directory / FACES_CACHE
    if cache.exists():
        digest = sha256_file(cache)
        if digest not in FACES_CACHE_SHA256:
            raise DataIntegrityError(
                f"{cache}: sha256 {digest} is not a known scikit-learn cache of the faces ({', '.join(FACES_CACHE_SHA256)}); "
                "it is a pickle, so it is not opened (it could run code). Delete it and run again online, or put "
                f"{FACES_NPY} and {FACES_TARGET_NPY} there.")
        from sklearn.datasets import fetch_olivetti_faces

        try:
            bunch = fetch_olivetti_faces(data_home=str(directory), download_if_missing=False, shuffle=False)
        except Exception as e:  # pragma: no cover - the bytes are known good
            raise DataIntegrityError(f"{cache} cannot be read: {e}") from e
        images = np.ascontiguousarray(bunch.images, dtype=np.float32)
        return _check_faces(images, np.asarray(bunch.target, np.int64), cache)
    if not download:
        raise _missing(FACES_NPY, directory, "(pixel array) " + FACES_DATA_SHA256, how)
    try:
        mat = _download(FACES_MAT, FACES_MAT_URL, directory, FACES_MAT_SHA256)
    except DataIntegrityError:
        raise
    except Exception as e:  # offline, proxy, HTTP error: one clear message
        raise _missing(FACES_NPY, directory, "(pixel array) " + FACES_DATA_SHA256, how, str(e)) from e
    from scipy.io import loadmat

    try:
        raw = np.asarray(loadmat(mat)["faces"]).T
    except Exception as e:
        raise DataIntegrityError(f"{mat} cannot be read as the faces .mat ({type(e).__name__}: {e})") from e
    if raw.shape != (400, 4096):
        raise DataIntegrityError(f"{mat}: faces array {raw.shape}, expected (4096, 400) before transposing")
    images, target = _check_faces(*_faces_from_uint8(raw), mat)
    from ..files import atomic_write

    atomic_write(directory / FACES_TARGET_NPY, lambda f: np.save(f, target, allow_pickle=False))
    atomic_write(directory / FACES_NPY, lambda f: np.save(f, images, allow_pickle=False))
    mat.unlink()
    return images, target


def faces_split(y: np.ndarray, n_train: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-person split: ``n_train`` random images of each person for training, the rest test.

    With 40 people x 10 images and ``n_train=7`` this gives 280 train and 120 test indices
    (the paper's 0.9166 = 110/120 points to 120 test images).
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) <= n_train:
            raise ValueError(f"class {c} has {len(idx)} images; need more than n_train={n_train}")
        train.append(idx[:n_train])
        test.append(idx[n_train:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))



# ------------------------------------------------------------------------------------------
# Electrophoresis densitograms (paper 1, section 3)
# ------------------------------------------------------------------------------------------
def make_synthetic_spectra(
    n_classes: int = 50,
    n_samples: int = 3225,
    length: int = 4000,
    seed: int = 0,
    n_bands: int = 60,
    bands_per_class: int = 18,
    family_size: int = 5,
    bands_changed: int = 3,
    noise: float = 0.04,
) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC gliadin-like densitograms: ``x`` float32 ``(n_samples, length)``, ``y`` int64.

    The real wheat electrophoresis data are not public. Sorts come in families of
    ``family_size`` related sorts: a family owns ``bands_per_class`` of ``n_bands`` shared band
    positions, and each sort in it swaps ``bands_changed`` of them and has its own band heights,
    so sorts of one family differ in a few bands only. A lane is a sum of Gaussian bands with a
    per-lane shift and stretch (as between gels), per-band position jitter and height noise, a
    slow baseline and white noise, scaled to [0, 1]. Classes are balanced up to one sample.
    """
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.uniform(0.05, 0.95, n_bands))
    widths = rng.uniform(0.002, 0.006, n_bands)
    heights = np.zeros((n_classes, n_bands))
    family_bands = None
    for c in range(n_classes):
        if c % family_size == 0:
            family_bands = rng.choice(n_bands, bands_per_class, replace=False)
            family_heights = rng.uniform(0.2, 1.0, n_bands)
        bands = family_bands.copy()
        out = rng.choice(len(bands), bands_changed, replace=False)
        bands[out] = rng.choice(np.setdiff1d(np.arange(n_bands), family_bands), bands_changed, replace=False)
        heights[c, bands] = family_heights[bands] * rng.uniform(0.7, 1.3, len(bands))
    y = np.arange(n_samples) % n_classes
    rng.shuffle(y)
    t = np.linspace(0.0, 1.0, length, dtype=np.float64)
    x = np.empty((n_samples, length), dtype=np.float32)
    for i, c in enumerate(y):
        shift = rng.normal(0, 0.01)
        stretch = rng.normal(1.0, 0.015)
        pos = (positions + rng.normal(0, 0.002, n_bands)) * stretch + shift
        h = heights[c] * rng.lognormal(0.0, 0.35, n_bands)
        w = widths * rng.uniform(0.8, 1.2, n_bands)
        on = h > 0
        lane = (h[on, None] * np.exp(-0.5 * ((t[None, :] - pos[on, None]) / w[on, None]) ** 2)).sum(0)
        baseline = rng.uniform(0.0, 0.15) * (1 - t) + rng.uniform(0, 0.05)
        lane = lane + baseline + rng.normal(0, noise, length)
        lane -= lane.min()
        x[i] = lane / max(lane.max(), 1e-6)
    return x, y.astype(np.int64)


def save_spectra(path: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> None:
    """Write spectra in the plain format :func:`load_spectra` reads (``.npz`` with ``x``, ``y``)."""
    np.savez_compressed(path, x=np.asarray(x, np.float32), y=np.asarray(y, np.int64))


def load_spectra(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Densitograms from a plain array file: ``.npz`` holding ``x`` (n, length) and ``y`` (n,).

    Returns ``x`` float32 ``(n, length)`` and ``y`` int64 ``(n,)`` with labels 0..k-1 (any
    integer or string labels in the file are mapped to 0..k-1 in sorted order).
    """
    path = Path(path)
    if not path.exists():
        raise DataFileMissingError(
            f"spectra file {path} is missing: save an .npz with arrays 'x' (n, length) and 'y' (n,) there"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = np.asarray(f["x"], np.float32), np.asarray(f["y"])
    except KeyError as e:
        raise DataIntegrityError(f"{path}: needs arrays 'x' and 'y' ({e})") from e
    except (OSError, ValueError, zlib.error) as e:
        raise DataIntegrityError(f"{path} cannot be read: {e}") from e
    if x.ndim != 2 or y.shape != (len(x),):
        raise DataIntegrityError(f"{path}: x must be (n, length) and y (n,), got {x.shape} and {y.shape}")
    _, y = np.unique(y, return_inverse=True)
    return x, y.astype(np.int64)



# ------------------------------------------------------------------------------------------
# Linnaeus 5 and its offline stand-in, Flowers Recognition (paper 5)
# ------------------------------------------------------------------------------------------
LINNAEUS_CLASSES = ("berry", "bird", "dog", "flower", "other")
LINNAEUS_URL = "http://chaladze.com/l5/"
LINNAEUS_SIZES = (256, 128, 64, 32)
FLOWERS_CLASSES = ("daisy", "dandelion", "rose", "sunflower", "tulip")
FLOWERS_MANIFEST_SHA256 = "d91f3ef9f794857d15cc5347d9db6a118000d8833b37e89f86ea4bc3ab775fdb"
# TensorFlow's flower_photos archive: the default of a fresh machine without the staged copy. sha256 and
# size as published by TensorFlow Datasets for tf_flowers (tensorflow_datasets/url_checksums/tf_flowers.txt).
FLOWER_PHOTOS_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
FLOWER_PHOTOS_SHA256 = "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"
FLOWER_PHOTOS_BYTES = 228_813_984
FLOWER_PHOTOS_FOLDERS = {"daisy": "daisy", "dandelion": "dandelion", "roses": "rose", "sunflowers": "sunflower",
                         "tulips": "tulip"}  # the archive's folder -> our class name (FLOWERS_CLASSES)


@dataclass
class ImageSet:
    """Image files and labels of one split: ``paths`` (n,), ``labels`` int64 (n,) in 0..k-1.

    ``sha256`` (n,) holds the expected checksum of each file where the source gives one (else
    None or empty strings); :func:`read_images` checks it. ``source`` says in one sentence where the
    images come from (for the report's notes).
    """

    paths: list
    labels: np.ndarray
    class_names: tuple
    split: str
    sha256: list | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx) -> "ImageSet":
        idx = np.asarray(idx)
        return ImageSet([self.paths[i] for i in idx], self.labels[idx], self.class_names, self.split,
                        None if self.sha256 is None else [self.sha256[i] for i in idx], self.source)


def _visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders, without hidden or system ones (``.ipynb_checkpoints``, ``__MACOSX``)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _linnaeus_how(root: Path) -> str:
    return (
        f"Linnaeus 5 is published at {LINNAEUS_URL} (Chaladze & Kalatozishvili 2017) as one .rar archive per "
        "resolution (256, 128, 64 or 32 px). Download it and unpack it (e.g. `unrar x Linnaeus5_256.rar` or "
        f"`7z x ...`) into {root}, so that the folders read `{root}/Linnaeus 5 256X256/train/berry/1_256.jpg` "
        f"(classes {', '.join(LINNAEUS_CLASSES)}; splits train and test). Set the data directory with the "
        "`data_dir` notebook parameter or IMGCLF_DATA."
    )


def linnaeus_dir(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Path:
    """The ``Linnaeus 5 <N>X<N>`` folder under ``<data_dir>/linnaeus5/`` (or ``<data_dir>/`` itself).

    ``resolution`` None picks the largest one present. Raises :class:`DataFileMissingError` with
    download and unpacking instructions when there is none.
    """
    base = config.data_dir(data_dir)
    roots = [base / "linnaeus5", base]
    sizes = [resolution] if resolution is not None else list(LINNAEUS_SIZES)
    for size in sizes:
        for root in roots:
            d = root / f"Linnaeus 5 {size}X{size}"
            if d.is_dir():
                return d
    want = f"Linnaeus 5 {resolution}X{resolution}" if resolution else "Linnaeus 5 <N>X<N> (N in 256/128/64/32)"
    raise DataFileMissingError(f"Linnaeus 5 folder {want!r} is missing under {roots[0]} (or {roots[1]}). "
                               + _linnaeus_how(roots[0]))


_IMAGE_EXT = (".jpg", ".jpeg", ".png")


def load_linnaeus5(
    data_dir: str | os.PathLike | None = None, resolution: int | None = None
) -> tuple[ImageSet, ImageSet]:
    """Linnaeus 5 file lists from ``Linnaeus 5 <N>X<N>/{train,test}/<class>/*.jpg``.

    Returns ``(train, test)`` :class:`ImageSet`s with labels berry 0, bird 1, dog 2, flower 3,
    other 4 (the published set: 1,200 train and 400 test images per class). Read the pixels with
    :func:`read_images`. A missing split or class folder, or an empty one, raises
    :class:`DataFileMissingError` naming it and saying how to get the archive; a class folder
    that is not one of the five raises :class:`DataIntegrityError` naming it. Linnaeus 5 publishes
    no checksums, so its images are checked for decoding only (:func:`read_images`).
    """
    root = linnaeus_dir(data_dir, resolution)
    out = []
    for split in ("train", "test"):
        if (root / split).is_dir():
            extra = [d for d in _visible_dirs(root / split) if d.name not in LINNAEUS_CLASSES]
            if extra:
                raise DataIntegrityError(f"Linnaeus 5 folder {extra[0]} is not one of the classes "
                                         f"{', '.join(LINNAEUS_CLASSES)}: move it out of {root / split}")
        paths, labels = [], []
        left_out = LeftOut()
        for k, cls in enumerate(LINNAEUS_CLASSES):
            d = root / split / cls
            if not d.is_dir():
                raise DataFileMissingError(f"Linnaeus 5 class folder {d} is missing (the archive is incomplete or "
                                           "unpacked elsewhere). " + _linnaeus_how(root.parent))
            files = _image_files(d, left_out)
            if not files:
                raise DataFileMissingError(f"Linnaeus 5 class folder {d} holds no images. " + _linnaeus_how(root.parent))
            paths += files
            labels += [k] * len(files)
        left_out.warn(root / split)
        out.append(ImageSet(paths, np.asarray(labels, np.int64), LINNAEUS_CLASSES, split,
                            source=f"Linnaeus 5 ({root.name}, its own train/test split; no published checksums)"))
    return out[0], out[1]


def load_flowers(
    data_dir: str | os.PathLike | None = None, drop_cross_class: bool = True, download: bool = True
) -> tuple[ImageSet, ImageSet]:
    """Five flower classes for paper 5: the staged Kaggle copy when present, else TensorFlow's archive.

    First choice, ``<data_dir>/flowers/manifest.csv`` (the staged Flowers Recognition stand-in,
    checksummed): ``(train, test)`` :class:`ImageSet`s from the manifest's ``split_suggested``
    (no duplicate group spans both splits), each file's sha256 from the manifest (checked by
    :func:`read_images`). ``drop_cross_class`` drops the 8 files of the 4 photos filed under both
    rose and tulip. Without a ``flowers/`` folder: :func:`load_flower_photos` (downloads TensorFlow's
    ``flower_photos`` archive when ``download``). Labels daisy 0, dandelion 1, rose 2, sunflower 3,
    tulip 4 either way.
    """
    import pandas as pd

    directory = config.data_dir(data_dir) / "flowers"
    manifest = directory / "manifest.csv"
    if not directory.exists():
        return load_flower_photos(data_dir, download=download)
    if not manifest.exists():
        raise _missing("manifest.csv", directory, FLOWERS_MANIFEST_SHA256,
                       "It comes with the staged Flowers Recognition stand-in (shared/data/flowers, see SOURCES.md); "
                       f"without it the images cannot be checked. Restore it, or remove {directory} to use "
                       "TensorFlow's flower_photos download instead.")
    digest = sha256_file(manifest)
    if digest != FLOWERS_MANIFEST_SHA256:
        raise DataIntegrityError(f"{manifest}: sha256 {digest}, expected {FLOWERS_MANIFEST_SHA256}; the manifest is "
                                 "corrupted or edited: restore it from the staged copy")
    try:
        df = pd.read_csv(manifest, dtype={"dup_group": str, "path": str, "class": str, "sha256": str})
    except Exception as e:  # pragma: no cover - the checksum passed
        raise DataIntegrityError(f"{manifest} cannot be read: {e}") from e
    need = {"split_suggested", "class", "path", "sha256", "cross_class_duplicate"}
    if need - set(df.columns):
        raise DataIntegrityError(f"{manifest}: columns {sorted(need - set(df.columns))} are missing")
    unknown = sorted(set(df["class"]) - set(FLOWERS_CLASSES))
    if unknown:
        raise DataIntegrityError(f"{manifest}: classes {unknown} are not {FLOWERS_CLASSES}")
    df["path"] = df["path"].fillna("")  # an empty path is refused below, not read as "nan"
    if drop_cross_class:
        df = df[df["cross_class_duplicate"].fillna(0).astype(int) == 0]
    files = {}
    for i, (rel, cls) in enumerate(zip(df["path"], df["class"])):
        full = path_inside(directory, rel, f"{manifest}: row {df.index[i] + 2}")
        if full.relative_to(directory).parts[0] != cls:
            raise DataIntegrityError(f"{manifest}: row {df.index[i] + 2} files {rel!r} under class {cls!r}")
        files[rel] = full
    names = FLOWERS_CLASSES
    source = ("Flowers Recognition stand-in (Kaggle alxmamaev/flowers-recognition, staged copy: 5 flower classes, "
              "160 px, manifest split ~75/25 with no duplicate group across it"
              + ("; the 8 files filed under both rose and tulip dropped" if drop_cross_class else "") + "), not Linnaeus 5")
    out = []
    for split in ("train", "test"):
        part = df[df["split_suggested"] == split].sort_values("path")
        missing = sorted(set(names) - set(part["class"]))
        if missing:
            raise DataIntegrityError(f"{manifest}: split {split!r} has no images of {missing}")
        labels = np.asarray([names.index(c) for c in part["class"]], np.int64)
        out.append(ImageSet([files[p] for p in part["path"]], labels, names, split, list(part["sha256"]), source))
    return out[0], out[1]


def _flower_photos_how(directory: Path) -> str:
    return (f"On a machine with internet it is downloaded from {FLOWER_PHOTOS_URL} ({FLOWER_PHOTOS_BYTES:,} bytes); "
            f"offline, fetch it elsewhere and copy it to {directory / 'flower_photos.tgz'}, or stage the Kaggle "
            "Flowers Recognition copy as flowers/ (see data/README.md).")


def load_flower_photos(
    data_dir: str | os.PathLike | None = None, download: bool = True, test_fraction: float = 0.25
) -> tuple[ImageSet, ImageSet]:
    """TensorFlow's ``flower_photos`` (3,670 Flickr photos, CC BY 2.0) from ``<data_dir>/flower_photos/``.

    The archive ``flower_photos.tgz`` is downloaded with ``keras.utils.get_file`` when missing
    (and ``download``) and, present or fresh, must have TensorFlow Datasets' published sha256
    (:data:`FLOWER_PHOTOS_SHA256`) before anything is read from it. Its images are unpacked once
    to ``flower_photos/<folder>/`` (only regular ``<folder>/<name>.jpg`` members of the five
    class folders); every image's expected sha256 is taken from the verified archive on each
    call, so :func:`read_images` rejects an unpacked file that changed since. The archive has no
    split: within each class, files are ordered by the sha256 of ``<folder>/<name>`` and the first
    ``test_fraction`` go to test (deterministic, any machine). Returns ``(train, test)``
    :class:`ImageSet`s, labels daisy 0, dandelion 1, rose 2 (``roses``), sunflower 3, tulip 4.
    """
    import tarfile

    from ..files import atomic_write

    directory = config.data_dir(data_dir) / "flower_photos"
    archive = directory / "flower_photos.tgz"
    how = _flower_photos_how(directory)
    if download:
        try:
            archive = _download(archive.name, FLOWER_PHOTOS_URL, directory, FLOWER_PHOTOS_SHA256)
        except DataIntegrityError:
            raise
        except Exception as e:  # offline, proxy, HTTP error: one clear message
            raise _missing(archive.name, directory, FLOWER_PHOTOS_SHA256,
                           "No staged flowers/ folder either. " + how, str(e)) from e
    elif not archive.exists():
        raise _missing(archive.name, directory, FLOWER_PHOTOS_SHA256, "No staged flowers/ folder either. " + how)
    else:
        digest = sha256_file(archive)
        if digest != FLOWER_PHOTOS_SHA256:
            raise DataIntegrityError(f"{archive}: sha256 {digest}, expected the published {FLOWER_PHOTOS_SHA256}; "
                                     "it is truncated or another file: delete it and download it again")
    unpacked = directory / "flower_photos"
    records = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                parts = m.name.split("/")
                if (not m.isfile() or len(parts) != 3 or parts[0] != "flower_photos"
                        or parts[1] not in FLOWER_PHOTOS_FOLDERS or not parts[2].lower().endswith(_IMAGE_EXT)
                        or parts[2].startswith(".")):
                    continue  # LICENSE.txt, folders, anything unexpected is not unpacked
                raw = tar.extractfile(m).read()
                target = unpacked / parts[1] / parts[2]
                if not target.exists():
                    atomic_write(target, lambda f, raw=raw: f.write(raw))
                records.append((parts[1], parts[2], target, sha256_bytes(raw)))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataIntegrityError(f"{archive} cannot be unpacked ({type(e).__name__}: {e})") from e
    found = {r[0] for r in records}
    if found != set(FLOWER_PHOTOS_FOLDERS):
        raise DataIntegrityError(f"{archive}: class folders {sorted(found)}, expected {sorted(FLOWER_PHOTOS_FOLDERS)}")
    split_of = {}
    for folder in FLOWER_PHOTOS_FOLDERS:
        mine = sorted((r for r in records if r[0] == folder), key=lambda r: sha256_bytes(f"{r[0]}/{r[1]}".encode()))
        n_test = round(len(mine) * test_fraction)
        for j, r in enumerate(mine):
            split_of[r[2]] = "test" if j < n_test else "train"
    records.sort(key=lambda r: (FLOWER_PHOTOS_FOLDERS[r[0]], r[1]))
    source = (f"TensorFlow flower_photos archive ({len(records):,} Flickr photos, CC BY 2.0; sha256 checked), 5 flower "
              f"classes at their own size, split {1 - test_fraction:.0%}/{test_fraction:.0%} by a hash of the file "
              "name (near-duplicates are not grouped), not Linnaeus 5")
    out = []
    for split in ("train", "test"):
        mine = [r for r in records if split_of[r[2]] == split]
        labels = np.asarray([FLOWERS_CLASSES.index(FLOWER_PHOTOS_FOLDERS[r[0]]) for r in mine], np.int64)
        out.append(ImageSet([r[2] for r in mine], labels, FLOWERS_CLASSES, split, [r[3] for r in mine], source))
    return out[0], out[1]


# ------------------------------------------------------------------------------------------
# Image folders, the MURA layout, the fracture X-rays (paper 2)
# ------------------------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")
"""The file extensions an image folder is read by (case ignored); see :func:`imgclf.data.read_image`
for the modes and bit depths. Everything else in a class folder is left out and counted
(:class:`LeftOut`)."""
FRACTURE_CLASSES = ("not fractured", "fractured")  # label 1 = fractured
FRACTURE_LABELS = "labels.csv"
FRACTURE_LABELS_SHA256 = "d5be4ff6935e686bc624e23a2c5d4038b584bd025d03c7c26db60825aea8d76b"
FRACTURE_KAGGLE = "bmadushanirodrigo/fracture-multi-region-x-ray-data"


class LeftOut:
    """The files of image folders that a loader does not use, for one warning that says how many
    and why (:meth:`warn`): other extensions (DICOM ``.dcm`` among them), hidden or system files,
    sub-folders inside a class folder, links that lead nowhere."""

    SYSTEM = ("thumbs.db", "desktop.ini")

    def __init__(self):
        self.ext: dict[str, list[Path]] = {}
        self.hidden: list[Path] = []
        self.folders: list[Path] = []
        self.broken: list[Path] = []

    def __len__(self) -> int:
        return sum(map(len, self.ext.values())) + len(self.hidden) + len(self.folders) + len(self.broken)

    def files(self, folder: Path) -> list[Path]:
        """The image files directly in ``folder`` (sorted); the rest is counted here."""
        keep = []
        for p in folder.iterdir():
            if p.name.startswith(".") or p.name.lower() in self.SYSTEM or p.name.startswith("__"):
                self.hidden.append(p)
            elif p.is_dir():
                self.folders.append(p)
            elif not p.is_file():
                self.broken.append(p)  # a link to nothing, a socket...
            elif p.suffix.lower() in IMAGE_EXTENSIONS:
                keep.append(p)
            else:
                self.ext.setdefault(p.suffix.lower() or "(none)", []).append(p)
        return sorted(keep)

    def message(self, root: Path) -> str | None:
        if not len(self):
            return None
        parts = []
        if self.ext:
            kinds = ", ".join(f"{e} \u00d7{len(v)}" for e, v in sorted(self.ext.items(), key=lambda t: -len(t[1])))
            parts.append(f"{sum(map(len, self.ext.values()))} with an extension that is not read ({kinds})")
        if self.folders:
            parts.append(f"{len(self.folders)} sub-folder(s) inside class folders (not searched), e.g. {self.folders[0]}")
        if self.broken:
            parts.append(f"{len(self.broken)} link(s) to nothing or special file(s), e.g. {self.broken[0]}")
        if self.hidden:
            parts.append(f"{len(self.hidden)} hidden or system file(s)")
        example = next((v[0] for v in self.ext.values()), None)
        msg = (f"{len(self)} entr{'y' if len(self) == 1 else 'ies'} under {root} left out: " + "; ".join(parts)
               + (f"; e.g. {example}" if example else "") + f". Images are read from {', '.join(IMAGE_EXTENSIONS)}.")
        if ".dcm" in self.ext or ".dicom" in self.ext:
            msg += " DICOM files are not read: export them to 16-bit PNG (e.g. with pydicom) first."
        return msg

    def warn(self, root: Path) -> None:
        import warnings

        msg = self.message(root)
        if msg:
            warnings.warn(msg, LeftOutWarning, stacklevel=3)


class LeftOutWarning(UserWarning):
    """Files of an image folder that a loader does not use (the message says which and how many)."""


def _image_files(folder: Path, left_out: LeftOut | None = None) -> list[Path]:
    return (left_out if left_out is not None else LeftOut()).files(folder)


def image_folder_index(root: str | os.PathLike, classes: list[str] | None = None):
    """Index an image-folder data set laid out as ``root/<split>/<class>/<image>``.

    Any number of splits (``train``, ``test``, ``val``...) and classes; image files
    (:data:`IMAGE_EXTENSIONS`) of any size, mode and bit depth. Whatever else a class folder holds
    (other extensions such as DICOM, sub-folders, hidden files) is left out with one
    :class:`LeftOutWarning` that says how many and why (also in ``df.attrs["left_out"]``). ``classes`` fixes the
    label order (label ``i`` = ``classes[i]``); default: the class folder names sorted. Returns a
    DataFrame with one row per image, sorted by split, class and file name: ``split``, ``class``,
    ``label`` (int), ``path`` (relative to ``root``, posix) and ``file`` (absolute path string).

    Every split must hold a non-empty folder for every class, and there must be two classes at
    least: a class folder missing or empty raises :class:`DataFileMissingError` naming it (a run
    on one class would go to the end and mean nothing). A class folder not in ``classes`` raises
    ``ValueError``.
    """
    import pandas as pd

    root = Path(root)
    if not root.is_dir():
        raise DataFileMissingError(f"image folder {root} is missing (expected {root}/<split>/<class>/<image>)")
    splits = _visible_dirs(root)
    found = sorted({c.name for s in splits for c in _visible_dirs(s)})
    if not found:
        raise DataFileMissingError(
            f"no images under {root}: expected {root}/<split>/<class>/<image> with extensions {IMAGE_EXTENSIONS}"
        )
    classes = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"class folders {unknown} under {root} are not in classes={classes}")
    rows = []
    left_out = LeftOut()
    for split_dir in splits:
        for cls in classes:
            d = split_dir / cls
            if not d.is_dir():
                raise DataFileMissingError(f"class folder {d} is missing: every split needs one folder per class "
                                           f"({', '.join(classes)})")
            files = _image_files(d, left_out)
            if not files:
                raise DataFileMissingError(f"class folder {d} holds no images (extensions {IMAGE_EXTENSIONS})"
                                           + (f"; {left_out.message(d)}" if len(left_out) else ""))
            rows += [(split_dir.name, cls, f.relative_to(root).as_posix(), str(f)) for f in files]
    if len(classes) < 2:
        raise DataFileMissingError(f"only one class folder ({classes[0]!r}) under {root}: a classifier needs two "
                                   "classes at least; the other class folders are missing")
    df = pd.DataFrame(rows, columns=["split", "class", "path", "file"])
    df.insert(2, "label", df["class"].map({c: i for i, c in enumerate(classes)}).astype(int))
    left_out.warn(root)
    df.attrs["left_out"] = left_out.message(root)
    return df


def fracture_how(root: Path) -> str:
    """How to get the fracture X-rays (they need a Kaggle account) and where to unpack them."""
    return (
        "The X-rays are Kaggle's 'Bone Fracture Multi-Region X-ray Data' (ODC-By 1.0), which needs a free Kaggle "
        f"account: sign in at https://www.kaggle.com/datasets/{FRACTURE_KAGGLE} and press Download, or with the "
        f"Kaggle API (`pip install kaggle`, API token in ~/.kaggle/kaggle.json): `kaggle datasets download -d "
        f"{FRACTURE_KAGGLE}`. Unzip it and move the folder that holds train/, val/ and test/ (in the archive: "
        f"Bone_Fracture_Binary_Classification/Bone_Fracture_Binary_Classification/) to {root}, so that "
        f"{root / 'train' / 'fractured'} and {root / 'train' / 'not fractured'} hold images. (The staged, "
        "downscaled copy of shared/data/fracture also brings labels.csv with every file's sha256.) Set the data "
        "directory with the `data_dir` notebook parameter or IMGCLF_DATA."
    )


def fracture_index(root: str | os.PathLike, classes=FRACTURE_CLASSES):
    """The fracture X-rays ``root/<split>/<class>/<image>``, every file checked before use.

    Returns :func:`image_folder_index`'s DataFrame plus ``sha256`` (of each file's bytes); its
    ``attrs["checksums"]`` names the manifest the files were checked against (None without one).
    With ``root/labels.csv`` (the staged copy: its own sha256 :data:`FRACTURE_LABELS_SHA256`, one
    sha256 per image) every image must be listed there, be present and have its listed sha256:
    an image of the other class swapped in, a moved, added, missing or corrupted file raises
    (:class:`DataIntegrityError` / :class:`DataFileMissingError`) naming the files. Without it (a
    fresh Kaggle download) the images can only be checked for decoding; a warning says so. A
    missing root, class folder or empty class folder raises :class:`DataFileMissingError` saying
    how to get the data.
    """
    import warnings

    import pandas as pd

    root = Path(root)
    if not root.is_dir():
        raise DataFileMissingError(f"fracture X-ray folder {root} is missing. " + fracture_how(root))
    try:
        df = image_folder_index(root, classes=list(classes))
    except DataFileMissingError as e:
        raise DataFileMissingError(f"{e}. " + fracture_how(root)) from e
    df["sha256"] = [sha256_file(f) for f in df["file"]]
    df.attrs["checksums"] = None
    labels = root / FRACTURE_LABELS
    if not labels.exists():
        warnings.warn(f"{root} has no {FRACTURE_LABELS}: its {len(df)} images are checked for decoding only (no "
                      "per-file checksums; the staged copy has them, see data/README.md)", stacklevel=2)
        return df
    digest = sha256_file(labels)
    if digest != FRACTURE_LABELS_SHA256:
        raise DataIntegrityError(f"{labels}: sha256 {digest}, expected {FRACTURE_LABELS_SHA256}; the list of "
                                 "checksums is corrupted or edited: restore it from the staged copy")
    man = pd.read_csv(labels, usecols=["path", "sha256"], dtype=str, keep_default_na=False)
    for i, rel in enumerate(man["path"]):
        path_inside(root, rel, f"{labels}: row {i + 2}")
    expected = dict(zip(man["path"], man["sha256"]))
    extra = sorted(set(df["path"]) - set(expected))
    if extra:
        raise DataIntegrityError(f"{len(extra)} image(s) under {root} are not listed in {FRACTURE_LABELS} (added, or "
                                 f"moved between class folders), e.g. {extra[:5]}; they are not used: remove them "
                                 "or restore the staged copy")
    missing = sorted(set(expected) - set(df["path"]))
    if missing:
        raise DataFileMissingError(f"{len(missing)} image(s) listed in {labels} are missing under {root}, e.g. "
                                   f"{missing[:5]}; restore them from the staged copy (see data/README.md)")
    bad = df.loc[df["sha256"] != df["path"].map(expected), "path"].tolist()
    if bad:
        raise DataIntegrityError(f"{len(bad)} image(s) under {root} differ from their sha256 in {FRACTURE_LABELS} "
                                 f"(corrupted, or another image swapped in), e.g. {bad[:5]}; they are not used: "
                                 "restore them from the staged copy")
    df.attrs["checksums"] = str(labels)
    return df


def mura_index(root: str | os.PathLike):
    """Index the MURA layout (Stanford MURA-v1.1): study folders listed in ``*_labeled_studies.csv``.

    ``root`` is the ``MURA-v1.1`` folder, holding ``train_labeled_studies.csv`` /
    ``valid_labeled_studies.csv`` (no header; rows ``MURA-v1.1/<split>/XR_<PART>/patient<id>/study<n>_<positive|negative>/,<0|1>``)
    and the study folders with their ``image<k>.png`` files. Returns a DataFrame with one row per
    image: ``split``, ``class`` (``negative``/``positive``), ``label`` (the CSV's study label,
    1 = abnormal), ``path`` (relative to ``root``), ``file``, ``body_part``, ``study`` and
    ``group`` (the patient: all of a patient's images share one group, so a group-aware split
    keeps patients on one side).

    Every row is checked: its path must stay inside ``root`` (no absolute path, no ``..``, no
    symbolic link leading out: :class:`UnsafePathError`), have the four levels above, lie in the
    CSV's own split, carry a 0/1 label that agrees with the folder's ``_positive``/``_negative``
    and be listed once (:class:`DataIntegrityError` naming the CSV line). A study folder listed but
    missing or empty raises :class:`DataFileMissingError` naming it.
    """
    import csv

    import pandas as pd

    root = Path(root)
    csvs = sorted(root.glob("*_labeled_studies.csv"))
    if not csvs:
        raise DataFileMissingError(f"no *_labeled_studies.csv in {root} (expected the MURA-v1.1 folder)")
    rows, seen = [], set()
    left_out = LeftOut()
    for c in csvs:
        split = c.name[: -len("_labeled_studies.csv")]
        with open(c, newline="") as f:
            for lineno, rec in enumerate(csv.reader(f), 1):
                if not rec or not rec[0].strip():
                    continue
                where = f"{c}: line {lineno}"
                if len(rec) != 2 or rec[1].strip() not in ("0", "1"):
                    raise DataIntegrityError(f"{where}: expected '<study folder>/,<0|1>', got {','.join(rec)!r}")
                label = int(rec[1])
                text = rec[0].strip()
                head = text.split("/")[0]
                if head in (root.name, "MURA-v1.1"):
                    text = text[len(head) + 1:]
                study_dir = path_inside(root, text, where)
                parts = study_dir.relative_to(root).parts
                if len(parts) != 4:
                    raise DataIntegrityError(f"{where}: expected <split>/XR_<PART>/patient<id>/study<n>_<positive|"
                                             f"negative>/, got {rec[0]!r}")
                if parts[0] != split:
                    raise DataIntegrityError(f"{where}: study {rec[0]!r} lies in split folder {parts[0]!r}, not {split!r}")
                suffix = parts[3].rsplit("_", 1)[-1]
                if suffix in ("positive", "negative") and (suffix == "positive") != bool(label):
                    raise DataIntegrityError(f"{where}: label {label} contradicts the study folder name {parts[3]!r}")
                if parts in seen:
                    raise DataIntegrityError(f"{where}: study {rec[0]!r} is listed twice")
                seen.add(parts)
                if not study_dir.is_dir():
                    raise DataFileMissingError(f"study folder {study_dir} listed in {c.name} is missing")
                files = _image_files(study_dir, left_out)
                if not files:
                    raise DataFileMissingError(f"study folder {study_dir} listed in {c.name} holds no images")
                body_part, patient, study = parts[1], parts[2], parts[3]
                for f in files:
                    rel = f.relative_to(root).as_posix()
                    path_inside(root, rel, where)  # an image that is a symbolic link out of the root
                    rows.append((split, "positive" if label else "negative", label, rel,
                                 str(f), body_part, f"{body_part}/{patient}/{study}", patient))
    left_out.warn(root)
    return pd.DataFrame(rows, columns=["split", "class", "label", "path", "file", "body_part", "study", "group"])
