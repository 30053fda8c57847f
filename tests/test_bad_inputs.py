"""Bad input and broken files (issue 11): nothing runs that shouldn't, nothing unchecked is used,
no good result is lost.

Every test here feeds ONE bad input (a missing, truncated, corrupted, swapped or wrongly shaped
file, a wrong class layout, a path leaving its root, a pickle that would run code, a killed run, a
bad parameter) to the loader or the report that must catch it, and asserts what a careful user
expects: a clear error naming the file or parameter, nothing bad used, nothing lost. The few
"good path" tests (downloads through a ``file://`` origin) are marked ``good_path`` and are not
counted as bad inputs. Count them with::

    PYTHONPATH=lib python -m pytest tests/test_bad_inputs.py -m "not good_path" -q
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_idx
from imgclf import data, papers, reports
from imgclf.config import ParameterError
from imgclf.reports import Report
from PIL import Image

LIB = Path(__file__).resolve().parents[1] / "lib"
good_path = pytest.mark.good_path


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates ``marker``: a stand-in for arbitrary code run from a data file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def jpeg(path: Path, level: int, size=(20, 16), seed: int = 0) -> Path:
    """A small valid JPEG whose mean grey level is about ``level``, distinct per seed."""
    rng = np.random.default_rng(seed)
    img = np.clip(level + rng.integers(-8, 9, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=90)
    return path


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


# ------------------------------------------------------------------------------------------
# faces: never unpickle unchecked bytes
# ------------------------------------------------------------------------------------------
def test_faces_pickle_payload_in_sklearn_cache_is_never_opened(tmp_path):
    import joblib

    marker = tmp_path / "PWNED"
    (tmp_path / "faces").mkdir()
    joblib.dump(Payload(marker), tmp_path / "faces" / data.FACES_CACHE, compress=6)
    with pytest.raises(data.DataIntegrityError, match=r"olivetti_py3\.pkz.*not opened"):
        data.load_faces(tmp_path, download=False)
    assert not marker.exists()


def test_faces_plain_pickle_payload_in_sklearn_cache_is_never_opened(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / data.FACES_CACHE).write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(data.DataIntegrityError, match="not opened"):
        data.load_faces(tmp_path, download=True)  # even with download allowed: refuse, do not overwrite silently
    assert not marker.exists()


def test_faces_pickle_payload_disguised_as_npy_is_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "faces").mkdir()
    np.save(tmp_path / "faces" / data.FACES_NPY, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    np.save(tmp_path / "faces" / data.FACES_TARGET_NPY, np.arange(400) // 10)
    with pytest.raises(data.DataIntegrityError, match=r"olivetti_faces\.npy.*plain array"):
        data.load_faces(tmp_path, download=False)
    assert not marker.exists()


def _faces_npy(tmp_path, images, target=None):
    (tmp_path / "faces").mkdir(exist_ok=True)
    np.save(tmp_path / "faces" / data.FACES_NPY, images)
    if target is not False:
        np.save(tmp_path / "faces" / data.FACES_TARGET_NPY, np.arange(400) // 10 if target is None else target)


@pytest.fixture(scope="module")
def real_faces():
    d = Path(os.environ.get("IMGCLF_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "faces"
    if not (d / data.FACES_NPY).exists():
        pytest.skip("staged faces not found")
    return np.load(d / data.FACES_NPY), d


def test_faces_truncated_npy(tmp_path, real_faces):
    _faces_npy(tmp_path, real_faces[0])
    p = tmp_path / "faces" / data.FACES_NPY
    p.write_bytes(p.read_bytes()[: 100_000])
    with pytest.raises(data.DataIntegrityError, match=r"olivetti_faces\.npy"):
        data.load_faces(tmp_path, download=False)


def test_faces_wrong_shape_npy(tmp_path, real_faces):
    _faces_npy(tmp_path, real_faces[0].reshape(400, 4096))
    with pytest.raises(data.DataIntegrityError, match=r"\(400, 4096\), expected float32 \(400, 64, 64\)"):
        data.load_faces(tmp_path, download=False)


def test_faces_one_pixel_changed(tmp_path, real_faces):
    x = real_faces[0].copy()
    x[17, 30, 30] = 1.0 - x[17, 30, 30]
    _faces_npy(tmp_path, x)
    with pytest.raises(data.DataIntegrityError, match="pixel array has sha256"):
        data.load_faces(tmp_path, download=False)


def test_faces_swapped_labels(tmp_path, real_faces):
    _faces_npy(tmp_path, real_faces[0], np.roll(np.arange(400) // 10, 10))
    with pytest.raises(data.DataIntegrityError, match="target array has sha256"):
        data.load_faces(tmp_path, download=False)


def test_faces_target_file_missing(tmp_path, real_faces):
    _faces_npy(tmp_path, real_faces[0], target=False)
    with pytest.raises(data.DataFileMissingError, match=r"olivetti_faces_target\.npy"):
        data.load_faces(tmp_path, download=False)


def test_faces_missing_and_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(data.datasets, "FACES_MAT_URL", file_url(tmp_path / "no-such.mat"))
    with pytest.raises(data.DataFileMissingError, match=r"olivetti_faces\.npy.*Download attempt failed"):
        data.load_faces(tmp_path, download=True)
    assert not (tmp_path / "faces" / data.FACES_NPY).exists()


def _tiny_faces_mat(tmp_path):
    """A .mat like Roweis' olivettifaces.mat (uint8 'faces' (4096, 400)) and the arrays it must give."""
    from scipy.io import savemat

    raw = np.random.default_rng(0).integers(3, 250, (400, 4096)).astype(np.uint8)
    src = tmp_path / "origin" / "olivettifaces.mat"
    src.parent.mkdir()
    savemat(src, {"faces": raw.T})
    f = raw.astype(np.float32)
    f = (f - f.min()) / (f - f.min()).max()
    images = np.ascontiguousarray(f.reshape(400, 64, 64).transpose(0, 2, 1))
    return src, images


@good_path
def test_faces_download_through_file_origin_is_checked_and_cached_as_npy(tmp_path, monkeypatch):
    src, images = _tiny_faces_mat(tmp_path)
    monkeypatch.setattr(data.datasets, "FACES_MAT_URL", file_url(src))
    monkeypatch.setattr(data.datasets, "FACES_MAT_SHA256", sha(src))
    monkeypatch.setattr(data.datasets, "FACES_DATA_SHA256", hashlib.sha256(images.tobytes()).hexdigest())
    x, y = data.load_faces(tmp_path / "d", download=True)
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == (np.arange(400) // 10).tolist()
    assert sorted(p.name for p in (tmp_path / "d" / "faces").iterdir()) == [data.FACES_NPY, data.FACES_TARGET_NPY]
    src.unlink()  # the next call reads the checked .npy files, offline
    x2, _ = data.load_faces(tmp_path / "d", download=False)
    np.testing.assert_array_equal(x2, images)


def test_faces_download_with_wrong_checksum_is_deleted_not_used(tmp_path, monkeypatch):
    src, _ = _tiny_faces_mat(tmp_path)
    monkeypatch.setattr(data.datasets, "FACES_MAT_URL", file_url(src))  # FACES_MAT_SHA256 stays the real one
    with pytest.raises(data.DataIntegrityError, match="published sha256"):
        data.load_faces(tmp_path / "d", download=True)
    assert list((tmp_path / "d" / "faces").iterdir()) == []


@good_path
def test_faces_known_sklearn_cache_still_loads(tmp_path, real_faces):
    if not (real_faces[1] / data.FACES_CACHE).exists():
        pytest.skip("staged olivetti_py3.pkz not found")
    (tmp_path / "faces").mkdir()
    shutil.copy(real_faces[1] / data.FACES_CACHE, tmp_path / "faces")
    x, _ = data.load_faces(tmp_path, download=False)
    np.testing.assert_array_equal(x, real_faces[0])


# ------------------------------------------------------------------------------------------
# other pickles: spectra files, the decoded-image cache
# ------------------------------------------------------------------------------------------
def test_spectra_pickle_payload_is_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    np.savez(tmp_path / "s.npz", x=np.array([Payload(marker)], dtype=object), y=np.array([0]))
    with pytest.raises(data.DataIntegrityError, match=r"s\.npz"):
        data.load_spectra(tmp_path / "s.npz")
    assert not marker.exists()


def test_spectra_wrong_shape(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((4, 3, 2), np.float32), y=np.zeros(4))
    with pytest.raises(data.DataIntegrityError, match=r"x must be \(n, length\)"):
        data.load_spectra(tmp_path / "s.npz")


def test_image_cache_pickle_payload_is_never_unpickled_and_rebuilt(tmp_path):
    files = [jpeg(tmp_path / f"{i}.jpg", 40 * i + 20, seed=i) for i in range(3)]
    cache = tmp_path / "cache"
    want = data.load_images(files, 8, cache_dir=cache)
    (npy,) = cache.glob("*.npy")
    marker = tmp_path / "PWNED"
    np.save(npy, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    np.testing.assert_array_equal(data.load_images(files, 8, cache_dir=cache), want)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------
# MNIST
# ------------------------------------------------------------------------------------------
def test_mnist_swapped_file_is_rejected(tmp_path):
    # a labels file in the images file's place: a valid IDX file, the wrong content
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros(60000))
    with pytest.raises(data.DataIntegrityError, match="train-images-idx3-ubyte.gz.*sha256"):
        data.load_mnist(tmp_path, download=False)


def test_mnist_not_a_gzip_file(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(data.DataIntegrityError, match="not a gzip file"):
        data.load_mnist(tmp_path, download=False)


def test_mnist_wrong_shape_with_a_matching_checksum(tmp_path):
    arr = np.zeros((5, 28, 27), np.uint8)
    p = write_idx(tmp_path / "x.gz", arr)
    with gzip.open(p) as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    spec = data.datasets._IdxFile("x.gz", digest, (5, 28, 28))
    with pytest.raises(data.DataIntegrityError, match=r"shape \(5, 28, 27\), expected \(5, 28, 28\)"):
        data.read_idx(p, spec)


def _tiny_mnist(tmp_path, monkeypatch):
    origin = tmp_path / "origin"
    specs = {}
    rng = np.random.default_rng(1)
    for key, spec in data.MNIST_FILES.items():
        shape = (12, 28, 28) if "images" in key else (12,)
        arr = rng.integers(0, 255 if "images" in key else 10, shape).astype(np.uint8)
        p = write_idx(origin / spec.name, arr)
        with gzip.open(p) as f:
            specs[key] = data.datasets._IdxFile(spec.name, hashlib.sha256(f.read()).hexdigest(), shape)
    monkeypatch.setattr(data.datasets, "MNIST_FILES", specs)
    monkeypatch.setattr(data.datasets, "MNIST_URL", file_url(origin) + "/")
    return origin


@good_path
def test_mnist_download_through_file_origin(tmp_path, monkeypatch):
    _tiny_mnist(tmp_path, monkeypatch)
    (xtr, _), (_, yte) = data.load_mnist(tmp_path / "d", download=True)
    assert xtr.shape == (12, 28, 28) and yte.shape == (12,)
    assert len(list((tmp_path / "d" / "mnist").glob("*.gz"))) == 4


def test_mnist_download_of_a_corrupted_origin_is_rejected(tmp_path, monkeypatch):
    origin = _tiny_mnist(tmp_path, monkeypatch)
    write_idx(origin / "t10k-labels-idx1-ubyte.gz", np.full(12, 3))  # the server serves other bytes
    with pytest.raises(data.DataIntegrityError, match="t10k-labels-idx1-ubyte.gz.*sha256"):
        data.load_mnist(tmp_path / "d", download=True)


# ------------------------------------------------------------------------------------------
# fracture X-rays: every file checked against labels.csv; class layout
# ------------------------------------------------------------------------------------------
@pytest.fixture
def fracture(tmp_path, monkeypatch):
    """A tiny fracture/ tree with a labels.csv of sha256s (its own checksum patched in)."""
    root = tmp_path / "fracture"
    rows = []
    for split in ("train", "test"):
        for k, cls in enumerate(data.FRACTURE_CLASSES):
            for i in range(2):
                p = jpeg(root / split / cls / f"{split}{i}.jpg", 60 + 120 * k, seed=hash((split, cls, i)) % 1000)
                rows.append({"split": split, "class": cls, "path": p.relative_to(root).as_posix(), "label": k,
                             "sha256": sha(p)})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    monkeypatch.setattr(data.datasets, "FRACTURE_LABELS_SHA256", sha(root / "labels.csv"))
    return root


def _relabel(root, monkeypatch, edit):
    df = pd.read_csv(root / "labels.csv")
    edit(df)
    df.to_csv(root / "labels.csv", index=False)
    monkeypatch.setattr(data.datasets, "FRACTURE_LABELS_SHA256", sha(root / "labels.csv"))


@good_path
def test_fracture_good_tree_is_checked_file_by_file(fracture):
    df = data.fracture_index(fracture)
    assert len(df) == 8 and df.attrs["checksums"] == str(fracture / "labels.csv")
    assert (df["sha256"] == [sha(f) for f in df["file"]]).all()


def test_fracture_valid_image_of_the_other_class_swapped_in(fracture):
    shutil.copy(fracture / "test" / "fractured" / "test0.jpg", fracture / "test" / "not fractured" / "test1.jpg")
    Image.open(fracture / "test" / "not fractured" / "test1.jpg").load()  # a perfectly valid image
    with pytest.raises(data.DataIntegrityError, match=r"another image swapped in.*test/not fractured/test1\.jpg"):
        data.fracture_index(fracture)


def test_fracture_file_moved_to_the_other_class_folder(fracture):
    os.replace(fracture / "train" / "fractured" / "train0.jpg", fracture / "train" / "not fractured" / "moved.jpg")
    with pytest.raises(data.DataIntegrityError, match=r"not listed.*train/not fractured/moved\.jpg"):
        data.fracture_index(fracture)


def test_fracture_extra_file_added(fracture):
    jpeg(fracture / "train" / "fractured" / "new.jpg", 200, seed=99)
    with pytest.raises(data.DataIntegrityError, match=r"not listed.*new\.jpg"):
        data.fracture_index(fracture)


def test_fracture_listed_file_deleted(fracture):
    (fracture / "test" / "fractured" / "test1.jpg").unlink()
    with pytest.raises(data.DataFileMissingError, match=r"missing.*test/fractured/test1\.jpg"):
        data.fracture_index(fracture)


def test_fracture_truncated_file(fracture):
    p = fracture / "train" / "not fractured" / "train1.jpg"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(data.DataIntegrityError, match=r"train/not fractured/train1\.jpg"):
        data.fracture_index(fracture)


def test_fracture_both_fractured_folders_deleted(fracture):
    for split in ("train", "test"):
        shutil.rmtree(fracture / split / "fractured")
    with pytest.raises(data.DataFileMissingError, match=r"class folder .*/fractured is missing.*kaggle"):
        data.fracture_index(fracture)


def test_fracture_empty_class_folder(fracture):
    for p in (fracture / "test" / "fractured").iterdir():
        p.unlink()
    with pytest.raises(data.DataFileMissingError, match=r"test/fractured holds no images"):
        data.fracture_index(fracture)


def test_fracture_labels_csv_edited(fracture, monkeypatch):
    monkeypatch.undo()  # the real FRACTURE_LABELS_SHA256: our tiny labels.csv is not the staged one
    with pytest.raises(data.DataIntegrityError, match=r"labels\.csv: sha256 .* expected d5be4ff6"):
        data.fracture_index(fracture)


@pytest.mark.parametrize("bad", ["../outside.jpg", "train/../../outside.jpg", "/etc/passwd", "C:\\x\\y.jpg", ""])
def test_fracture_labels_csv_path_leaving_the_root(fracture, monkeypatch, bad):
    def first_path(df):
        df.loc[0, "path"] = bad

    _relabel(fracture, monkeypatch, first_path)
    with pytest.raises(data.UnsafePathError, match=r"labels\.csv: row 2"):
        data.fracture_index(fracture)


def test_fracture_labels_csv_symlink_leaving_the_root(fracture, monkeypatch, tmp_path):
    outside = jpeg(tmp_path / "elsewhere" / "secret.jpg", 100)
    (fracture / "train" / "fractured" / "link.jpg").symlink_to(outside)
    def add_row(df):
        df.loc[len(df)] = {"split": "train", "class": "fractured", "path": "train/fractured/link.jpg", "label": 1,
                           "sha256": sha(outside)}

    _relabel(fracture, monkeypatch, add_row)
    with pytest.raises(data.UnsafePathError, match="outside"):
        data.fracture_index(fracture)


def test_fracture_missing_folder_says_how_to_get_it_from_kaggle(tmp_path):
    with pytest.raises(data.DataFileMissingError) as e:
        data.fracture_index(tmp_path / "fracture")
    msg = str(e.value)
    assert str(tmp_path / "fracture") in msg and "Kaggle account" in msg
    assert f"kaggle datasets download -d {data.FRACTURE_KAGGLE}" in msg and "Bone_Fracture_Binary_Classification" in msg


def test_fracture_without_labels_csv_warns_that_files_are_only_decoded(fracture):
    (fracture / "labels.csv").unlink()
    with pytest.warns(UserWarning, match="checked for decoding only"):
        df = data.fracture_index(fracture)
    assert df.attrs["checksums"] is None


def test_fracture_swap_stops_paper_2_before_any_decoding(fracture, tmp_path, monkeypatch):
    from imgclf import config
    from imgclf.papers import p02_fracture_cnn as p02

    shutil.copy(fracture / "train" / "fractured" / "train0.jpg", fracture / "train" / "not fractured" / "train0.jpg")
    decoded = []
    monkeypatch.setattr(data, "load_images", lambda *a, **k: decoded.append(1))
    with pytest.raises(data.DataIntegrityError, match="swapped"):
        p02.pipeline.prepare(fracture, config.make(p02.config, "smoke", input_size=16), tmp_path / "cache")
    assert not decoded


# ------------------------------------------------------------------------------------------
# any image folder
# ------------------------------------------------------------------------------------------
def _two_class_tree(root):
    for split in ("train", "test"):
        for k, cls in enumerate(("cat", "dog")):
            jpeg(root / split / cls / "a.jpg", 50 + 100 * k, seed=k)
    return root


def test_folder_with_one_class_only(tmp_path):
    root = _two_class_tree(tmp_path / "x")
    for split in ("train", "test"):
        shutil.rmtree(root / split / "dog")
    with pytest.raises(data.DataFileMissingError, match="only one class folder"):
        data.image_folder_index(root)


def test_folder_class_missing_in_one_split(tmp_path):
    root = _two_class_tree(tmp_path / "x")
    shutil.rmtree(root / "test" / "dog")
    with pytest.raises(data.DataFileMissingError, match=r"class folder .*test/dog is missing"):
        data.image_folder_index(root)


def test_folder_truncated_jpeg_is_named_at_decoding(tmp_path):
    root = _two_class_tree(tmp_path / "x")
    p = root / "train" / "dog" / "a.jpg"
    p.write_bytes(p.read_bytes()[:60])
    df = data.image_folder_index(root)
    with pytest.raises(data.DataIntegrityError, match=r"train/dog/a\.jpg.*cannot be decoded"):
        data.load_images(df["file"], 8)


def test_folder_text_file_named_jpg(tmp_path):
    root = _two_class_tree(tmp_path / "x")
    (root / "train" / "cat" / "b.jpg").write_text("not an image")
    with pytest.raises(data.DataIntegrityError, match=r"b\.jpg.*cannot be decoded"):
        data.load_images(data.image_folder_index(root)["file"], 8)


# ------------------------------------------------------------------------------------------
# Linnaeus 5 layout
# ------------------------------------------------------------------------------------------
def _linnaeus(tmp_path):
    top = tmp_path / "linnaeus5" / "Linnaeus 5 32X32"
    for split in ("train", "test"):
        for k, cls in enumerate(data.LINNAEUS_CLASSES):
            jpeg(top / split / cls / "1_32.jpg", 40 * k + 20, (32, 32), seed=k)
    return top


def test_linnaeus_unknown_class_folder(tmp_path):
    top = _linnaeus(tmp_path)
    jpeg(top / "train" / "cat" / "1_32.jpg", 10)
    with pytest.raises(data.DataIntegrityError, match=r"train/cat is not one of the classes"):
        data.load_linnaeus5(tmp_path)


def test_linnaeus_empty_class_folder(tmp_path):
    top = _linnaeus(tmp_path)
    (top / "test" / "bird" / "1_32.jpg").unlink()
    with pytest.raises(data.DataFileMissingError, match=r"test/bird holds no images"):
        data.load_linnaeus5(tmp_path)


def test_linnaeus_missing_split(tmp_path):
    top = _linnaeus(tmp_path)
    shutil.rmtree(top / "test")
    with pytest.raises(data.DataFileMissingError, match=r"test/berry is missing.*chaladze"):
        data.load_linnaeus5(tmp_path)


# ------------------------------------------------------------------------------------------
# flowers: the staged copy (manifest) and TensorFlow's flower_photos archive
# ------------------------------------------------------------------------------------------
@pytest.fixture
def flowers(tmp_path, monkeypatch):
    rows = []
    for k, cls in enumerate(data.FLOWERS_CLASSES):
        for i, split in enumerate(("train", "train", "test")):
            p = jpeg(tmp_path / "flowers" / cls / f"{i}.jpg", 40 * k + 20, seed=10 * k + i)
            rows.append({"split_suggested": split, "class": cls, "label": k, "path": f"{cls}/{i}.jpg",
                         "sha256": sha(p), "cross_class_duplicate": 0})
    pd.DataFrame(rows).to_csv(tmp_path / "flowers" / "manifest.csv", index=False)
    monkeypatch.setattr(data.datasets, "FLOWERS_MANIFEST_SHA256", sha(tmp_path / "flowers" / "manifest.csv"))
    return tmp_path


def _remanifest(root, monkeypatch, row, **values):
    m = root / "flowers" / "manifest.csv"
    df = pd.read_csv(m)
    for k, v in values.items():
        df.loc[row, k] = v
    df.to_csv(m, index=False)
    monkeypatch.setattr(data.datasets, "FLOWERS_MANIFEST_SHA256", sha(m))


def test_flowers_image_of_another_class_swapped_in(flowers):
    shutil.copy(flowers / "flowers" / "rose" / "2.jpg", flowers / "flowers" / "daisy" / "2.jpg")
    _, test = data.load_flowers(flowers)
    with pytest.raises(data.DataIntegrityError, match=r"daisy/2\.jpg: sha256"):
        data.read_images(test, 8)


def test_flowers_truncated_image(flowers):
    p = flowers / "flowers" / "tulip" / "0.jpg"
    p.write_bytes(p.read_bytes()[:100])
    train, _ = data.load_flowers(flowers)
    with pytest.raises(data.DataIntegrityError, match=r"tulip/0\.jpg: sha256"):
        data.read_images(train, 8)


@pytest.mark.parametrize("bad", ["../../outside.jpg", "daisy/../../x.jpg", "/etc/hostname"])
def test_flowers_manifest_path_leaving_the_root(flowers, monkeypatch, bad):
    _remanifest(flowers, monkeypatch, 0, path=bad)
    with pytest.raises(data.UnsafePathError, match=r"manifest\.csv: row 2"):
        data.load_flowers(flowers)


def test_flowers_manifest_symlink_leaving_the_root(flowers, monkeypatch, tmp_path):
    outside = jpeg(tmp_path / "elsewhere" / "x.jpg", 30)
    (flowers / "flowers" / "daisy" / "link.jpg").symlink_to(outside)
    _remanifest(flowers, monkeypatch, 0, path="daisy/link.jpg", sha256=sha(outside))
    with pytest.raises(data.UnsafePathError, match="outside"):
        data.load_flowers(flowers)


def test_flowers_manifest_files_an_image_under_another_class(flowers, monkeypatch):
    _remanifest(flowers, monkeypatch, 0, path="rose/0.jpg")  # row 0 says class daisy
    with pytest.raises(data.DataIntegrityError, match=r"files 'rose/0\.jpg' under class 'daisy'"):
        data.load_flowers(flowers)


def test_flowers_manifest_unknown_class(flowers, monkeypatch):
    _remanifest(flowers, monkeypatch, 0, **{"class": "cactus"})
    with pytest.raises(data.DataIntegrityError, match="cactus"):
        data.load_flowers(flowers)


def test_flowers_folder_without_manifest_is_not_silently_replaced(flowers, monkeypatch):
    (flowers / "flowers" / "manifest.csv").unlink()
    monkeypatch.setattr(data.datasets, "_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(data.DataFileMissingError, match=r"manifest\.csv.*remove .*flowers"):
        data.load_flowers(flowers)


def _flower_archive(tmp_path, extra=()):
    """A tiny flower_photos.tgz: the archive's five folders, two JPEGs each, LICENSE.txt."""
    src = tmp_path / "origin" / "flower_photos.tgz"
    src.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src, "w:gz") as tar:
        def add(name, raw, **kw):
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            for k, v in kw.items():
                setattr(info, k, v)
            tar.addfile(info, io.BytesIO(raw))

        add("flower_photos/LICENSE.txt", b"CC-BY")
        for k, folder in enumerate(data.FLOWER_PHOTOS_FOLDERS):
            for i in range(4):
                buf = io.BytesIO()
                Image.fromarray(np.full((12, 10, 3), 40 * k + 20 + i, np.uint8)).save(buf, format="JPEG")
                add(f"flower_photos/{folder}/{i}_{folder}.jpg", buf.getvalue())
        for name, raw, kw in extra:
            add(name, raw, **kw)
    return src


@good_path
def test_flower_photos_download_through_file_origin(tmp_path, monkeypatch):
    src = _flower_archive(tmp_path)
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_URL", file_url(src))
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_SHA256", sha(src))
    train, test = data.load_flowers(tmp_path / "d")  # no flowers/: the archive is the default
    assert (len(train), len(test)) == (15, 5) and train.class_names == data.FLOWERS_CLASSES
    assert np.bincount(test.labels).tolist() == [1] * 5 and "flower_photos" in train.source
    x = data.read_images(test, 6)  # each file checked against the verified archive's bytes
    np.testing.assert_allclose(x.reshape(5, -1).mean(1), 40 * np.arange(5) + 20, atol=4)
    src.unlink()  # offline now: the checked archive in the data directory is enough
    _, test2 = data.load_flowers(tmp_path / "d", download=False)
    assert [p.name for p in test2.paths] == [p.name for p in test.paths]  # same split on every call


def test_flower_photos_download_with_wrong_checksum(tmp_path, monkeypatch):
    src = _flower_archive(tmp_path)
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_URL", file_url(src))  # the real published sha256 stays
    with pytest.raises(data.DataIntegrityError, match="published sha256"):
        data.load_flowers(tmp_path / "d")
    assert list((tmp_path / "d" / "flower_photos").iterdir()) == []  # deleted, nothing unpacked


def test_flower_photos_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_URL", file_url(tmp_path / "nothing.tgz"))
    with pytest.raises(data.DataFileMissingError, match=r"flower_photos\.tgz.*4c54ace7.*Download attempt failed"):
        data.load_flowers(tmp_path)


def test_flower_photos_truncated_archive_present_offline(tmp_path):
    d = tmp_path / "flower_photos"
    d.mkdir()
    (d / "flower_photos.tgz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    with pytest.raises(data.DataIntegrityError, match=r"flower_photos\.tgz: sha256"):
        data.load_flowers(tmp_path, download=False)


def test_flower_photos_unpacked_file_changed_later(tmp_path, monkeypatch):
    src = _flower_archive(tmp_path)
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_URL", file_url(src))
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_SHA256", sha(src))
    _, test = data.load_flowers(tmp_path / "d")
    victim = test.paths[0]
    shutil.copy(test.paths[1], victim)  # a valid image of another class
    _, test = data.load_flowers(tmp_path / "d")
    with pytest.raises(data.DataIntegrityError, match=f"{victim.name}: sha256"):
        data.read_images(test, 6)


def test_flower_photos_archive_members_leaving_the_folder_are_not_unpacked(tmp_path, monkeypatch):
    src = _flower_archive(tmp_path, extra=[
        ("flower_photos/../../../escaped.jpg", b"x", {}),
        ("/abs_escaped.jpg", b"x", {}),
        ("flower_photos/daisy/link.jpg", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
    ])
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_URL", file_url(src))
    monkeypatch.setattr(data.datasets, "FLOWER_PHOTOS_SHA256", sha(src))
    train, test = data.load_flowers(tmp_path / "d" / "data")
    assert len(train) + len(test) == 20
    assert not list(tmp_path.rglob("escaped.jpg")) and not list(tmp_path.rglob("abs_escaped.jpg"))
    assert not Path("/abs_escaped.jpg").exists() and not list(tmp_path.rglob("link.jpg"))


# ------------------------------------------------------------------------------------------
# MURA index: every row checked
# ------------------------------------------------------------------------------------------
@pytest.fixture
def mura(tmp_path):
    root = tmp_path / "MURA-v1.1"
    for split, study, k in (("train", "study1_positive", 1), ("valid", "study1_negative", 0)):
        d = root / split / "XR_WRIST" / "patient00001" / study
        d.mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(d / "image1.png")
        (root / f"{split}_labeled_studies.csv").write_text(f"MURA-v1.1/{split}/XR_WRIST/patient00001/{study}/,{k}\n")
    assert len(data.mura_index(root)) == 2  # the good tree passes
    return root


def _mura_row(root, line, split="train"):
    with open(root / f"{split}_labeled_studies.csv", "a") as f:
        f.write(line + "\n")


@pytest.mark.parametrize("line", ["MURA-v1.1/../../etc/,0", "../MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/,1",
                                  "/etc/ssl/,0", "MURA-v1.1/train/XR_WRIST/../../../../x/,0"])
def test_mura_row_leaving_the_root(mura, line):
    _mura_row(mura, line)
    with pytest.raises(data.UnsafePathError, match="train_labeled_studies.csv: line 2"):
        data.mura_index(mura)


def test_mura_study_folder_symlink_leaving_the_root(mura, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(outside / "image1.png")
    (mura / "train" / "XR_WRIST" / "patient00002").mkdir()
    (mura / "train" / "XR_WRIST" / "patient00002" / "study1_negative").symlink_to(outside)
    _mura_row(mura, "MURA-v1.1/train/XR_WRIST/patient00002/study1_negative/,0")
    with pytest.raises(data.UnsafePathError, match="outside"):
        data.mura_index(mura)


def test_mura_image_symlink_leaving_the_root(mura, tmp_path):
    outside = tmp_path / "secret.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(outside)
    (mura / "train" / "XR_WRIST" / "patient00001" / "study1_positive" / "image2.png").symlink_to(outside)
    with pytest.raises(data.UnsafePathError, match=r"image2\.png.*outside"):
        data.mura_index(mura)


@pytest.mark.parametrize("line, msg", [
    ("MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/,yes", "expected '<study folder>/,<0|1>'"),
    ("MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/", "expected '<study folder>/,<0|1>'"),
    ("MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/,0", "contradicts the study folder name"),
    ("MURA-v1.1/valid/XR_WRIST/patient00001/study1_negative/,0", "lies in split folder 'valid', not 'train'"),
    ("MURA-v1.1/train/XR_WRIST/study1_positive/,1", "expected <split>/XR_<PART>"),
])
def test_mura_malformed_row(mura, line, msg):
    _mura_row(mura, line)
    with pytest.raises(data.DataIntegrityError, match=msg.replace("(", r"\(").replace("|", r"\|")):
        data.mura_index(mura)


def test_mura_study_listed_twice(mura):
    _mura_row(mura, "MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/,1")
    with pytest.raises(data.DataIntegrityError, match="listed twice"):
        data.mura_index(mura)


# ------------------------------------------------------------------------------------------
# parameters (the lead's checks, issue 11.6): refused before any work or folder
# ------------------------------------------------------------------------------------------
def _ns(paper, **values):
    ns = {name: None for name in papers.declared_parameters(paper)}
    ns.update({k: d for k, (d, _) in getattr(paper, "EXTRA_PARAMETERS", {}).items()})
    ns.update(profile="smoke", seed=0)
    ns.update(values)
    return ns


@pytest.mark.parametrize("paper_name, values, name", [
    ("p05_linnaeus_transfer", {"mobilenet_weights": "/no/such/mobilenet.h5"}, "mobilenet_weights"),
    ("p05_linnaeus_transfer", {"resnet_weights": "DIR"}, "resnet_weights"),  # a folder, not a weights file
    ("p01_two_stage_autoencoder", {"spectra_file": "wheat_typo.npz"}, "spectra_file"),
    ("p04_knn_slicing_evolution", {"data_dir": "DATA_TYPO"}, "data_dir"),
    ("p04_knn_slicing_evolution", {"data_dir": "A_FILE"}, "data_dir"),
])
def test_bad_parameter_stops_before_any_folder_is_made(tmp_path, paper_name, values, name):
    import importlib

    paper = importlib.import_module(f"imgclf.papers.{paper_name}")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "A_FILE").write_text("x")
    values = {k: str(tmp_path / v) if v in ("DIR", "A_FILE", "DATA_TYPO") else v for k, v in values.items()}
    ns = _ns(paper, reports_root=str(tmp_path / "reports"), **{"data_dir": str(tmp_path), **values})
    with pytest.raises(ParameterError, match=f"'{name}'"):
        papers.start(paper, ns)
    assert not (tmp_path / "reports").exists() and not (tmp_path / "DATA_TYPO").exists()


# ------------------------------------------------------------------------------------------
# the report life cycle: no good result is lost
# ------------------------------------------------------------------------------------------
def _complete_run(root, tag, tables=("t1",), figures=()):
    import matplotlib.pyplot as plt

    rep = Report("nb", {"profile": "smoke", "seed": 0, "tag": tag}, root=root)
    for t in tables:
        rep.table(pd.DataFrame({"run": [tag]}), t)
    for f in figures:
        fig, ax = plt.subplots()
        ax.set_title(tag)
        rep.figure(fig, f)
    rep.metric("tag", tag)
    rep.finish()
    return rep


def _results(root):
    return json.loads((root / "nb" / "results.json").read_text())


def test_failed_run_keeps_the_last_complete_results_and_their_files(tmp_path):
    _complete_run(tmp_path, "good", tables=("t1",), figures=("f1",))
    before = {p: p.read_bytes() for p in (tmp_path / "nb").rglob("*") if p.is_file()}
    rep = Report("nb", {"profile": "smoke", "seed": 0, "tag": "bad"}, root=tmp_path)
    rep.table(pd.DataFrame({"run": ["bad"]}), "t1")
    rep.metric("tag", "bad")
    # ... the notebook raises here: no finish()
    assert _results(tmp_path)["metrics"]["tag"] == "good" and _results(tmp_path)["complete"] is True
    for p, raw in before.items():
        assert p.read_bytes() == raw, p  # the old CSV and PNG are the ones results.json lists
    assert json.loads((tmp_path / "nb" / "running" / "results.json").read_text())["complete"] is False


def test_new_run_removes_files_the_old_run_wrote_and_it_did_not(tmp_path):
    _complete_run(tmp_path, "one", tables=("t1", "only_in_one"), figures=("f1",))
    _complete_run(tmp_path, "two", tables=("t1",))
    nb = tmp_path / "nb"
    assert sorted(p.relative_to(nb).as_posix() for p in nb.rglob("*") if p.is_file()) == ["results.json", "t1.csv"]
    assert "two" in (nb / "t1.csv").read_text()


def test_failed_run_outputs_are_replaced_by_the_next_run(tmp_path):
    rep = Report("nb", {"profile": "smoke", "seed": 0}, root=tmp_path)
    rep.table(pd.DataFrame({"a": [1]}), "from_failed_run")
    _complete_run(tmp_path, "next")
    assert not list((tmp_path / "nb").rglob("from_failed_run.csv"))


def test_report_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        _complete_run(tmp_path, "m", figures=("f1",))
    finally:
        os.umask(old)
    for p in (tmp_path / "nb").rglob("*"):
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o644, p


_KILLED_RUN = textwrap.dedent("""
    import io, sys, time
    from imgclf import files, reports
    rep = reports.Report("nb", {"profile": "smoke", "seed": 0, "tag": "killed"}, root=sys.argv[1])
    real = files.atomic_write
    def slow(path, write):
        def half_then_hang(f):
            buf = io.BytesIO()
            write(buf)
            raw = buf.getvalue()
            f.write(raw[: len(raw) // 2])
            f.flush()
            print("HALF", len(raw), flush=True)
            time.sleep(120)
            f.write(raw[len(raw) // 2:])
        return real(path, half_then_hang)
    files.atomic_write = slow
    rep.metric("big", list(range(300_000)))  # a big results file, killed half written
""")


def test_sigkill_mid_write_keeps_previous_results_and_next_run_leaves_no_stray_files(tmp_path):
    _complete_run(tmp_path, "good", figures=("f1",))
    good = (tmp_path / "nb" / "results.json").read_bytes()
    env = dict(os.environ, PYTHONPATH=str(LIB))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(tmp_path)], stdout=subprocess.PIPE, env=env,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("HALF"), line
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    parts = list((tmp_path / "nb").rglob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size > 1_000_000  # killed mid-write indeed
    assert (tmp_path / "nb" / "results.json").read_bytes() == good  # previous complete results readable
    assert _results(tmp_path)["complete"] is True
    _complete_run(tmp_path, "after", figures=("f1",))
    files = sorted(p.relative_to(tmp_path / "nb").as_posix() for p in (tmp_path / "nb").rglob("*") if p.is_file())
    assert files == ["figures/f1.png", "results.json", "t1.csv"]  # no .part, no running/
    assert _results(tmp_path)["metrics"]["tag"] == "after"


_KILLED_PROMOTION = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    from imgclf import reports
    rep = reports.Report("nb", {"profile": "smoke", "seed": 0}, root=sys.argv[1])
    rep.table(pd.DataFrame({"run": ["two"]}), "t1")
    rep.table(pd.DataFrame({"run": ["two"]}), "t2")
    rep.metric("tag", "two")
    real, moved = os.replace, []
    def replace_then_die(src, dst):
        real(src, dst)
        if str(src).endswith(".csv") and "running" in str(src):
            moved.append(dst)
            if len(moved) == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the promotion
    os.replace = replace_then_die
    rep.finish()
""")


def test_sigkill_during_promotion_is_rolled_forward_by_the_next_report(tmp_path):
    _complete_run(tmp_path, "one")
    env = dict(os.environ, PYTHONPATH=str(LIB))
    proc = subprocess.run([sys.executable, "-c", _KILLED_PROMOTION, str(tmp_path)], env=env, capture_output=True,
                          check=False)
    assert proc.returncode == -signal.SIGKILL
    assert _results(tmp_path)["metrics"]["tag"] == "one"  # killed before the new results.json was in place
    reports.recover(tmp_path / "nb")  # what the next Report (or the index) does first
    res = _results(tmp_path)
    assert res["metrics"]["tag"] == "two" and res["complete"] is True and res["tables"] == ["t1.csv", "t2.csv"]
    assert "two" in (tmp_path / "nb" / "t1.csv").read_text() and "two" in (tmp_path / "nb" / "t2.csv").read_text()
    assert not (tmp_path / "nb" / "running").exists()


def test_stale_part_files_are_removed_at_the_next_start(tmp_path):
    _complete_run(tmp_path, "one", figures=("f1",))
    stale = [tmp_path / "nb" / ".results.json.abc123.part", tmp_path / "nb" / "figures" / ".f1.png.x.part",
             tmp_path / "nb" / "cache" / ".images_32.npy.y.part"]
    for p in stale:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half")
    Report("nb", {"profile": "smoke", "seed": 0}, root=tmp_path)
    assert not any(p.exists() for p in stale)
    assert _results(tmp_path)["metrics"]["tag"] == "one"


def test_results_record_the_thread_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    res = json.loads((_complete_run(tmp_path, "t").dir / "results.json").read_text())
    th = res["hardware"]["threads"]
    assert {"tf_intra_op_parallelism", "tf_inter_op_parallelism", "cpus_usable", "cpu_count", "op_determinism"} <= set(th)
    assert th["env"]["OMP_NUM_THREADS"] == "3" and "TF_ENABLE_ONEDNN_OPTS" in th["env"]
    assert th["cpus_usable"] == len(os.sched_getaffinity(0))


def test_a_note_added_after_finish_is_not_lost(tmp_path):
    rep = _complete_run(tmp_path, "one")
    rep.note("added after finish")
    assert "added after finish" in _results(tmp_path)["notes"] and not (tmp_path / "nb" / "running").exists()
