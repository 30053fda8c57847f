"""Paper 2's data layer: image folders, MURA layout, duplicate groups, group-aware splits."""

import numpy as np
import pytest
from imgclf import data
from PIL import Image


def _texture(seed: int, h: int = 48, w: int = 36) -> np.ndarray:
    """A smooth random grayscale picture (uint8), different for every seed."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 5))
    img = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(path, arr, mode="L"):
    """Write ``arr`` in ``mode``: JPEG (quality 90) for .jpg/.jpeg names, else by extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr).convert(mode)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        im.save(path, format="JPEG", quality=90)
    else:
        im.save(path, format="PNG")
    return path


def _folder(tmp_path):
    """train/{fractured, not fractured} and test/..., JPEG and PNG, gray and RGB, odd sizes."""
    root = tmp_path / "xr"
    _save(root / "train" / "fractured" / "a.jpg", _texture(1), "RGB")
    _save(root / "train" / "fractured" / "b.png", _texture(2, 30, 70), "L")
    _save(root / "train" / "not fractured" / "c.jpeg", _texture(3), "L")
    _save(root / "test" / "fractured" / "d.PNG", _texture(4, 90, 20), "RGB")
    _save(root / "test" / "not fractured" / "e.jpg", _texture(5), "L")
    (root / "train" / "fractured" / "notes.txt").write_text("not an image")
    return root


def test_folder_index_reads_split_class_image_with_png_among_jpegs(tmp_path):
    df = data.image_folder_index(_folder(tmp_path), classes=["not fractured", "fractured"])
    assert len(df) == 5 and set(df["split"]) == {"train", "test"}
    assert df.set_index("path").loc["train/fractured/b.png", "label"] == 1
    assert df.set_index("path").loc["test/not fractured/e.jpg", "label"] == 0
    assert not df["path"].str.endswith(".txt").any()


def test_folder_index_default_class_order_is_sorted_and_unknown_class_rejected(tmp_path):
    root = _folder(tmp_path)
    df = data.image_folder_index(root)
    assert dict(zip(df["class"], df["label"])) == {"fractured": 0, "not fractured": 1}
    with pytest.raises(ValueError, match="not fractured"):
        data.image_folder_index(root, classes=["fractured"])


def test_empty_or_missing_folder_is_reported(tmp_path):
    with pytest.raises(data.DataFileMissingError, match="missing"):
        data.image_folder_index(tmp_path / "nowhere")
    (tmp_path / "empty" / "train" / "x").mkdir(parents=True)
    with pytest.raises(data.DataFileMissingError, match="no images"):
        data.image_folder_index(tmp_path / "empty")


def test_gray_and_rgb_decode_to_the_requested_channels_and_size(tmp_path):
    root = _folder(tmp_path)
    df = data.image_folder_index(root)
    x1 = data.load_images(df["file"], 28, channels=1)
    x3 = data.load_images(df["file"], 20, channels=3)
    assert x1.shape == (5, 28, 28, 1) and x1.dtype == np.uint8
    assert x3.shape == (5, 20, 20, 3)
    assert x1.std() > 5  # real content, not zeros
    gray = data.read_image(root / "train" / "fractured" / "b.png")
    assert gray.shape == (30, 70, 1)  # own size when size is None


def test_undecodable_file_is_rejected_naming_it(tmp_path):
    root = _folder(tmp_path)
    bad = root / "train" / "fractured" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
    df = data.image_folder_index(root)
    assert "train/fractured/broken.jpg" in set(df["path"])
    with pytest.raises(data.DataIntegrityError, match="broken.jpg"):
        data.load_images(df["file"], 28)
    good = root / "test" / "not fractured" / "e.jpg"
    truncated = root / "test" / "not fractured" / "half.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(data.DataIntegrityError, match="half.jpg"):
        data.read_image(truncated, 28)


def test_load_images_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    files = list(data.image_folder_index(root)["file"])
    first = data.load_images(files, 16, cache_dir=tmp_path / "cache")
    calls = []
    real = data.read_image
    monkeypatch.setattr(data.images, "read_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = data.load_images(files, 16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first, again)
    assert calls == []
    e = files.index(str(_save(root / "test" / "not fractured" / "e.jpg", _texture(99, 60, 60), "L")))
    changed = data.load_images(files, 16, cache_dir=tmp_path / "cache")
    assert len(calls) == len(files) and not np.array_equal(changed[e], first[e])


def _family_folder(tmp_path):
    """Originals 0..5 and rotated / flipped / re-encoded copies of 0 and 1."""
    d = tmp_path / "fam"
    d.mkdir()
    files, truth = [], []
    for s in range(6):
        files.append(_save(d / f"{s}.png", _texture(10 + s)))
        truth.append(s)
    base0, base1 = _texture(10), _texture(11)
    copies = [(np.rot90(base0, 1), 0, "png"), (np.fliplr(base0), 0, "jpg"), (np.rot90(np.flipud(base0), 3), 0, "jpg"),
              (np.rot90(base1, 2), 1, "jpg"), (np.transpose(base1), 1, "png")]
    for k, (arr, fam, ext) in enumerate(copies):
        files.append(_save(d / f"copy{k}.{ext}", np.ascontiguousarray(arr)))
        truth.append(fam)
    files.append(d / "exact.png")
    files[-1].write_bytes(files[3].read_bytes())  # byte-identical copy of 3
    truth.append(3)
    return files, np.array(truth)


def test_duplicate_finder_groups_rotated_flipped_copies_and_keeps_others_apart(tmp_path):
    files, truth = _family_folder(tmp_path)
    thumbs = data.load_images(files, 16)
    groups = data.duplicate_groups(thumbs, data.file_sha256s(files))
    for i in range(len(files)):
        for j in range(len(files)):
            assert (groups[i] == groups[j]) == (truth[i] == truth[j]), (files[i].name, files[j].name)


def test_similarity_is_symmetric_and_invariant_to_the_eight_symmetries():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 256, (5, 16, 16)).astype(np.uint8)
    scores = np.concatenate([s for _, s in data.thumbnail_similarity(t, block=2)])
    np.testing.assert_allclose(scores, scores.T, atol=1e-5)
    np.testing.assert_allclose(np.diag(scores), 1.0, atol=1e-5)
    variants = data.dihedral_variants(t)
    assert len({v.tobytes() for v in variants[:, 0]}) == 8
    for g in range(8):
        both = np.concatenate([t[:1], variants[g, :1]])
        s = next(data.thumbnail_similarity(both))[1]
        assert s[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert scores[0, 1] < 0.9  # independent noise images are not duplicates


def test_small_angle_rotated_copy_joins_only_with_rotation_search(tmp_path):
    from PIL import Image as I

    base = _texture(21, 64, 64)
    rotated = np.asarray(I.fromarray(base).rotate(17, I.BILINEAR))  # black corners, like the data set's copies
    others = [_texture(30 + k, 64, 64) for k in range(4)]
    x = data.load_images([_save(tmp_path / f"{k}.png", a) for k, a in enumerate([base, rotated, *others])], 32)
    plain = data.duplicate_groups(x, threshold=0.98, side=16)
    search = data.duplicate_groups(x, threshold=0.98, angles=(0, -20, -10, 10, 20), crop=0.7, side=12)
    assert plain[0] != plain[1]
    assert search[0] == search[1] and len(set(search)) == 5


def test_exact_copies_join_even_when_thumbnails_are_flat():
    thumbs = np.zeros((3, 16, 16), np.uint8)  # blank images: correlation is undefined
    groups = data.duplicate_groups(thumbs, np.array(["h1", "h1", "h2"], dtype=object))
    assert groups[0] == groups[1] != groups[2]


@pytest.mark.parametrize("seed", range(5))
def test_group_split_never_puts_a_group_on_two_sides(seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 80, 600)
    y = (groups % 3 == 0).astype(int)  # the label is a property of the group, as for copies
    tr, va, te = data.group_split(y, groups, test_size=0.2, val_size=0.1, seed=seed)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(600))
    sides = [set(groups[i]) for i in (tr, va, te)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert 0.1 < len(te) / 600 < 0.3 and 0.03 < len(va) / 600 < 0.2
    assert set(y[te]) == {0, 1} and set(y[va]) == {0, 1}
    assert data.copies_across(groups, tr, te).sum() == 0


def test_group_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="test_size"):
        data.group_split([0, 1] * 5, range(10), test_size=0.7, val_size=0.4)


def test_mura_layout_reader(tmp_path):
    root = tmp_path / "MURA-v1.1"
    studies = {"train": [("XR_WRIST", "patient00001", "study1_positive", 1, 2),
                         ("XR_WRIST", "patient00001", "study2_negative", 0, 1),
                         ("XR_ELBOW", "patient00002", "study1_negative", 0, 3)],
               "valid": [("XR_HAND", "patient11185", "study1_positive", 1, 1)]}
    for split, rows in studies.items():
        lines = []
        for part, patient, study, label, n in rows:
            for k in range(n):
                _save(root / split / part / patient / study / f"image{k + 1}.png", _texture(k + len(lines)))
            lines.append(f"MURA-v1.1/{split}/{part}/{patient}/{study}/,{label}")
        (root / f"{split}_labeled_studies.csv").write_text("\n".join(lines) + "\n")
    df = data.mura_index(root)
    assert len(df) == 7 and (df["split"] == "valid").sum() == 1
    wrist = df[df["study"] == "XR_WRIST/patient00001/study1_positive"]
    assert len(wrist) == 2 and set(wrist["label"]) == {1} and set(wrist["class"]) == {"positive"}
    assert df.groupby("group")["study"].nunique()["patient00001"] == 2
    assert data.load_images(df["file"], 12).shape == (7, 12, 12, 1)
    (root / "valid_labeled_studies.csv").write_text("MURA-v1.1/valid/XR_HAND/patient99999/study1_positive/,1\n")
    with pytest.raises(data.DataFileMissingError, match="patient99999"):
        data.mura_index(root)


@pytest.mark.realdata
def test_real_fracture_grouping_agrees_with_the_staged_leak_groups(real_data, tmp_path):
    """Our content-only grouping checked against labels.csv's leak_group (used only here)."""
    import pandas as pd

    root = real_data / "fracture"
    if not root.is_dir():
        pytest.skip("fracture data not staged")
    df = data.image_folder_index(root, classes=["not fractured", "fractured"])
    labels = pd.read_csv(root / "labels.csv").set_index("path")
    df = df.join(labels[["sha256", "leak_group", "label"]].rename(columns={"label": "csv_label"}), on="path")
    assert (df["label"] == df["csv_label"]).all()
    sha = data.file_sha256s(df["file"])
    assert (sha == df["sha256"].to_numpy()).all()
    x32 = data.load_images(df["file"], 32, cache_dir=tmp_path)
    groups = data.duplicate_groups(x32, sha, threshold=0.98, angles=(0, -30, -20, -10, 10, 20, 30), crop=0.7, side=12)
    # nearly every one of our groups lies inside one leak group (theirs also chain through
    # unstaged source files and file names, so they are coarser)
    purity = df.assign(g=groups).groupby("g")["leak_group"].agg(lambda s: s.value_counts().iloc[0]).sum() / len(df)
    assert purity > 0.99
    assert not set(groups[df["label"] == 1]) & set(groups[df["label"] == 0])  # no group spans both classes
    # the small-angle "-rotatedN" copies of test/fractured/1 form one family (1.png is another picture)
    fam = df["path"].str.match(r"test/fractured/1-rotated")
    assert fam.sum() >= 6 and len(set(groups[fam])) == 1
    # test images with a copy in train: all byte-identical ones, a few near ones, within leak_group's count
    tr, te = np.flatnonzero(df["split"] == "train"), np.flatnonzero(df["split"] == "test")
    exact = data.copies_across(sha, tr, te).sum()
    ours = data.copies_across(groups, tr, te).sum()
    theirs = data.copies_across(df["leak_group"].to_numpy(), tr, te).sum()
    assert exact == 339  # SOURCES.md: 339 test files have a byte-identical copy in staged train
    assert exact < ours <= theirs


# ------------------------------------------------------------------------------------------
# Paper 2's protocol: grouped folds, and the checks that no copy crosses them
# ------------------------------------------------------------------------------------------
def _rotated(arr: np.ndarray, angle: float, flip: bool = False) -> np.ndarray:
    im = Image.fromarray(arr)
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(im.rotate(angle, Image.BILINEAR))


def test_rotation_invariant_signatures_ignore_rotation_and_flip_but_tell_pictures_apart():
    base = [_texture(40 + k, 48, 48) for k in range(6)]
    sig = data.rotation_invariant_signatures(np.stack(base))
    assert sig.shape == (6, 8 * 6) and np.allclose(np.linalg.norm(sig, axis=1), 1, atol=1e-5)
    for variant in (np.rot90(base[0]), np.fliplr(base[0]), _rotated(base[0], 17), _rotated(base[0], 133, flip=True)):
        v = data.rotation_invariant_signatures(np.ascontiguousarray(variant)[None])[0]
        assert v @ sig[0] > 0.97  # the same picture, turned or mirrored
        assert v @ sig[0] > max(v @ sig[k] for k in range(1, 6)) + 0.02  # closer to itself than to any other


def test_cross_split_copies_finds_a_turned_mirrored_copy_across_and_nothing_else(tmp_path):
    a_imgs = [_texture(60 + k, 48, 48) for k in range(8)]
    b_imgs = [_rotated(a_imgs[3], 40, flip=True), _texture(99, 48, 48), _texture(98, 48, 48)]
    x = data.load_images([_save(tmp_path / f"{k}.png", im) for k, im in enumerate(a_imgs + b_imgs)], 32)
    a, b = np.arange(8), np.arange(8, 11)
    pairs = data.cross_split_copies(x, a, b, threshold=0.95, candidates=4)
    assert [(i, j) for i, j, *_ in pairs] == [(8, 3)]
    assert pairs[0][2] >= 0.95
    assert data.cross_split_copies(x, a[a != 3], b, threshold=0.95, candidates=4) == []


def test_copies_across_marks_the_b_images_whose_group_is_in_a():
    groups = np.array([0, 0, 1, 2, 2, 3])
    np.testing.assert_array_equal(data.copies_across(groups, [0, 2], [1, 3, 4, 5]), [True, False, False, False])
    np.testing.assert_array_equal(data.copies_across(groups, [0, 3], [1, 4, 5]), [True, True, False])


def _copy_families(tmp_path, n_base=36, seed=0):
    """``n_base`` pictures, most with rotated / mirrored / byte-identical copies; the label is the picture's."""
    rng = np.random.default_rng(seed)
    files, label = [], []
    for k in range(n_base):
        base = _texture(200 + k, 40, 40)
        variants = [base] + [_rotated(base, float(rng.integers(5, 355)), flip=bool(rng.integers(2)))
                             for _ in range(int(rng.integers(0, 4)))]
        for v, arr in enumerate(variants):
            files.append(_save(tmp_path / f"{k}_{v}.png", arr))
            label.append(k % 2)
        if k % 5 == 0:  # a byte-identical copy too
            files.append(tmp_path / f"{k}_exact.png")
            files[-1].write_bytes(files[-2].read_bytes())
            label.append(k % 2)
    x = data.load_images(files, 32)
    sha = data.file_sha256s(files)
    import pandas as pd

    df = pd.DataFrame({"file": [str(f) for f in files], "label": label, "sha256": sha})
    df["group"] = data.duplicate_groups(x, sha, threshold=0.95, angles=list(range(-45, 46, 5)), crop=0.7, side=12)
    return df, x


def test_paper2_folds_test_every_group_once_and_no_copy_crosses_a_fold(tmp_path):
    from imgclf import config
    from imgclf.papers import p02_fracture_cnn as p02

    df, x = _copy_families(tmp_path)
    groups = df["group"].to_numpy()
    assert len(set(groups)) == 36  # the families were found (the test relies on them)
    cfg = config.make(p02.config, "smoke", folds=4, val_size=0.15)
    folds = p02.pipeline.group_folds(df, cfg)
    assert len(folds) == 4
    uniq = np.flatnonzero(~df["sha256"].duplicated().to_numpy())
    tested = np.concatenate([te for _, _, te in folds.values()])
    assert sorted(tested.tolist()) == uniq.tolist()  # every kept image tested exactly once
    tested_groups = [g for _, _, te in folds.values() for g in set(groups[te])]
    assert sorted(tested_groups) == sorted(set(groups))  # every group tested, in exactly one fold
    for tr, va, te in folds.values():
        assert len(tr) and len(va) and len(te) and set(df["label"].iloc[te]) == {0, 1}
        seen = np.concatenate([tr, va])
        assert not set(tr) & set(va) and not set(seen) & set(te)
        assert data.copies_across(groups, seen, te).sum() == 0
        assert data.copies_across(groups, tr, va).sum() == 0
        # the independent check (another method) finds no copy across either
        assert data.cross_split_copies(x, seen, te, threshold=0.95, candidates=5) == []


def test_group_kfold_rejects_bad_folds_and_shares():
    with pytest.raises(ValueError, match="folds"):
        data.group_kfold([0, 1] * 5, range(10), folds=1)
    with pytest.raises(ValueError, match="val_size"):
        data.group_kfold([0, 1] * 5, range(10), folds=2, val_size=0.5)
