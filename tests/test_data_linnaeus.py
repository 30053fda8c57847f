"""Paper 5 data: the Linnaeus 5 folder layout on generated images, and the flowers stand-in."""

import numpy as np
import pytest
from imgclf import data
from PIL import Image


def _make_linnaeus(root, size=32, per_class=2, classes=data.LINNAEUS_CLASSES):
    rng = np.random.default_rng(0)
    top = root / "linnaeus5" / f"Linnaeus 5 {size}X{size}"
    for split in ("train", "test"):
        for k, cls in enumerate(classes):
            d = top / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                img = np.full((size, size, 3), 40 * k, np.uint8) + rng.integers(0, 5, (size, size, 3), dtype=np.uint8)
                Image.fromarray(img).save(d / f"{i + 1}_{size}.jpg", quality=95)
    return top


def test_linnaeus_layout_any_resolution_and_labels(tmp_path):
    _make_linnaeus(tmp_path, size=32)
    train, test = data.load_linnaeus5(tmp_path)
    assert len(train) == 10 and len(test) == 10
    assert train.class_names == ("berry", "bird", "dog", "flower", "other")
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(5), 2))
    x = data.read_images(train, 24)
    assert x.shape == (10, 24, 24, 3) and x.dtype == np.uint8
    # class k was painted with grey level 40 k: labels follow the folders
    np.testing.assert_allclose(x.reshape(10, -1).mean(1), np.repeat(40 * np.arange(5), 2) + 2, atol=3)
    with pytest.raises(data.DataFileMissingError, match="Linnaeus 5 64X64"):
        data.load_linnaeus5(tmp_path, resolution=64)


def test_linnaeus_missing_archive_says_where_to_get_it(tmp_path):
    with pytest.raises(data.DataFileMissingError, match=r"chaladze\.com/l5.*unpack"):
        data.load_linnaeus5(tmp_path)


def test_linnaeus_missing_class_folder_is_named(tmp_path):
    _make_linnaeus(tmp_path, classes=("berry", "bird", "dog", "flower"))
    with pytest.raises(data.DataFileMissingError, match=r"test/other|train/other") as e:
        data.load_linnaeus5(tmp_path)
    assert "chaladze.com/l5" in str(e.value)


def test_linnaeus_unreadable_image_is_named(tmp_path):
    top = _make_linnaeus(tmp_path)
    bad = top / "train" / "dog" / "2_32.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    train, _ = data.load_linnaeus5(tmp_path, resolution=32)
    with pytest.raises(data.DataIntegrityError, match="2_32.jpg"):
        data.read_images(train, 16)


def _make_flowers(root):
    import hashlib

    import pandas as pd

    rows = []
    for k, cls in enumerate(data.FLOWERS_CLASSES):
        (root / "flowers" / cls).mkdir(parents=True)
        for i in range(3):
            p = root / "flowers" / cls / f"{i}.jpg"
            Image.fromarray(np.full((12, 16, 3), 50 * k, np.uint8)).save(p)
            rows.append(dict(split_suggested="test" if i == 0 else "train", **{"class": cls}, label=k,
                             path=f"{cls}/{i}.jpg", sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
                             cross_class_duplicate=int(cls == "rose" and i == 2)))
    pd.DataFrame(rows).to_csv(root / "flowers" / "manifest.csv", index=False)
    return root / "flowers" / "manifest.csv"


def test_flowers_manifest_checksum_is_checked(tmp_path):
    _make_flowers(tmp_path)
    with pytest.raises(data.DataIntegrityError, match="manifest.csv"):
        data.load_flowers(tmp_path)


def test_flowers_split_drops_cross_class_and_checks_files(tmp_path, monkeypatch):
    manifest = _make_flowers(tmp_path)
    monkeypatch.setattr(data.datasets, "FLOWERS_MANIFEST_SHA256", data.sha256_file(manifest))
    train, test = data.load_flowers(tmp_path)
    assert len(test) == 5 and len(train) == 9  # one rose file dropped
    x = data.read_images(test, 8)
    np.testing.assert_allclose(x.reshape(5, -1).mean(1), 50 * np.arange(5), atol=2)
    (tmp_path / "flowers" / "daisy" / "0.jpg").write_bytes(b"\xff\xd8 not the staged file")
    with pytest.raises(data.DataIntegrityError, match="daisy/0.jpg: sha256"):
        data.read_images(test, 8)


@pytest.mark.realdata
def test_real_flowers_split_counts(real_data):
    train, test = data.load_flowers(real_data)
    assert (len(train), len(test)) == (3238 - 8, 1079)
    assert np.bincount(test.labels).tolist() == [191, 263, 196, 183, 246]
