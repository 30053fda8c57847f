import gzip

import numpy as np
import pytest
from conftest import write_idx
from imgclf import data


def test_read_idx_round_trip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = data.read_idx(write_idx(tmp_path / "x.gz", arr))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_missing_mnist_file_names_file_checksum_and_directory(tmp_path):
    with pytest.raises(data.DataFileMissingError) as e:
        data.load_mnist(tmp_path, download=False)
    msg = str(e.value)
    spec = data.MNIST_FILES["train_images"]
    assert spec.name in msg and spec.sha256_content in msg and str(tmp_path / "mnist") in msg


def test_missing_mnist_file_offline_download_fails_with_same_error(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(data.datasets, "_download", offline)
    with pytest.raises(data.DataFileMissingError, match="no network") as e:
        data.load_mnist(tmp_path, download=True)
    assert "train-images-idx3-ubyte.gz" in str(e.value)


def test_truncated_gzip_is_rejected_with_its_name(tmp_path):
    good = write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((50, 28, 28)))
    raw = good.read_bytes()
    good.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataIntegrityError, match="train-images-idx3-ubyte.gz.*truncated"):
        data.load_mnist(tmp_path, download=False)


def test_wrong_content_is_rejected_by_checksum(tmp_path):
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((60000, 28, 28)))
    with pytest.raises(data.DataIntegrityError, match="sha256"):
        data.load_mnist(tmp_path, download=False)


def test_idx_header_that_lies_about_its_size_is_rejected(tmp_path):
    p = tmp_path / "bad.gz"
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(10))
    with pytest.raises(data.DataIntegrityError, match="header"):
        data.read_idx(p)


@pytest.mark.realdata
def test_real_mnist_shapes_dtypes_and_label_counts(real_data):
    (xtr, ytr), (xte, yte) = data.load_mnist(real_data, download=False)
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == xte.dtype == ytr.dtype == np.uint8
    assert np.bincount(ytr).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yte).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.realdata
def test_real_faces_and_seven_three_split(real_data):
    x, y = data.load_faces(real_data, download=False)
    assert x.shape == (400, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    tr, te = data.faces_split(y, 7, seed=3)
    assert len(tr) == 280 and len(te) == 120 and not set(tr) & set(te)
    assert np.all(np.bincount(y[tr]) == 7) and np.all(np.bincount(y[te]) == 3)


def test_missing_faces_raises_named_error(tmp_path):
    with pytest.raises(data.DataFileMissingError, match="olivetti_py3.pkz"):
        data.load_faces(tmp_path, download=False)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 1.0])
def test_noise_corrupts_exactly_the_promised_fraction(fraction):
    x = np.full((20, 28 * 28), 2.0, np.float32)  # outside [0, 1]: every replaced pixel is visible
    noisy = data.add_noise(x, fraction, seed=1)
    changed = (noisy != 2.0).sum(axis=1)
    assert np.all(changed == round(fraction * 784))
    replaced = noisy[noisy != 2.0]
    assert replaced.size == 0 or (replaced.min() >= 0 and replaced.max() < 1)
    assert x[0, 0] == 2.0  # input untouched


def test_noise_positions_differ_between_images_and_fraction_is_checked():
    noisy = data.add_noise(np.full((2, 100), 2.0), 0.2, seed=0)
    assert not np.array_equal(noisy[0] != 2.0, noisy[1] != 2.0)
    with pytest.raises(ValueError, match="noise fraction"):
        data.add_noise(np.zeros((1, 4)), 1.5)


def test_stratified_subset_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [600, 300, 100])
    x = np.arange(1000)
    xs, ys = data.stratified_subset(x, y, 100, seed=0)
    assert np.bincount(ys).tolist() == [60, 30, 10]
    np.testing.assert_array_equal(y[xs], ys)


def test_synthetic_spectra_are_deterministic_balanced_and_class_specific():
    x, y = data.make_synthetic_spectra(n_classes=5, n_samples=200, length=800, seed=4)
    x2, y2 = data.make_synthetic_spectra(n_classes=5, n_samples=200, length=800, seed=4)
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (200, 800) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.bincount(y).tolist() == [40] * 5
    # nearest class mean on held-out lanes beats chance by far: the classes carry signal
    means = np.stack([x[:100][y[:100] == c].mean(0) for c in range(5)])
    pred = np.argmin(((x[100:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == y[100:]) > 0.5  # chance: 0.2 (one family of closely related sorts)


def test_spectra_file_round_trip_and_errors(tmp_path):
    x = np.random.default_rng(0).random((6, 32)).astype(np.float32)
    data.save_spectra(tmp_path / "s.npz", x, np.array([7, 7, 3, 3, 9, 9]))
    x2, y2 = data.load_spectra(tmp_path / "s.npz")
    np.testing.assert_array_equal(x, x2)
    assert y2.tolist() == [1, 1, 0, 0, 2, 2]
    with pytest.raises(data.DataFileMissingError, match="nope.npz"):
        data.load_spectra(tmp_path / "nope.npz")
    np.savez(tmp_path / "bad.npz", spectra=x)
    with pytest.raises(data.DataIntegrityError, match="'x' and 'y'"):
        data.load_spectra(tmp_path / "bad.npz")
