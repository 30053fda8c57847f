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


def _download(name: str, origin: str, directory: Path) -> Path:
    """Fetch ``origin`` into ``directory/name`` with Keras' cached downloader."""
    import keras

    directory.mkdir(parents=True, exist_ok=True)
    path = keras.utils.get_file(
        fname=name, origin=origin, cache_dir=str(directory.parent), cache_subdir=directory.name
    )
    return Path(path)


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
FACES_DATA_SHA256 = "e6b9b0fe62f642f64e4e6e584295133cd9aff7e5820c052fd52eb9ffea205c09"  # float32 (400, 4096)


def load_faces(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The 40x10 faces set through scikit-learn's cache in ``<data_dir>/faces/``.

    Returns ``images`` float32 ``(400, 64, 64)`` in [0, 1] and ``target`` int64 ``(400,)`` in
    0..39, person ``i`` holding images ``10 i .. 10 i + 9``. The checksum is of the pixel array.
    """
    from sklearn.datasets import fetch_olivetti_faces

    directory = config.data_dir(data_dir) / "faces"
    how = (
        "scikit-learn downloads it with fetch_olivetti_faces(data_home=...) when online; "
        "or copy olivetti_py3.pkz there."
    )
    if not (directory / FACES_CACHE).exists() and not download:
        raise _missing(FACES_CACHE, directory, "(pixel array) " + FACES_DATA_SHA256, how)
    try:
        bunch = fetch_olivetti_faces(data_home=str(directory), download_if_missing=download, shuffle=False)
    except (OSError, ValueError) as e:
        if (directory / FACES_CACHE).exists():
            raise DataIntegrityError(f"{directory / FACES_CACHE} cannot be read: {e}") from e
        raise _missing(FACES_CACHE, directory, "(pixel array) " + FACES_DATA_SHA256, how, str(e)) from e
    except Exception as e:  # joblib/zlib errors on a corrupted cache
        raise DataIntegrityError(f"{directory / FACES_CACHE} cannot be read: {e}") from e
    data = np.ascontiguousarray(bunch.data, dtype=np.float32)
    digest = sha256_bytes(data.tobytes())
    if digest != FACES_DATA_SHA256:
        raise DataIntegrityError(
            f"{directory / FACES_CACHE}: pixel array has sha256 {digest}, expected {FACES_DATA_SHA256}"
        )
    return data.reshape(-1, 64, 64), np.asarray(bunch.target, dtype=np.int64)


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


@dataclass
class ImageSet:
    """Image files and labels of one split: ``paths`` (n,), ``labels`` int64 (n,) in 0..k-1.

    ``sha256`` (n,) holds the expected checksum of each file where the source gives one (else
    empty strings); :func:`read_images` checks it.
    """

    paths: list
    labels: np.ndarray
    class_names: tuple
    split: str
    sha256: list | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx) -> "ImageSet":
        idx = np.asarray(idx)
        return ImageSet([self.paths[i] for i in idx], self.labels[idx], self.class_names, self.split,
                        None if self.sha256 is None else [self.sha256[i] for i in idx])


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
    :class:`DataFileMissingError` naming it and saying how to get the archive.
    """
    root = linnaeus_dir(data_dir, resolution)
    out = []
    for split in ("train", "test"):
        paths, labels = [], []
        for k, cls in enumerate(LINNAEUS_CLASSES):
            d = root / split / cls
            if not d.is_dir():
                raise DataFileMissingError(f"Linnaeus 5 class folder {d} is missing (the archive is incomplete or "
                                           "unpacked elsewhere). " + _linnaeus_how(root.parent))
            files = sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_EXT)
            if not files:
                raise DataFileMissingError(f"Linnaeus 5 class folder {d} holds no images. " + _linnaeus_how(root.parent))
            paths += files
            labels += [k] * len(files)
        out.append(ImageSet(paths, np.asarray(labels, np.int64), LINNAEUS_CLASSES, split))
    return out[0], out[1]


def load_flowers(
    data_dir: str | os.PathLike | None = None, drop_cross_class: bool = True
) -> tuple[ImageSet, ImageSet]:
    """The Flowers Recognition stand-in from ``<data_dir>/flowers/manifest.csv`` (checksummed).

    Returns ``(train, test)`` :class:`ImageSet`s from the manifest's ``split_suggested`` (no
    duplicate group spans both splits), labels daisy 0, dandelion 1, rose 2, sunflower 3, tulip 4,
    each file's sha256 from the manifest (checked by :func:`read_images`). ``drop_cross_class``
    drops the 8 files of the 4 photos filed under both rose and tulip.
    """
    import pandas as pd

    directory = config.data_dir(data_dir) / "flowers"
    manifest = directory / "manifest.csv"
    if not manifest.exists():
        raise _missing("manifest.csv", directory, FLOWERS_MANIFEST_SHA256,
                       "It comes with the staged Flowers Recognition stand-in (shared/data/flowers, see SOURCES.md).")
    digest = sha256_file(manifest)
    if digest != FLOWERS_MANIFEST_SHA256:
        raise DataIntegrityError(f"{manifest}: sha256 {digest}, expected {FLOWERS_MANIFEST_SHA256}")
    df = pd.read_csv(manifest, dtype={"dup_group": str})
    if drop_cross_class:
        df = df[df["cross_class_duplicate"].fillna(0).astype(int) == 0]
    names = tuple(sorted(df["class"].unique()))
    out = []
    for split in ("train", "test"):
        part = df[df["split_suggested"] == split].sort_values("path")
        paths = [directory / p for p in part["path"]]
        labels = np.asarray([names.index(c) for c in part["class"]], np.int64)
        out.append(ImageSet(paths, labels, names, split, list(part["sha256"])))
    return out[0], out[1]




# Image folders, the MURA layout, duplicate groups and group-aware splits (paper 2, X-rays)
# ------------------------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def image_folder_index(root: str | os.PathLike, classes: list[str] | None = None):
    """Index an image-folder data set laid out as ``root/<split>/<class>/<image>``.

    Any number of splits (``train``, ``test``, ``val``...) and classes; JPEG or PNG files of any
    size, grayscale or RGB (other files are ignored). ``classes`` fixes the label order (label
    ``i`` = ``classes[i]``); default: the class folder names sorted. Returns a DataFrame with
    one row per image, sorted by split, class and file name: ``split``, ``class``, ``label``
    (int), ``path`` (relative to ``root``, posix) and ``file`` (absolute path string).
    Raises :class:`DataFileMissingError` when ``root`` has no ``split/class/image`` files and
    ``ValueError`` when a class folder is not in ``classes``.
    """
    import pandas as pd

    root = Path(root)
    if not root.is_dir():
        raise DataFileMissingError(f"image folder {root} is missing (expected {root}/<split>/<class>/<image>)")
    rows = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for f in _image_files(class_dir):
                rows.append((split_dir.name, class_dir.name, f.relative_to(root).as_posix(), str(f)))
    if not rows:
        raise DataFileMissingError(
            f"no images under {root}: expected {root}/<split>/<class>/<image> with extensions {IMAGE_EXTENSIONS}"
        )
    df = pd.DataFrame(rows, columns=["split", "class", "path", "file"])
    found = sorted(df["class"].unique())
    classes = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"class folders {unknown} under {root} are not in classes={classes}")
    df.insert(2, "label", df["class"].map({c: i for i, c in enumerate(classes)}).astype(int))
    return df


def mura_index(root: str | os.PathLike):
    """Index the MURA layout (Stanford MURA-v1.1): study folders listed in ``*_labeled_studies.csv``.

    ``root`` is the ``MURA-v1.1`` folder, holding ``train_labeled_studies.csv`` /
    ``valid_labeled_studies.csv`` (no header; rows ``MURA-v1.1/<split>/XR_<PART>/patient<id>/study<n>_<positive|negative>/,<0|1>``)
    and the study folders with their ``image<k>.png`` files. Returns a DataFrame with one row per
    image: ``split``, ``class`` (``negative``/``positive``), ``label`` (the CSV's study label,
    1 = abnormal), ``path`` (relative to ``root``), ``file``, ``body_part``, ``study`` and
    ``group`` (the patient: all of a patient's images share one group, so a group-aware split
    keeps patients on one side). A study folder listed but missing or empty raises
    :class:`DataFileMissingError` naming it.
    """
    import csv

    import pandas as pd

    root = Path(root)
    csvs = sorted(root.glob("*_labeled_studies.csv"))
    if not csvs:
        raise DataFileMissingError(f"no *_labeled_studies.csv in {root} (expected the MURA-v1.1 folder)")
    rows = []
    for c in csvs:
        split = c.name[: -len("_labeled_studies.csv")]
        with open(c, newline="") as f:
            for rec in csv.reader(f):
                if not rec or not rec[0].strip():
                    continue
                parts = [p for p in rec[0].strip().split("/") if p]
                if parts and parts[0] == root.name:
                    parts = parts[1:]
                study_dir = root.joinpath(*parts)
                if not study_dir.is_dir():
                    raise DataFileMissingError(f"study folder {study_dir} listed in {c.name} is missing")
                files = _image_files(study_dir)
                if not files:
                    raise DataFileMissingError(f"study folder {study_dir} listed in {c.name} holds no images")
                label = int(rec[1])
                body_part, patient, study = parts[-3], parts[-2], parts[-1]
                for f in files:
                    rows.append((split, "positive" if label else "negative", label, f.relative_to(root).as_posix(),
                                 str(f), body_part, f"{body_part}/{patient}/{study}", patient))
    return pd.DataFrame(rows, columns=["split", "class", "label", "path", "file", "body_part", "study", "group"])


