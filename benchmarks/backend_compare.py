"""Notebook 04 under two Keras backends: every Table 2 cell side by side, and whether each agrees
within the tolerance its kind allows.

    ./run_all.sh 04                                          # TensorFlow (reports/)
    IMGCLF_REPORTS=/tmp/jax ./run_all.sh --backend jax 04    # JAX, same code, same seed
    python benchmarks/backend_compare.py reports/04_knn_slicing_evolution/results.json \
        /tmp/jax/04_knn_slicing_evolution/results.json

Two kinds of cell (test accuracy, %):
- **no backprop** (the k-NN on raw pixels and on random kernels, CMA-ES and PSO from a random
  start): the same images, the same NumPy draws (kernels, candidates), the same k-NN and fitness in
  ``keras.ops``; only the backend's convolution differs. Each must agree to ``EXACT`` (0.01 points:
  one image in 10,000).
- **backprop** (the CNNs, the k-NN on their kernels, the runs fine-tuned from them): each epoch's
  order is a function of (seed, epoch) on both backends, but initial weights drawn by Keras' seed
  generator, dropout masks and float rounding differ, so the two backends give two draws of the
  same experiment, and a 2-epoch narrow CNN on a few hundred test images moves by several points
  from one draw to the next. What must hold is that neither backend is better: the paired
  difference B - A over all backprop cells has a 95 % interval that contains 0 (``stats.paired``).

Prints one row per cell and ``within tolerance: yes|no`` (exit status 0 or 1).
"""

from __future__ import annotations

import json
import sys

EXACT = 0.01
"""Points: cells without backprop must agree to this."""


def backprop_cell(row: str) -> bool:
    return row.startswith("CNN ") or "backprop kernels" in row or "from backprop" in row


def cells(path: str) -> tuple[dict, dict]:
    res = json.load(open(path))
    rows = {(r["model"], r["setting"]): r["ours"] for r in res["comparisons"]["table2_paper_vs_ours"]}
    return rows, res["hardware"].get("backend", {})


def main(a: str, b: str) -> int:
    from imgclf import stats

    ca, ba = cells(a)
    cb, bb = cells(b)
    na, nb = f"{ba.get('name', '?')} {ba.get('version', '')}".strip(), f"{bb.get('name', '?')} {bb.get('version', '')}".strip()
    print(f"A: {na} ({a})\nB: {nb} ({b})")
    print(f"{'row':<60} {'setting':<20} {'A':>7} {'B':>7} {'B - A':>7}  kind")
    bad, trained = 0, []
    for key in ca:
        x, y = ca[key], cb.get(key)
        if x is None or y is None:
            continue
        row, setting = key
        if backprop_cell(row):
            trained.append((x, y))
            kind = "backprop (paired below)"
        else:
            ok = abs(y - x) <= EXACT + 1e-9
            bad += not ok
            kind = f"no backprop: {'same' if ok else 'DIFFERS'} (tolerance {EXACT})"
        print(f"{row[:60]:<60} {setting:<20} {x:7.2f} {y:7.2f} {y - x:+7.2f}  {kind}")
    if len(trained) >= 2:
        d = stats.paired([y for _, y in trained], [x for x, _ in trained], ("B", "A"))
        print(f"backprop cells, B - A paired over {len(trained)} cells: {d.text(2)}; "
              f"largest |B - A| {max(abs(y - x) for x, y in trained):.2f} points")
        bad += d.verdict() != "tie"
    print(f"within tolerance: {'no' if bad else 'yes'}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
