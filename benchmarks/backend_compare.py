"""Notebook 04 under two Keras backends: every Table 2 cell side by side, and whether each agrees
within the tolerance its kind allows.

    ./run_all.sh 04                                          # TensorFlow (reports/)
    IMGCLF_REPORTS=/tmp/jax ./run_all.sh --backend jax 04    # JAX, same code, same seed
    python benchmarks/backend_compare.py reports/04_knn_slicing_evolution/results.json \
        /tmp/jax/04_knn_slicing_evolution/results.json

Two kinds of cell (test accuracy, %):
- **no training** (the k-NN on raw pixels and on random kernels): the same images, the same Glorot
  draws (NumPy), the same k-NN; only the convolution kernels differ by backend. Tolerance
  ``EXACT`` (0.01 points: one image of 10,000 would be 0.01).
- **trained** (backprop CNNs, the k-NN on their kernels, CMA-ES and PSO): each epoch's order is a
  function of (seed, epoch) on both backends, but dropout masks, initial weights drawn by Keras'
  seed generator and float rounding differ, so two backends give two draws of the same experiment.
  Tolerance: ``Z`` binomial standard deviations of the difference of two accuracies on that
  setting's test images, sqrt(2 p (1 - p) / n).

Prints one row per cell and ``within tolerance: yes|no`` (exit status 0 or 1).
"""

from __future__ import annotations

import json
import math
import sys

EXACT = 0.01
"""Points: cells without training must agree to this."""
Z = 3.0
"""Binomial standard deviations allowed between two trained cells."""
NO_TRAINING = ("control: k-NN on raw pixels", "control: k-NN on random kernels")


def cells(path: str) -> tuple[dict, dict]:
    res = json.load(open(path))
    rows = {(r["model"], r["setting"]): r["ours"] for r in res["comparisons"]["table2_paper_vs_ours"]}
    return rows, res["hardware"].get("backend", {})


def test_images(setting: str) -> int:
    """``"500/250, 2 epochs"`` -> 250."""
    return int(setting.split(",")[0].split("/")[1])


def main(a: str, b: str) -> int:
    ca, ba = cells(a)
    cb, bb = cells(b)
    na, nb = f"{ba.get('name', '?')} {ba.get('version', '')}".strip(), f"{bb.get('name', '?')} {bb.get('version', '')}".strip()
    print(f"A: {na} ({a})\nB: {nb} ({b})")
    print(f"{'row':<52} {'setting':<20} {'A':>7} {'B':>7} {'B - A':>7} {'tol':>6}  ok")
    bad = 0
    for key in ca:
        x, y = ca[key], cb.get(key)
        if x is None or y is None:
            continue
        row, setting = key
        if row in NO_TRAINING:
            tol = EXACT
        else:
            p = min(max((x + y) / 200, 1e-3), 1 - 1e-3)
            tol = 100 * Z * math.sqrt(2 * p * (1 - p) / test_images(setting))
        ok = abs(y - x) <= tol + 1e-9
        bad += not ok
        print(f"{row:<52} {setting:<20} {x:7.2f} {y:7.2f} {y - x:+7.2f} {tol:6.2f}  {'yes' if ok else 'NO'}")
    print(f"within tolerance: {'no' if bad else 'yes'} ({bad} cells outside)")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
