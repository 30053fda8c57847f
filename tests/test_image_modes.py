"""Images as users have them: every Pillow mode and bit depth, written by Pillow and NumPy to real
files, scaled to 0..255 correctly or refused naming the file; and what a folder loader leaves out
(other extensions, DICOM, sub-folders, hidden files, dead links) is said, with how many."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf import data

H, W = 8, 256
RAMP16 = np.tile(np.linspace(0, 65535, W).round().astype(np.uint16), (H, 1))  # a full-range 16-bit ramp
WANT = np.tile(np.linspace(0, 255, W), (H, 1))  # what it means on the 8-bit scale


def _read(path, channels=1, size=None):
    return data.read_image(path, size, channels=channels).astype(float)


def _close(got, want, tol=0.51):
    assert got.shape[:2] == want.shape and np.abs(got[..., 0] - want).max() <= tol, np.abs(got[..., 0] - want).max()


def test_16bit_grey_png_full_range_ramp_is_scaled_not_clipped(tmp_path):
    p = tmp_path / "xray16.png"
    Image.fromarray(RAMP16).save(p)  # Pillow writes a 16-bit greyscale PNG (mode I;16)
    with Image.open(p) as im:
        assert im.mode == "I;16"
        clipped = np.asarray(im.convert("L"))
    assert (clipped == 255).mean() > 0.9  # what Pillow's convert("L") gives: the bug
    g = _read(p)
    _close(g, WANT)
    assert (g == 255).mean() < 0.01 and g.mean() == pytest.approx(127.5, abs=0.6)
    rgb = _read(p, channels=3)
    assert rgb.shape == (H, W, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    _close(rgb, WANT)


def test_16bit_resized_and_big_endian_and_tiff(tmp_path):
    big = tmp_path / "big_endian.tif"
    Image.frombytes("I;16B", (W, H), RAMP16.astype(">u2").tobytes()).save(big)
    with Image.open(big) as im:
        assert im.mode == "I;16B"
    _close(_read(big), WANT)
    little = tmp_path / "little.tif"
    Image.fromarray(RAMP16).save(little)
    _close(_read(little), WANT)
    small = data.read_image(tmp_path / "little.tif", 16)  # resized on the float scale, then rounded
    assert small.shape == (16, 16, 1) and small[..., 0, 0].max() < 10 and small[..., -1, 0].min() > 245


def test_12bit_values_in_a_16bit_file_are_read_on_the_16bit_scale_with_a_warning(tmp_path):
    p = tmp_path / "raw12.png"
    Image.fromarray((RAMP16 >> 4).astype(np.uint16)).save(p)  # 0..4095, not scaled up: dark
    with pytest.warns(UserWarning, match=r"1 of 1 16-bit image\(s\) use only values up to 4095.*raw12\.png"):
        g = _read(p)
    assert g.max() == 16


def test_32bit_int_and_float_images(tmp_path):
    i32 = tmp_path / "int32.tif"
    Image.fromarray(RAMP16.astype(np.int32)).save(i32)
    with Image.open(i32) as im:
        assert im.mode == "I"
    _close(_read(i32), WANT)
    f01 = tmp_path / "float01.tif"
    Image.fromarray((RAMP16 / 65535).astype(np.float32)).save(f01)
    with Image.open(f01) as im:
        assert im.mode == "F"
    _close(_read(f01), WANT)
    hu = tmp_path / "hounsfield.tif"  # CT numbers: negative floats, no standard 0..255 scale
    Image.fromarray(np.linspace(-1000, 3000, H * W).reshape(H, W).astype(np.float32)).save(hu)
    with pytest.raises(data.DataIntegrityError, match=r"hounsfield\.tif holds 32-bit floats from -1000 to 3000"):
        _read(hu)
    neg = tmp_path / "neg.tif"
    Image.fromarray((RAMP16.astype(np.int32) - 40000)).save(neg)
    with pytest.raises(data.DataIntegrityError, match=r"neg\.tif holds 32-bit integers"):
        _read(neg)


def test_8bit_modes_bilevel_palette_alpha_cmyk(tmp_path):
    grey = np.tile(np.arange(256, dtype=np.uint8), (H, 1))
    Image.fromarray(grey).save(tmp_path / "l.png")
    _close(_read(tmp_path / "l.png"), grey.astype(float), 0)
    bw = np.zeros((H, W), bool)
    bw[:, W // 2:] = True
    Image.fromarray(bw).save(tmp_path / "one.png")
    with Image.open(tmp_path / "one.png") as im:
        assert im.mode == "1"
    _close(_read(tmp_path / "one.png"), bw * 255.0, 0)
    # LA: the grey kept, the alpha dropped (a half-transparent X-ray reads as its grey values)
    la = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(np.full((H, W), 128, np.uint8))])
    la.save(tmp_path / "la.png")
    _close(_read(tmp_path / "la.png"), grey.astype(float), 0)
    # RGBA and P: the colours kept, the palette applied
    rgb = np.stack([grey, 255 - grey, np.full_like(grey, 40)], -1)
    Image.fromarray(np.dstack([rgb, np.full((H, W), 7, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(data.read_image(tmp_path / "rgba.png", channels=3), rgb)
    pal = Image.fromarray(rgb).quantize(16)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P"
        want = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(data.read_image(tmp_path / "p.png", channels=3), want)
    assert np.abs(want.astype(int) - rgb).mean() < 12  # the palette is the picture, not its indices
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
    assert np.abs(data.read_image(tmp_path / "cmyk.jpg", channels=3).astype(int) - rgb).mean() < 6


def test_a_mode_that_is_not_read_is_refused_naming_the_file(tmp_path):
    lab = Image.fromarray(np.zeros((H, W, 3), np.uint8), "RGB").convert("LAB")
    lab.save(tmp_path / "lab.tif")
    with Image.open(tmp_path / "lab.tif") as im:
        assert im.mode == "LAB"
    with pytest.raises(data.DataIntegrityError, match=r"lab\.tif has the Pillow mode 'LAB'"):
        _read(tmp_path / "lab.tif")


def test_every_undecodable_file_of_a_batch_is_named_in_one_error(tmp_path):
    files = []
    for i in range(4):
        p = tmp_path / f"ok{i}.png"
        Image.fromarray(RAMP16).save(p)
        files.append(p)
    (tmp_path / "ok1.png").write_bytes((tmp_path / "ok1.png").read_bytes()[:50])  # inside the pixel data
    (tmp_path / "ok3.png").write_text("<html>not found</html>")
    with pytest.raises(data.DataIntegrityError, match=r"2 of 4 image file\(s\) cannot be used: .*ok1\.png.*ok3\.png"):
        data.load_images(files, 8)


def test_the_decoded_cache_is_not_an_old_clipped_one(tmp_path):
    p = tmp_path / "a" / "x.png"
    p.parent.mkdir()
    Image.fromarray(RAMP16).save(p)
    x = data.load_images([p], 16, cache_dir=tmp_path / "cache")
    assert x.mean() == pytest.approx(127.5, abs=2)
    assert np.array_equal(data.load_images([p], 16, cache_dir=tmp_path / "cache"), x)


# -- folders: what is left out is said -------------------------------------------------------
def _tree(root: Path) -> Path:
    for split in ("train", "test"):
        for cls in ("normal", "fracture"):
            d = root / split / cls
            d.mkdir(parents=True)
            Image.fromarray(RAMP16).save(d / "a.png")
            Image.fromarray(RAMP16[:, ::-1].copy()).save(d / "b.TIF")
    return root


def test_a_folder_loader_says_what_it_leaves_out_and_how_many(tmp_path):
    root = _tree(tmp_path / "xr")
    (root / "train" / "normal" / "scan1.dcm").write_bytes(b"\0" * 128 + b"DICM")
    (root / "train" / "normal" / "scan2.dcm").write_bytes(b"\0" * 128 + b"DICM")
    (root / "test" / "fracture" / "notes.txt").write_text("x")
    (root / "test" / "fracture" / "more").mkdir()
    (root / "train" / "fracture" / ".DS_Store").write_bytes(b"\0")
    os.symlink(tmp_path / "nowhere.png", root / "train" / "fracture" / "dead.png")
    with pytest.warns(data.LeftOutWarning) as rec:
        df = data.image_folder_index(root)
    msg = str(rec[0].message)
    assert len(df) == 8 and sorted(set(df["path"].str.rsplit("/", n=1).str[-1])) == ["a.png", "b.TIF"]
    assert msg.startswith(f"6 entries under {root} left out: 3 with an extension that is not read (.dcm \u00d72, .txt \u00d71)")
    assert "1 sub-folder(s)" in msg and "1 link(s) to nothing" in msg and "1 hidden or system file(s)" in msg
    assert "DICOM files are not read: export them to 16-bit PNG" in msg
    assert df.attrs["left_out"] == msg
    x = data.load_images(df["file"], 16)  # the TIFFs are read too, on the same scale as the PNGs
    assert x.shape == (8, 16, 16, 1) and abs(x[0].mean() - x[1].mean()) < 1


def test_a_clean_folder_warns_nothing(tmp_path):
    root = _tree(tmp_path / "xr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = data.image_folder_index(root)
    assert df.attrs["left_out"] is None and len(df) == 8


def test_a_class_folder_of_dicom_only_says_why_it_is_empty(tmp_path):
    root = _tree(tmp_path / "xr")
    for p in (root / "test" / "normal").iterdir():
        p.unlink()
    (root / "test" / "normal" / "1.dcm").write_bytes(b"DICM")
    with pytest.raises(data.DataFileMissingError, match=r"holds no images.*\.dcm \u00d71.*DICOM files are not read"):
        data.image_folder_index(root)
