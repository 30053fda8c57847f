"""Caches and downloads checked before use: a cached ImageNet weights file that is an HTML page, cut
short, not the file Keras publishes (md5) or another model's is named with the fix and set aside,
never reported as "ImageNet weights from the Keras cache" and then failing with an h5py error that
names nothing; a local weights file likewise. Real files; the end-to-end loads in real processes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

from imgclf.models import transfer
from imgclf.models.transfer import DamagedCache, WeightsFileError

LIB = str(Path(__file__).resolve().parents[1] / "lib")
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in to the proxy</title></head><body>...</body></html>\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    return tmp_path / "keras" / "models"


def _small_weights(path: Path) -> Path:
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(10)])
    m.save_weights(path)
    return path


def test_an_html_page_in_the_cache_is_named_set_aside_with_the_fix(home):
    cached = home / transfer.IMAGENET_FILES["mobilenet"]
    cached.write_bytes(HTML)
    with pytest.warns(DamagedCache) as rec:
        w, why = transfer.resolve_weights("mobilenet", "imagenet", download=False)
    msg = str(rec[0].message)
    assert w is None and "from the Keras cache" not in why
    assert f"the cached ImageNet weights file {cached} is not an HDF5 file (it is text: an HTML page" in msg
    assert f"moved to {cached}.damaged" in msg and transfer.IMAGENET_URLS["mobilenet"] in msg
    assert not cached.exists() and (home / (cached.name + ".damaged")).read_bytes() == HTML
    assert msg in why  # the reason the notebook prints says it too


def test_a_truncated_cached_file_is_named(home, tmp_path):
    good = _small_weights(tmp_path / "w.weights.h5")
    cached = home / transfer.IMAGENET_FILES["resnet50"]
    cached.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.warns(DamagedCache, match=rf"{cached.name} is damaged \(.*\); [\d,]+ bytes, probably cut short"):
        w, _ = transfer.resolve_weights("resnet50", "imagenet", download=False)
    assert w is None


def test_a_whole_hdf5_file_that_is_not_the_published_resnet50_is_named_by_its_md5(home, tmp_path):
    cached = home / transfer.IMAGENET_FILES["resnet50"]
    cached.write_bytes(_small_weights(tmp_path / "w.weights.h5").read_bytes())
    with pytest.warns(DamagedCache, match=r"has md5 [0-9a-f]{32}, not the 4d473c1dd8becc155b73f8504c6f6626 Keras publishes"):
        w, _ = transfer.resolve_weights("resnet50", "imagenet", download=False)
    assert w is None


def test_a_download_that_saved_a_page_is_named_and_set_aside(home, monkeypatch):
    target = home / transfer.IMAGENET_FILES["mobilenet"]

    def keras_download_through_a_proxy(arch, size, weights):  # what get_file + load_weights do then
        target.write_bytes(HTML)
        raise OSError("Unable to synchronously open file (file signature not found)")

    monkeypatch.setattr(transfer, "_application", keras_download_through_a_proxy)
    with pytest.warns(DamagedCache):
        w, why = transfer.resolve_weights("mobilenet", "imagenet", download=True)
    assert w is None and why.startswith(f"the Keras download failed: the cached ImageNet weights file {target} is "
                                        "not an HDF5 file")
    assert not target.exists()


@pytest.mark.parametrize("content", ["html", "truncated"])
def test_a_damaged_local_weights_file_stops_naming_it(tmp_path, content):
    p = tmp_path / "mine.h5"
    if content == "html":
        p.write_bytes(HTML)
    else:
        good = _small_weights(tmp_path / "w.weights.h5")
        p.write_bytes(good.read_bytes()[:4000])
    with pytest.raises(WeightsFileError, match=rf"mobilenet weights file {p} (is not an HDF5 file|is damaged)"):
        transfer.resolve_weights("mobilenet", p)


# -- end to end, in a process whose Keras reads KERAS_HOME from the start ----------------------
CHILD = textwrap.dedent("""
    import json, sys, warnings, h5py, keras
    from keras.src.legacy.saving import legacy_h5_format
    from imgclf.models import transfer
    mode, cached = sys.argv[1], sys.argv[2]
    if mode == "good":  # a file laid out as Keras publishes it (legacy HDF5, no top)
        src = keras.applications.MobileNet(input_shape=(224, 224, 3), include_top=False, weights=None)
        with h5py.File(cached, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, src)
        want = src.get_weights()[0]
    else:  # a whole HDF5 file of another model under the MobileNet name: only loading it tells
        other = keras.applications.MobileNet(input_shape=(224, 224, 3), include_top=False, weights=None, alpha=0.5)
        with h5py.File(cached, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, other)
    w, why = transfer.resolve_weights("mobilenet", "imagenet", download=False)
    out = {"w": w, "why": why}
    try:
        tm = transfer.build_mobilenet(96, weights=w)
        base = tm.model.get_layer("mobilenet_1.00_224")
        out["same"] = bool((base.get_layer("conv1").get_weights()[0] == want).all())
    except transfer.WeightsFileError as e:
        out["error"] = str(e)
    print("RESULT " + json.dumps(out))
""")


def _child(tmp_path, mode):
    home = tmp_path / "keras"
    (home / "models").mkdir(parents=True)
    cached = home / "models" / transfer.IMAGENET_FILES["mobilenet"]
    env = {**os.environ, "KERAS_HOME": str(home), "PYTHONPATH": LIB + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-c", CHILD, mode, str(cached)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(l for l in res.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[7:]), cached


def test_a_good_cached_file_is_used_and_loads(tmp_path):
    out, cached = _child(tmp_path, "good")
    assert out["w"] == "imagenet" and out["why"] == (f"ImageNet weights from the Keras cache {cached} (HDF5 checked; "
                                                      "Keras publishes no hash for it)")
    assert out["same"] is True


def test_another_models_weights_in_the_cache_are_named_when_they_do_not_load(tmp_path):
    out, cached = _child(tmp_path, "other")
    assert out["w"] == "imagenet"  # a whole HDF5 file: no hash to tell, so it is tried
    assert out["error"].startswith(f"the cached ImageNet weights file {cached} does not load into the no-top mobilenet")
    assert "delete it" in out["error"] and transfer.IMAGENET_URLS["mobilenet"] in out["error"]
