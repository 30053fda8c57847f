"""Frozen-base feature caching vs end-to-end training: MobileNet 5-fold x 5-lr CV, same CPU.

Both ways run paper 5's MobileNet protocol (stratified k-fold CV over learning rates, Adam,
categorical cross-entropy, best epoch per fold) on the same small subset of the flowers stand-in:

* end to end: every image goes through the frozen MobileNet base in every epoch of every fold;
* cached: the frozen base (+ global average pooling) runs once per image, the Dense head is
  trained on the cached 1024-d vectors.

Both ways build and compile their model once and reset it per fold and learning rate
(:func:`imgclf.papers.p05_linnaeus_transfer.pipeline.reusable`), so the ratio measures the frozen-base arithmetic saved,
not Keras' per-model tracing overhead.

Same seeds, same folds, same initial head weights, so the two should reach the same validation
accuracy up to float round-off. Prints both tables, the accuracy difference and, last,
``speedup: <ratio>x`` (end-to-end seconds / cached seconds, feature extraction included).

    python benchmarks/cv_feature_cache.py [--n 200] [--size 224] [--epochs 5] [--weights imagenet]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="training images (stratified subset of the stand-in)")
    ap.add_argument("--size", type=int, default=224, help="input size (MobileNet's own sizes: 128..224)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--weights", default="imagenet", help="'imagenet', 'none' or a weights file")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import keras
    from imgclf import data, train
    from imgclf.models import transfer
    from imgclf.papers.p05_linnaeus_transfer import pipeline as transfer_cv
    from imgclf.reports import hardware

    train.set_seed(a.seed)
    w, why = transfer.resolve_weights("mobilenet", None if a.weights.lower() == "none" else a.weights)
    print(f"weights: {why}")
    if w is None:
        print("NOTE: random frozen base (no ImageNet weights): accuracies are low; the timing comparison holds.")
    tr, _ = data.load_flowers(a.data_dir)
    idx, _ = data.stratified_subset(np.arange(len(tr)), tr.labels, a.n, a.seed)
    subset = tr.subset(np.sort(idx))
    images = data.read_images(subset, a.size)
    y = subset.labels
    print(f"data: {len(y)} flowers stand-in training images at {a.size}x{a.size}; hardware: "
          f"{hardware()['cpu']} ({os.cpu_count()} cores); {a.folds} folds x {len(a.lrs)} lrs x {a.epochs} epochs")
    tm = transfer.build_mobilenet(a.size, weights=w)

    results = {}
    # cached: the frozen part once per image, then heads only
    t0 = time.perf_counter()
    feats = transfer.extract_features(tm, images)
    t_feat = time.perf_counter() - t0
    tables = {}
    make = transfer_cv.reusable(transfer_cv.fresh_head(tm, a.seed))
    for lr in a.lrs:
        tables[lr], _ = transfer_cv.cross_validate(make, feats, y, folds=a.folds,
                                                   epochs=a.epochs, lr=lr, batch_size=a.batch_size, seed=a.seed,
                                                   desc=f"cached lr={lr:g}")
    results["cached"] = (time.perf_counter() - t0, tables)
    # end to end: images through the frozen base every step
    x = tm.preprocess(images.astype(np.float32))
    t0 = time.perf_counter()
    tables = {}
    make = transfer_cv.reusable(transfer_cv.end_to_end(tm, transfer_cv.fresh_head(tm, a.seed)))
    for lr in a.lrs:
        tables[lr], _ = transfer_cv.cross_validate(make,
                                                   x, y, folds=a.folds, epochs=a.epochs, lr=lr,
                                                   batch_size=a.batch_size, seed=a.seed, desc=f"end-to-end lr={lr:g}")
    results["end to end"] = (time.perf_counter() - t0, tables)
    keras.backend.clear_session()

    print(f"\nfeature extraction (once): {t_feat:.1f} s")
    print(f"{'lr':>8} {'cached val acc':>15} {'end-to-end val acc':>19} {'diff':>8}")
    diffs = []
    for lr in a.lrs:
        c = results["cached"][1][lr].loc["AVG", "val accuracy"]
        e = results["end to end"][1][lr].loc["AVG", "val accuracy"]
        diffs.append(abs(c - e))
        print(f"{lr:>8g} {c:>15.4f} {e:>19.4f} {c - e:>+8.4f}")
    n_val = len(y) / a.folds
    noise = 1.0 / n_val  # one validation image per fold
    print(f"max |diff| of mean val accuracy: {max(diffs):.4f} (one image per fold = {noise:.4f}); "
          f"{'same within noise' if max(diffs) <= noise + 1e-9 else 'DIFFERENT beyond noise'}")
    tc, te = results["cached"][0], results["end to end"][0]
    print(f"seconds: cached {tc:.1f} (extraction included), end to end {te:.1f}")
    print(f"speedup: {te / tc:.1f}x")
    return 0 if max(diffs) <= noise + 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
